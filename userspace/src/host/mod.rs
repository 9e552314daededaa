//! What xlan asks of the host: network namespaces entered on one thread (`netns`), devices, addresses, neighbours
//! and routes through rtnetlink (`netlink`), and the per-interface sysctls an endpoint needs (`sysctl`).
pub mod netlink;
pub mod netns;
pub mod sysctl;
