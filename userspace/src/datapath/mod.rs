//! The eBPF side as userspace sees it: loading the object and attaching its programs through pinned links
//! (`loader`), the instance's pinned maps with typed access (`maps`), where both live on bpffs (`pins`), the
//! datapath's drop events (`events`), and what aya lacks: the BPF_PROG_TEST_RUN contexts (`testrun`) and batched map
//! operations (`batch`).
pub mod batch;
pub mod events;
pub mod loader;
pub mod maps;
pub mod pins;
pub mod testrun;
