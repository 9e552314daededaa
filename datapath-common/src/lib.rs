//! Map keys, values and constants shared by the eBPF datapath and the userspace loader.
//!
//! Every type here is `#[repr(C)]`, padded explicitly (no implicit holes, so the bytes the kernel hashes are
//! always initialised) and `Copy`. The `user` feature adds `aya::Pod` so userspace can use them in aya's map
//! wrappers; the eBPF side uses them as they are.
#![no_std]

/// Names of the maps, as the eBPF object declares them and as they are pinned under an instance's bpffs root.
pub mod map_names {
    pub const NETWORKS: &str = "XLAN_NETWORKS";
    pub const PARENTS: &str = "XLAN_PARENTS";
    pub const ENDPOINTS: &str = "XLAN_ENDPOINTS";
    pub const FDB: &str = "XLAN_FDB";
    pub const PORTS: &str = "XLAN_PORTS";
    pub const FLOOD: &str = "XLAN_FLOOD";
    pub const SOURCE_MACS: &str = "XLAN_SOURCE_MACS";
    pub const ENDPOINT_STATS: &str = "XLAN_ENDPOINT_STATS";
    pub const DROPS: &str = "XLAN_DROPS";
    /// Every map of an instance, in the order `xlan` removes their pins.
    pub const ALL: [&str; 9] =
        [NETWORKS, PARENTS, ENDPOINTS, FDB, PORTS, FLOOD, SOURCE_MACS, ENDPOINT_STATS, DROPS];
}

/// Names of the programs in the eBPF object.
pub mod program_names {
    /// XDP on the parent: unicast from the wire straight into an endpoint.
    pub const PARENT_XDP: &str = "xlan_parent_xdp";
    /// tcx ingress on the parent: copies of broadcast/multicast, hairpinned frames, source-mode copies.
    pub const PARENT_INGRESS: &str = "xlan_parent_ingress";
    /// tcx egress on the parent: the host's own frames to endpoints (`--host-access`).
    pub const PARENT_EGRESS: &str = "xlan_parent_egress";
    /// tcx ingress on an endpoint's host-side veth: everything the endpoint sends.
    pub const ENDPOINT_INGRESS: &str = "xlan_endpoint_ingress";
    /// XDP_PASS stub for the endpoint's own end: native XDP redirect into a veth needs a program on the peer.
    pub const XDP_PASS: &str = "xlan_xdp_pass";
}

/// Capacities. Userspace refuses to go past them with a clear error rather than letting an update fail.
pub const MAX_NETWORKS: u32 = 64;
pub const MAX_ENDPOINTS: u32 = 1024;
pub const MAX_FDB_ENTRIES: u32 = 65536;
pub const MAX_SOURCE_MACS: u32 = 4096;
/// Endpoints one network floods broadcast to: the flood loop in TC is unrolled/bounded by this.
pub const MAX_FLOOD_PORTS: usize = 64;

/// What kind of virtual LAN a network is.
pub mod kind {
    pub const MACVLAN: u32 = 1;
}

/// macvlan modes, with the kernel's values (include/uapi/linux/if_link.h, MACVLAN_MODE_*).
pub mod macvlan_mode {
    pub const PRIVATE: u32 = 1;
    pub const VEPA: u32 = 2;
    pub const BRIDGE: u32 = 4;
    pub const PASSTHRU: u32 = 8;
    pub const SOURCE: u32 = 16;
}

/// `NetworkConfig::flags` bits.
pub mod network_flags {
    /// Endpoints and the host's address on the parent reach each other (the kernel's macvlan never allows it).
    pub const HOST_ACCESS: u32 = 1;
}

/// Why the datapath dropped a frame: index into `XLAN_DROPS` and into `EndpointStats::drops`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than its headers claim (runt, truncated VLAN tag).
    Malformed = 0,
    /// Endpoint-to-endpoint traffic a private network forbids (e.g. hairpinned back by the switch).
    Isolation = 1,
    /// The FDB points at a port that has no device any more.
    NoPort = 2,
    /// A frame from a device xlan does not know (state out of sync).
    UnknownPort = 3,
}

pub const DROP_REASONS: usize = 4;
pub const DROP_REASON_NAMES: [&str; DROP_REASONS] = ["malformed", "isolation", "no_port", "unknown_port"];

/// `XLAN_NETWORKS` value, keyed by network id (u32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    pub kind: u32,
    pub mode: u32,
    pub parent_ifindex: u32,
    pub flags: u32,
    /// The parent's MAC: frames from endpoints to it are the host's (host access).
    pub parent_mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// `XLAN_ENDPOINTS` value, keyed by the ifindex of the endpoint's host-side veth.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointConfig {
    pub network_id: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// Key of `XLAN_FDB` and `XLAN_SOURCE_MACS`: a MAC within one network.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacKey {
    pub network_id: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

impl MacKey {
    pub const fn new(network_id: u32, mac: [u8; 6]) -> Self {
        Self { network_id, mac, _pad: [0; 2] }
    }
}

/// `XLAN_FDB` entry flags.
pub mod fdb_flags {
    /// Added by the loader (endpoint MAC or `fdb add`); never aged out, never overridden by learning.
    pub const STATIC: u32 = 1;
}

/// `XLAN_FDB` value: where frames to a MAC go.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbEntry {
    /// Host-side veth of the local endpoint that owns the MAC (also the `XLAN_PORTS` key).
    pub ifindex: u32,
    pub flags: u32,
}

/// `XLAN_FLOOD` value, keyed by network id: the host-side veths broadcast is copied to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodList {
    pub count: u32,
    pub ifindex: [u32; MAX_FLOOD_PORTS],
}

impl Default for FloodList {
    fn default() -> Self {
        Self { count: 0, ifindex: [0; MAX_FLOOD_PORTS] }
    }
}

/// `XLAN_ENDPOINT_STATS` per-CPU value, keyed by the endpoint's host-side ifindex.
/// rx: delivered to the endpoint; tx: sent by it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: [u64; DROP_REASONS],
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for NetworkConfig {}
    unsafe impl aya::Pod for EndpointConfig {}
    unsafe impl aya::Pod for MacKey {}
    unsafe impl aya::Pod for FdbEntry {}
    unsafe impl aya::Pod for FloodList {}
    unsafe impl aya::Pod for EndpointStats {}
}

/// True for broadcast and multicast destination MACs (the I/G bit).
#[inline(always)]
pub const fn is_multicast_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}
