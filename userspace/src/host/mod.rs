//! What xlan asks of the host: network namespaces entered on one thread (and, as the reshape goes on, netlink and
//! sysctl).
pub mod netns;
