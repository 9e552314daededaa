//! The maps of one xlan instance. Types and names come from datapath-common; every map is pinned by name, so
//! all programs an instance loads (one load per CLI call) share them and the datapath outlives the CLI.
use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    macros::map,
    maps::{Array, DevMapHash, HashMap, LpmTrie, PerCpuArray, RingBuf},
};
use datapath_common::{
    flood_counter, EndpointConfig, EndpointStats, FdbEntry, FloodList, GroupKey, GroupMembers, IpEndpoint, IpKey,
    MacKey, NetworkConfig, ParentConfig, ParentKey, SpreaderConfig, VniKey, VtepList, VtepMac, DROP_REASONS,
    EVENTS_BYTES, GENERATIONS, MAX_ENDPOINTS, MAX_FDB_ENTRIES, MAX_GROUPS, MAX_IP_ENTRIES, MAX_NETWORKS,
    MAX_SOURCE_MACS, MAX_VNIS, STATS_SLOTS,
};

/// network id → configuration.
#[map(name = "XLAN_NETWORK_CONFIGS")]
pub static NETWORKS: HashMap<u32, NetworkConfig> = HashMap::pinned(MAX_NETWORKS, 0);

/// (parent ifindex, VLAN) → what runs on it (untagged: at most one macvlan or ipvlan network and any number of
/// VXLAN networks; on a VLAN: one macvlan or ipvlan network).
#[map(name = "XLAN_PARENT_VLANS")]
pub static PARENTS: HashMap<ParentKey, ParentConfig> = HashMap::pinned(MAX_NETWORKS * 2, 0);

/// (parent, VNI, UDP port) → VXLAN network id.
#[map(name = "XLAN_VNIS")]
pub static VNIS: HashMap<VniKey, u32> = HashMap::pinned(MAX_VNIS, 0);

/// VXLAN network id → remote VTEPs for broadcast/unknown (head-end replication).
#[map(name = "XLAN_VTEPS")]
pub static VTEPS: HashMap<u32, VtepList> = HashMap::pinned(MAX_NETWORKS, 0);

/// VTEP IPv4 → link-layer source its frames arrived from (next-hop fallback).
#[map(name = "XLAN_VTEP_MACS")]
pub static VTEP_MACS: HashMap<u32, VtepMac> = HashMap::pinned(MAX_VNIS, 0);

/// host-side veth ifindex → endpoint.
#[map(name = "XLAN_ENDPOINT_SLOTS")]
pub static ENDPOINTS: HashMap<u32, EndpointConfig> = HashMap::pinned(MAX_ENDPOINTS, 0);

/// (network, MAC) → local port or remote VTEP; static entries and (VXLAN) learned ones.
#[map(name = "XLAN_FDB")]
/// Not preallocated: room for a million entries would otherwise cost ~110 MB of kernel memory per instance
/// up front; entries (learned ones included) are allocated as they come.
pub static FDB: HashMap<MacKey, FdbEntry> = HashMap::pinned(MAX_FDB_ENTRIES, BPF_F_NO_PREALLOC);

/// host-side veth ifindex → itself: the targets XDP may redirect to.
#[map(name = "XLAN_PORT_DEVICES")]
pub static PORTS: DevMapHash = DevMapHash::pinned(MAX_ENDPOINTS, 0);

/// network id → the ports broadcast and multicast are copied to. Preallocated: (MAX_NETWORKS + CPUs) × 32 KB, ~2 MB.
#[map(name = "XLAN_FLOOD_PORTS")]
pub static FLOOD: HashMap<u32, FloodList> = HashMap::pinned(MAX_NETWORKS, 0);

/// (network, source MAC) → 1: the senders a source-mode network's endpoints accept.
#[map(name = "XLAN_SOURCE_MACS")]
pub static SOURCE_MACS: HashMap<MacKey, u32> = HashMap::pinned(MAX_SOURCE_MACS, 0);

/// endpoint slot → counters (per CPU: no atomics on the fast path; an array, whose lookup the kernel inlines, where a
/// hash by ifindex cost a hashed lookup per counted frame). The slot comes with what names the endpoint: its
/// `EndpointConfig`, its FDB entry, the flood list.
#[map(name = "XLAN_PORT_STATS")]
pub static PORT_STATS: PerCpuArray<EndpointStats> = PerCpuArray::pinned(STATS_SLOTS, 0);

/// drop reason → count, for drops no endpoint can be blamed for.
#[map(name = "XLAN_DROP_COUNTS")]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::pinned(DROP_REASONS as u32, 0);

/// `DropRecord`s for `xlan monitor`. Pinned like the rest, so the programs of every load of the instance write
/// to the one ring a reader opens.
#[map(name = "XLAN_EVENTS")]
pub static EVENTS: RingBuf = RingBuf::pinned(EVENTS_BYTES, 0);

/// The generations of the maps' contents (`USER_GENERATION`, `DATAPATH_GENERATION`): the per-CPU copies of their
/// entries (`cache`) are good while they stay the same.
#[map(name = "XLAN_GENERATION")]
pub static GENERATION: Array<u64> = Array::pinned(GENERATIONS, 0);

/// (ipvlan network, IP prefix) → endpoint: its addresses and, in l3 mode, routes behind it; the host's addresses.
#[map(name = "XLAN_NETWORK_IPS")]
pub static IP_ENDPOINTS: LpmTrie<IpKey, IpEndpoint> = LpmTrie::pinned(MAX_IP_ENTRIES, 0);

/// Where broadcast copies for other CPUs go (`spread`); written by userspace when it makes the spreader.
#[map(name = "XLAN_SPREADER")]
pub static SPREADER: Array<SpreaderConfig> = Array::pinned(1, 0);

/// `flood_counter` → count (per CPU).
#[map(name = "XLAN_FLOOD_COUNTS")]
pub static FLOOD_COUNTS: PerCpuArray<u64> = PerCpuArray::pinned(flood_counter::COUNT, 0);

/// (network, IP multicast group) → the endpoints that joined it (`groups`). Not preallocated: 8 KB an entry in use (a
/// 4 KB value, in the allocator's next size).
#[map(name = "XLAN_GROUPS")]
pub static GROUPS: HashMap<GroupKey, GroupMembers> = HashMap::pinned(MAX_GROUPS, BPF_F_NO_PREALLOC);

/// A group without members, which a new `XLAN_GROUPS` entry is copied from. Never written; not pinned (the
/// programs hold the one of the load that verified them).
#[map]
pub static NO_MEMBERS: Array<GroupMembers> = Array::with_max_entries(1, 0);
