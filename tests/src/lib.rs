//! Test harness for xlan: throwaway network namespaces (`netns`, the one namespace type, entered on a thread only
//! through the library's guard), the one link helper (`link`), a macvlan topology that either the kernel's macvlan
//! driver (the reference) or xlan implements, reachability probes between its nodes, and the matrix that compares
//! the two; ipvlan's topologies on the same one-host `site`, and a VXLAN lab (`vxlan`) whose hosts are xlan or kernel
//! VTEPs, built from the same pieces. The demo lab (`xlan-lab`) and the bench (`xlan-bench`, `bench`) use them too.
//!
//! Everything the harness creates lives in namespaces named `xl<pid><letters>...` and is removed by Drop guards,
//! also when a test fails or panics. Nothing is created in, or sent through, the default namespace.

pub mod bench;
pub mod cmd;
pub mod cni;
pub mod counters;
pub mod docker;
pub mod dot1q;
pub mod ipvlan;
pub mod link;
pub mod matrix;
pub mod netns;
pub mod probe;
pub mod program;
pub mod scratch;
pub mod site;
pub mod sniff;
pub mod topology;
pub mod vxlan;
pub mod xlan;

pub use counters::EndpointCounters;
pub use matrix::{describe_diff, CellDiff, Matrix, Probed};
pub use netns::{unique_prefix, Netns};
pub use probe::Probe;
pub use topology::{Backend, Family, Mode, Node, Topology};
pub use xlan::XlanHost;

/// Unwraps a harness result in a test: an error fails the test with what was being done and the whole error chain.
pub fn ok<T>(result: anyhow::Result<T>, doing: impl std::fmt::Display) -> T {
    result.unwrap_or_else(|err| panic!("{doing}: {err:#}"))
}

/// `test_cases!(check { name: args...; ... })`: one `#[test] fn name() { check(args...) }` per line, for a check
/// that runs on several inputs, each reported (and selectable) under its own name.
#[macro_export]
macro_rules! test_cases {
    ($check:path { $($name:ident: $($arg:expr),+;)+ }) => {
        $(
            #[test]
            fn $name() {
                $check($($arg),+);
            }
        )+
    };
}
