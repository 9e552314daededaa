//! What xlan asks of the host: network namespaces entered on one thread (`netns`), devices, addresses, neighbours
//! and routes through rtnetlink (`netlink`), the per-interface sysctls an endpoint needs (`sysctl`), device features
//! (`ethtool`), receive packet steering (`rps`) and the multicast queries that make endpoints report their groups
//! (`querier`).
pub mod ethtool;
pub mod netlink;
pub mod netns;
pub mod querier;
pub mod rps;
pub mod sysctl;
