//! The eBPF side as userspace sees it: loading the object and attaching its programs through pinned links
//! (`loader`), the instance's pinned maps with typed access (`maps`), and where both live on bpffs (`pins`).
pub mod loader;
pub mod maps;
pub mod pins;
