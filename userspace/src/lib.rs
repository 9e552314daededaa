//! xlan: the kernel's macvlan virtual LANs with the forwarding done by XDP and TC programs and the
//! forwarding tables in BPF maps. This library creates the devices (rtnetlink), loads and attaches the
//! datapath (aya) and fills its maps; the `xlan` binary is its command line.
pub mod cidr;
pub mod cli;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod fdb;
pub mod instance;
pub mod ipvlan;
pub mod loader;
pub mod mac;
pub mod macaddr;
pub mod maps;
pub mod mode;
pub mod monitor;
pub mod netlink;
pub mod host;
pub use host::netns;
pub mod network;
pub mod pins;
pub mod report;
pub mod state;
pub mod testrun;
pub mod vxlan;

pub use error::{Error, Result};
