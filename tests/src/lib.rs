//! Test harness for xlan: throwaway network namespaces, a macvlan topology that either the kernel's macvlan driver
//! (the reference) or xlan implements, reachability probes between its nodes, and the matrix that compares the two;
//! a VXLAN lab (`vxlan`) whose hosts are xlan or kernel VTEPs, built from the same pieces (`link`, probes, matrix).
//!
//! Everything the harness creates lives in namespaces named `xl<pid><letters>...` and is removed by Drop guards,
//! also when a test fails or panics. Nothing is created in, or sent through, the default namespace.

pub mod bench;
pub mod cmd;
pub mod counters;
pub mod ipvlan;
pub mod link;
pub mod matrix;
pub mod netns;
pub mod probe;
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
