//! xlan: the kernel's macvlan, ipvlan and VXLAN virtual LANs with the forwarding done by XDP and TC programs and the
//! forwarding tables in BPF maps. This library creates the devices (rtnetlink), loads and attaches the datapath (aya)
//! and fills its maps. It speaks typed requests and results (`ops`, one module per noun) and renders nothing: the
//! `xlan` binary, the daemon and the CNI plugin each phrase its results and errors for their users.
pub mod check;
pub mod datapath;
pub mod driver;
pub mod error;
pub mod host;
pub mod instance;
pub mod ipam;
pub mod mac;
pub mod model;
pub mod ops;
pub mod session;
pub mod store;

pub use error::{Error, Result};
