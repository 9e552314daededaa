//! What xlan asks of the host: network namespaces entered on one thread (`netns`), devices, addresses, neighbours
//! and routes through rtnetlink (`netlink`), the per-interface sysctls an endpoint needs (`sysctl`), device features
//! (`ethtool`) and receive packet steering (`rps`).
pub mod ethtool;
pub mod netlink;
pub mod netns;
pub mod rps;
pub mod sysctl;
