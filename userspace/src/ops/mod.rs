//! The operations, one module per noun. Each takes a typed request and returns a typed, `Serialize` result; errors
//! are the library's [`crate::Error`]. They serve every front end alike: the `xlan` CLI, the daemon, the CNI plugin.
pub mod doctor;
pub mod endpoint;
pub mod fdb;
pub mod macaddr;
pub mod mdb;
pub mod network;
pub mod restore;
pub mod route;
pub mod stats;
pub mod upgrade;
