//! Map keys, values and constants shared by the eBPF datapath and the userspace loader.
//!
//! Every type here is `#[repr(C)]`, padded explicitly (no implicit holes, so the bytes the kernel hashes are
//! always initialised) and `Copy`. The `user` feature adds `aya::Pod` so userspace can use them in aya's map
//! wrappers; the eBPF side uses them as they are.
#![no_std]

pub mod csum;

/// Names of the maps, as the eBPF object declares them and as they are pinned under an instance's bpffs root.
pub mod map_names {
    /// Named apart from the map of the smaller configuration it replaced (before VLANs), so that the pin of an instance
    /// made by an older xlan is never taken for it: `xlan upgrade` makes this one and fills it from the state.
    pub const NETWORKS: &str = "XLAN_NETWORK_CONFIGS";
    /// Keyed by parent and VLAN. Named apart from the map keyed by the parent alone it replaced, so that the pin of an
    /// instance made by an older xlan is never taken for it.
    pub const PARENTS: &str = "XLAN_PARENT_VLANS";
    /// Endpoints with their counters' slot. Named apart from the map without the slot it replaced (a value of another
    /// size), so that the pin of an instance made by an older xlan is never taken for it: `xlan upgrade` makes this
    /// one and fills it from the state.
    pub const ENDPOINTS: &str = "XLAN_ENDPOINT_SLOTS";
    pub const FDB: &str = "XLAN_FDB";
    /// `MAX_ENDPOINTS` ports. Named apart from the 1024-port devmap it replaced, whose pin would keep an older
    /// instance at 1024 endpoints.
    pub const PORTS: &str = "XLAN_PORT_DEVICES";
    /// Up to `MAX_FLOOD_PORTS` ports a network. Named apart from the 64-port list it replaced, whose pin (of another
    /// value size) a newer program could not use.
    pub const FLOOD: &str = "XLAN_FLOOD_PORTS";
    pub const SOURCE_MACS: &str = "XLAN_SOURCE_MACS";
    /// Per-CPU counters by slot. Named apart from the per-CPU hash by ifindex it replaced, so that the pin of an
    /// instance made by an older xlan is never taken for it.
    pub const ENDPOINT_STATS: &str = "XLAN_PORT_STATS";
    /// One counter per drop reason; named apart from the map of fewer reasons it replaced, as `NETWORKS`.
    pub const DROPS: &str = "XLAN_DROP_COUNTS";
    pub const VNIS: &str = "XLAN_VNIS";
    pub const VTEPS: &str = "XLAN_VTEPS";
    pub const VTEP_MACS: &str = "XLAN_VTEP_MACS";
    /// Keyed by network (an ipvlan network is one parent and VLAN). Named apart from the trie keyed by parent it
    /// replaced, as `PARENTS`.
    pub const IP_ENDPOINTS: &str = "XLAN_NETWORK_IPS";
    /// Ring buffer of `DropRecord`s (`xlan monitor`).
    pub const EVENTS: &str = "XLAN_EVENTS";
    /// Two u64 generations (`USER_GENERATION`, `DATAPATH_GENERATION`): the datapath's per-CPU copies of map entries are
    /// good while they stay the same.
    pub const GENERATION: &str = "XLAN_GENERATION";
    /// One `SpreaderConfig`: where broadcast copies for the other CPUs go (`fdb::flood` in the datapath).
    pub const SPREADER: &str = "XLAN_SPREADER";
    /// Per-CPU counters of the floods (spreading, and the copies' way in), indexed by `flood_counter`. Named anew
    /// when the backlog count joined them: `xlan upgrade` makes it beside the older `XLAN_SPREAD_COUNTS`.
    pub const FLOOD_COUNTS: &str = "XLAN_FLOOD_COUNTS";
    /// (network, IP multicast group) → the endpoints that joined it (`GroupMembers`), learned from their IGMP and
    /// MLD reports.
    pub const GROUPS: &str = "XLAN_GROUPS";
    /// The maps the datapath keeps per-CPU copies of (datapath-ebpf's `cache`): a change to one of them must change
    /// the user generation, or a copy would outlive it.
    pub const CACHED: [&str; 8] = [PARENTS, ENDPOINTS, NETWORKS, VNIS, VTEP_MACS, FDB, IP_ENDPOINTS, FLOOD];
    /// Every map of an instance, in the order `xlan` removes their pins.
    pub const ALL: [&str; 18] = [
        NETWORKS,
        PARENTS,
        ENDPOINTS,
        FDB,
        PORTS,
        FLOOD,
        SOURCE_MACS,
        ENDPOINT_STATS,
        DROPS,
        VNIS,
        VTEPS,
        VTEP_MACS,
        IP_ENDPOINTS,
        EVENTS,
        GENERATION,
        SPREADER,
        FLOOD_COUNTS,
        GROUPS,
    ];
}

/// `XLAN_GENERATION[USER_GENERATION]`: changed by userspace after every change it makes to a map in
/// `map_names::CACHED`.
pub const USER_GENERATION: u32 = 0;
/// `XLAN_GENERATION[DATAPATH_GENERATION]`: changed by the datapath when it adds, moves or removes a learned FDB entry,
/// changes a VTEP's MAC or a group's membership.
pub const DATAPATH_GENERATION: u32 = 1;
pub const GENERATIONS: u32 = 2;

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
    /// tcx ingress on the spreader's receiving end: another CPU's share of a broadcast's copies.
    pub const SPREADER_INGRESS: &str = "xlan_spreader_ingress";
    /// Run by userspace through BPF_PROG_TEST_RUN, never attached: takes the slot in the test run's `skb->priority`
    /// out of every group, as only the datapath can write `XLAN_GROUPS` while frames flow (`GroupMembers`), and
    /// deletes the groups of the network in `skb->mark` that have no member left (0: none).
    pub const GROUPS_FORGET: &str = "xlan_groups_forget";
    /// The datapath's programs, which every load of one instance shares (verified once, pinned): they use only the
    /// instance's pinned maps and maps of their own that userspace never touches (the per-CPU caches).
    pub const SHARED: [&str; 7] =
        [PARENT_XDP, PARENT_INGRESS, PARENT_EGRESS, ENDPOINT_INGRESS, XDP_PASS, SPREADER_INGRESS, GROUPS_FORGET];
}

/// Capacities. Userspace refuses to go past them with a clear error rather than letting an update fail.
pub const MAX_NETWORKS: u32 = 64;
/// Endpoints of one instance, over all its networks: the capacity of `XLAN_ENDPOINT_SLOTS` and `XLAN_PORT_DEVICES`, and the
/// slots of `XLAN_PORT_STATS` (per CPU: 4097 × 104 bytes, 426 KB per possible CPU).
pub const MAX_ENDPOINTS: u32 = 4096;
/// Slots of `XLAN_PORT_STATS`: one per endpoint, from 1 (userspace gives each endpoint the lowest free one), and
/// slot 0, nobody's, which an entry written without a slot counts into harmlessly.
pub const STATS_SLOTS: u32 = MAX_ENDPOINTS + 1;
/// Room for a million MACs and more (`cargo xtask bench` fills it to 1 000 000 to show lookups do not slow down).
/// The hash map is not preallocated (BPF_F_NO_PREALLOC): memory grows with the entries actually there.
pub const MAX_FDB_ENTRIES: u32 = 1_100_000;
pub const MAX_SOURCE_MACS: u32 = 4096;
/// Endpoints of one network (`endpoint add` refuses more), all of which broadcast is copied to: as many as an
/// instance can hold. The flood loop (`bpf_loop`) costs the verifier the same whatever this is; the flood list costs
/// 8 bytes a port (a 32 KB value per network).
pub const MAX_FLOOD_PORTS: usize = MAX_ENDPOINTS as usize;
/// Remote VTEPs one VXLAN network replicates broadcast to (head-end replication).
pub const MAX_VTEPS: usize = 32;
pub const MAX_VNIS: u32 = 1024;
/// ipvlan addresses and routes, over all parents.
pub const MAX_IP_ENTRIES: u32 = 16384;

/// VXLAN framing: outer Ethernet + IPv4 + UDP + VXLAN in front of the inner Ethernet frame.
pub const VXLAN_OVERHEAD: usize = 50;
pub const VXLAN_DEFAULT_PORT: u16 = 4789;
pub const VXLAN_MAX_VNI: u32 = 0x00ff_ffff;

/// Declares a `#[repr(transparent)]` u32 newtype (the layout of the bare u32 it replaces, so the maps' bytes stay
/// the same) with its named values, convertible to u32 and, under `user`, an `aya::Pod`.
macro_rules! u32_newtype {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[doc = $value_doc:literal])* $value:ident = $number:literal,)+ }) => {
        $(#[doc = $doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[doc = $value_doc])* pub const $value: Self = Self($number);)+
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                value.0
            }
        }

        #[cfg(feature = "user")]
        unsafe impl aya::Pod for $name {}
    };
}

u32_newtype! {
    /// What kind of virtual LAN a network is (`NetworkConfig::kind`). Any other value — 0 in a config nobody filled
    /// in, or a kind a newer `xlan` wrote — is dropped and counted by the datapath as `DropReason::UnknownKind`.
    NetworkKind {
        MACVLAN = 1,
        VXLAN = 2,
        IPVLAN = 3,
    }
}

u32_newtype! {
    /// macvlan modes, with the kernel's values (include/uapi/linux/if_link.h, MACVLAN_MODE_*): what
    /// `NetworkConfig::mode` holds for a macvlan network (see `NetworkConfig::macvlan_mode`).
    MacvlanMode {
        PRIVATE = 1,
        VEPA = 2,
        BRIDGE = 4,
        PASSTHRU = 8,
        SOURCE = 16,
    }
}

u32_newtype! {
    /// ipvlan modes, with the kernel's values (IPVLAN_MODE_*): what `NetworkConfig::mode` holds for an ipvlan
    /// network (see `NetworkConfig::ipvlan_mode`).
    IpvlanMode {
        L2 = 0,
        L3 = 1,
    }
}

u32_newtype! {
    /// `NetworkConfig::flags`: a set of bits.
    NetworkFlags {
        /// Endpoints and the host's address on the parent reach each other (the kernel's macvlan never allows it).
        HOST_ACCESS = 1,
        /// VXLAN: learn inner source MAC → outer source IP from received frames.
        LEARNING = 2,
        /// ipvlan `private`: endpoints never reach each other (the kernel's IPVLAN_F_PRIVATE).
        PRIVATE = 4,
        /// ipvlan `vepa`: endpoint-to-endpoint goes out to the switch and back (IPVLAN_F_VEPA).
        VEPA = 8,
    }
}

impl NetworkFlags {
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Both sets' bits (`|`, usable in constants).
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any bit of `other` is set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl core::ops::BitOr for NetworkFlags {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        self.union(other)
    }
}

impl core::ops::BitOrAssign for NetworkFlags {
    fn bitor_assign(&mut self, other: Self) {
        *self = self.union(other);
    }
}

/// Declares `DropReason` (discriminants are the positions in the list, so a reason indexes `XLAN_DROP_COUNTS` and
/// `EndpointStats::drops`), `DROP_REASONS` and `DROP_REASON_NAMES` from one list, so the three cannot disagree.
macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $reason:ident => $name:literal,)+) => {
        /// Why the datapath dropped a frame: index into `XLAN_DROP_COUNTS` and into `EndpointStats::drops`.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum DropReason {
            $($(#[doc = $doc])* $reason,)+
        }

        impl DropReason {
            /// Every reason, in index order.
            pub const ALL: [DropReason; DROP_REASONS] = [$(DropReason::$reason,)+];
        }

        pub const DROP_REASON_NAMES: [&str; DROP_REASONS] = [$($name,)+];
        pub const DROP_REASONS: usize = [$($name,)+].len();
    };
}

drop_reasons! {
    /// Shorter than its headers claim (runt, truncated VLAN tag).
    Malformed => "malformed",
    /// Endpoint-to-endpoint traffic a private network forbids (e.g. hairpinned back by the switch).
    Isolation => "isolation",
    /// The FDB points at a port that has no device any more (an XDP redirect into the ports' devmap failed).
    NoPort => "no_port",
    /// A frame from a device xlan does not know (state out of sync).
    UnknownPort => "unknown_port",
    /// A VXLAN copy for a VTEP whose next hop's MAC is not resolved yet.
    NoNeighbour => "no_neighbour",
    /// Encapsulation failed (no headroom, not a protocol the kernel can grow).
    Encap => "encap",
    /// An ipvlan endpoint sent with a source address that is not its own.
    Spoofed => "spoofed",
    /// The sender's network has a `NetworkKind` this datapath does not know (state out of sync, or written by a
    /// newer `xlan`).
    UnknownKind => "unknown_kind",
    /// A VLAN network's tag could not be taken off a frame from the wire or put on one for it (the kernel refused:
    /// no headroom, a frame that cannot be made writable).
    Vlan => "vlan",
    /// A VXLAN frame from a VTEP for a MAC behind another VTEP: VTEPs never relay each other's frames.
    SplitHorizon => "split_horizon",
    /// An endpoint's frame to its own MAC or address: nowhere to deliver it but back (the kernel's drivers drop
    /// it too).
    ToItself => "to_itself",
    /// An ipvlan l3 endpoint sent something other than IP: l3 endpoints are NOARP and only IP has a way out.
    NotIp => "not_ip",
}

impl DropReason {
    /// The name `xlan stats` and `xlan monitor` use.
    pub const fn name(self) -> &'static str {
        DROP_REASON_NAMES[self as usize]
    }

    /// The reason with this index (as `XLAN_DROP_COUNTS` and `DropRecord::reason` carry it).
    pub const fn from_index(index: u32) -> Option<Self> {
        if (index as usize) < DROP_REASONS {
            Some(Self::ALL[index as usize])
        } else {
            None
        }
    }
}

/// One record in `XLAN_EVENTS` (a BPF ring buffer): a drop that says something is wrong with xlan's state or the
/// host's (never one a sender can cause at will, which would flood the ring on the fast path). `xlan monitor`
/// reads them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropRecord {
    /// bpf_ktime_get_ns() (CLOCK_MONOTONIC) at the drop.
    pub timestamp_ns: u64,
    /// `DropReason` as u32.
    pub reason: u32,
    /// The device the program ran on (the frame's ingress device in XDP, the skb's device in TC).
    pub ifindex: u32,
    /// The endpoint concerned (host-side veth): the sender, or for `NoPort` the port the frame was for; 0 if none.
    pub port: u32,
    /// That endpoint's network, 0 if not known.
    pub network_id: u32,
    /// Length of the frame, bytes.
    pub len: u32,
    pub _pad: u32,
}

/// Size of the `XLAN_EVENTS` ring buffer: a power of two and a multiple of the page size, room for ~1600 records
/// while no `xlan monitor` reads (more are lost, the counters still count them).
pub const EVENTS_BYTES: u32 = 64 * 1024;

/// `XLAN_NETWORK_CONFIGS` value, keyed by network id (u32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    pub kind: NetworkKind,
    /// `MacvlanMode` or `IpvlanMode`, by kind (read it through `macvlan_mode` / `ipvlan_mode`).
    pub mode: u32,
    pub parent_ifindex: u32,
    pub flags: NetworkFlags,
    /// The parent's MAC: frames from endpoints to it are the host's (host access), VXLAN's outer source.
    pub parent_mac: [u8; 6],
    /// VXLAN: UDP destination port, host byte order.
    pub dstport: u16,
    /// VXLAN: the network identifier.
    pub vni: u32,
    /// VXLAN: outer source address (network byte order, as read from a packet).
    pub local_ip: u32,
    /// VXLAN: multicast group for broadcast/unknown, or 0 for head-end replication to `XLAN_VTEPS`.
    pub group_ip: u32,
    /// VXLAN: seconds a learned entry lives without traffic.
    pub ageing_secs: u32,
    /// The 802.1Q VLAN the network is on (its frames leave the parent tagged with it, and only frames of it reach
    /// the network), 0 for untagged.
    pub vlan_id: u16,
    pub _pad: u16,
}

impl NetworkConfig {
    pub const fn macvlan_mode(&self) -> MacvlanMode {
        MacvlanMode(self.mode)
    }

    pub const fn ipvlan_mode(&self) -> IpvlanMode {
        IpvlanMode(self.mode)
    }
}

/// `XLAN_PARENT_VLANS` key: a parent interface, and a VLAN on it (0: its untagged frames).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParentKey {
    pub ifindex: u32,
    /// 1-4094, or 0 for untagged. Frames tagged with a TPID other than 802.1Q's (802.1ad's S-tags) are of no VLAN
    /// xlan serves: their `vlan_id` is `FOREIGN_TAG`, which no key has.
    pub vlan_id: u32,
}

/// The `vlan_id` of a frame whose outer tag is not 802.1Q's (an 802.1ad S-tag): no network is on it.
pub const FOREIGN_TAG: u32 = 0x1_0000;

/// The highest VLAN ID (4095 is reserved).
pub const MAX_VLAN_ID: u16 = 4094;

/// `XLAN_PARENT_VLANS` value: what runs on a parent interface, in one VLAN of it or untagged.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParentConfig {
    /// The macvlan network on this parent and VLAN, 0 if none.
    pub macvlan_network: u32,
    /// How many VXLAN networks use this parent as underlay (untagged entry only: a VXLAN underlay is untagged).
    pub vxlan_networks: u32,
    /// The ipvlan network on this parent and VLAN, 0 if none.
    pub ipvlan_network: u32,
    /// How many networks are on VLANs of this parent (untagged entry only). While there are any, a frame that looks
    /// untagged in XDP is left to TC: a device may have taken its tag off into metadata XDP cannot read.
    pub vlan_networks: u32,
    /// The configuration of the macvlan or the ipvlan network (a parent carries at most one of them), as
    /// `XLAN_NETWORK_CONFIGS` has it: the parent hooks get it with the parent's entry, one lookup per frame instead of two.
    pub network: NetworkConfig,
}

/// `XLAN_NETWORK_IPS` LPM-trie key data: an IP address (IPv4 as ::ffff:a.b.c.d) in one ipvlan network. The trie key's
/// prefix length counts the 32 bits of the network, then the address's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpKey {
    /// The ipvlan network's id, big-endian so it is matched bit by bit first: addresses are per network, which is
    /// one parent and VLAN (two VLANs of a parent may use the same subnet).
    pub network: [u8; 4],
    pub addr: [u8; 16],
}

impl IpKey {
    pub const NETWORK_BITS: u32 = 32;
    /// Prefix length of an IPv4 prefix inside the mapped IPv6 space.
    pub const V4_MAPPED_BITS: u32 = 96;

    pub const fn new(network_id: u32, addr: [u8; 16]) -> Self {
        Self { network: network_id.to_be_bytes(), addr }
    }
}

/// `IpEndpoint::port` of the host's own addresses on an ipvlan parent: they stay the host's.
pub const HOST_PORT: u32 = 0;

/// An IPv4 address as the IPv4-mapped IPv6 address ::ffff:a.b.c.d.
#[inline(always)]
pub const fn v4_mapped(v4: [u8; 4]) -> [u8; 16] {
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3]]
}

/// `XLAN_IP_ENDPOINTS` value: the endpoint an address (or a route behind it) belongs to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpEndpoint {
    /// Host-side veth of the endpoint; `HOST_PORT` for the host's own addresses on the parent.
    pub port: u32,
    pub network_id: u32,
}

/// `XLAN_VNIS` key: a VXLAN network as received frames name it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VniKey {
    pub parent_ifindex: u32,
    pub vni: u32,
    /// Host byte order.
    pub dstport: u16,
    pub _pad: u16,
}

/// `XLAN_VTEPS` value, keyed by network id: the remote VTEPs broadcast/unknown frames are copied to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VtepList {
    pub count: u32,
    /// IPv4 addresses, network byte order.
    pub ips: [u32; MAX_VTEPS],
}

impl Default for VtepList {
    fn default() -> Self {
        Self { count: 0, ips: [0; MAX_VTEPS] }
    }
}

/// `XLAN_VTEP_MACS` value, keyed by a VTEP's IPv4 address: the link-layer source its frames came from,
/// the next hop back to it when the neighbour table has none yet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VtepMac {
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// `XLAN_ENDPOINT_SLOTS` value, keyed by the ifindex of the endpoint's host-side veth.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointConfig {
    pub network_id: u32,
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
    /// The endpoint's counters in `XLAN_PORT_STATS` (1..`STATS_SLOTS`).
    pub slot: u32,
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

/// `XLAN_FDB` value: where frames to a MAC go — a local port or (VXLAN) a remote VTEP.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbEntry {
    /// Host-side veth of the local endpoint that owns the MAC (also the `XLAN_PORT_DEVICES` key); 0 when remote.
    pub ifindex: u32,
    /// The VTEP behind which the MAC lives (IPv4, network byte order), when `ifindex` is 0.
    pub remote_ip: u32,
    pub flags: u32,
    /// The local endpoint's counters in `XLAN_PORT_STATS` (as its `EndpointConfig::slot`), so that delivering to it
    /// needs no other lookup; 0 when remote.
    pub slot: u32,
    /// bpf_ktime_get_ns() (CLOCK_MONOTONIC) when a learned entry last saw traffic.
    pub last_seen_ns: u64,
}

impl FdbEntry {
    /// A static entry for a local endpoint, counting into slot 0 until given the endpoint's (`with_slot`).
    pub const fn local(ifindex: u32) -> Self {
        Self { ifindex, remote_ip: 0, flags: fdb_flags::STATIC, slot: 0, last_seen_ns: 0 }
    }

    pub const fn with_slot(self, slot: u32) -> Self {
        Self { slot, ..self }
    }

    pub const fn is_static(&self) -> bool {
        self.flags & fdb_flags::STATIC != 0
    }
}

/// `XLAN_FLOOD` value, keyed by network id: the host-side veths broadcast is copied to, and their counters' slots.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodList {
    pub count: u32,
    pub ifindex: [u32; MAX_FLOOD_PORTS],
    /// `slots[i]` is the `EndpointConfig::slot` of `ifindex[i]`.
    pub slots: [u32; MAX_FLOOD_PORTS],
}

impl Default for FloodList {
    fn default() -> Self {
        Self { count: 0, ifindex: [0; MAX_FLOOD_PORTS], slots: [0; MAX_FLOOD_PORTS] }
    }
}

/// Broadcast copies are spread over CPUs only up to this many (the RPS map of the spreader has one bucket per CPU).
pub const MAX_SPREAD_CPUS: usize = 64;
/// A flood is split into one share per CPU for every this many ports (at most one share per CPU): each share the
/// receiving CPU hands off costs it about one copy (the clone into the spreader) and the other CPU an IPI when its
/// backlog was idle. Measured on 2 CPUs (`cargo xtask bench --broadcast-sizes`, copies/s spread vs not): 8 ports
/// +5 %, 16 ports +42 %, 32 ports +54 %.
pub const SPREAD_PORTS_PER_SHARE: u32 = 4;
/// A flood of 2 up to this many copies is not split: the receiving CPU hands all of it, as one share, to the next CPU
/// (the kernel's macvlan hands every broadcast to a worker the same way), which makes every copy through the
/// endpoints' rings. The receiving CPU, which also receives everything else, then spends one clone a flood, and the
/// next CPU's backlog holds only the floods waiting (`WHOLE_FLOODS_WAITING`), not their copies. Measured on 2 CPUs
/// (`--broadcast-sizes 8`): at 200 k frames/s all 1.58 M copies/s (split: 1.45 M, the generator's CPU saturated),
/// unpaced 1.83-1.85 M against 1.42 M, all delivered, no backlog drop. With the copies through the next CPU's
/// backlog instead, 2.0 M unpaced, but the copies of the waiting floods overflowed it (10-35 k drops a 2 s run even
/// at 50 k frames/s). Larger floods whole on one CPU lost copies in their rings (16 ports: 7 %, 64: 45 %, without
/// the cap on waiting floods), so they are split as before. One copy is made where it is: handing it off costs the
/// clone it would save.
pub const WHOLE_FLOOD_MAX_COPIES: u32 = BACKLOG_PORTS_PER_SHARE;
/// Whole floods a CPU hands the next one while that one has not made them yet. The next CPU's backlog holds them
/// until it does, and that queue is shared with every device without NAPI and drops when full
/// (`net.core.netdev_max_backlog`, 1000): this many keeps three quarters of the default free for the rest. A flood
/// beyond it is made on the receiving CPU (`MADE_HERE`), so an unpaced broadcast keeps both CPUs busy and the
/// backlog short.
pub const WHOLE_FLOODS_WAITING: u64 = 256;
/// `skb->mark` of a clone in the spreader: this bit, `SPREAD_TO_MEMBERS` if it is, the number of shares in bits
/// 16..24, the share in bits 8..16, the network id in bits 0..8 (`MAX_NETWORKS` ≤ 256). The original frame's mark is
/// put back after the clone.
pub const SPREAD_MARK: u32 = 1 << 31;
/// In a spreader clone's mark: the copies go to the members of the frame's group only (`XLAN_GROUPS`).
pub const SPREAD_TO_MEMBERS: u32 = 1 << 30;

/// IP multicast groups an instance keeps members of, over all its networks (`XLAN_GROUPS`, not preallocated: 8 KB an
/// entry in use, a 4 KB value in the allocator's next size). A group the map has no room for is flooded, as one
/// nobody joined.
pub const MAX_GROUPS: u32 = 4096;

/// `XLAN_GROUPS` key: a network and an IP multicast group (IPv4 mapped into IPv6, as `v4_mapped`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub network_id: u32,
    pub group: [u8; 16],
}

#[cfg(feature = "user")]
impl GroupKey {
    /// The group's address (IPv4 ones as such).
    pub fn address(&self) -> core::net::IpAddr {
        core::net::Ipv6Addr::from(self.group).to_canonical()
    }
}

/// `XLAN_GROUPS` value: the endpoints, by slot (`EndpointConfig::slot`), that reported joining the group and have
/// not reported leaving it (1; 0 otherwise). Multicast to a group is copied only to its members among the
/// network's ports, or to every port when none of them is a member (the bridge's unregistered multicast).
/// A byte a slot, not a bit: each endpoint's reports write only its own byte, with a plain store, so two endpoints
/// reporting at once on two CPUs cannot undo each other's change (a bit would need an atomic read-modify-write,
/// which needs BPF CPU v3, whose code needs more stack than the parent's program has left). Userspace only reads
/// them: a map update writes the whole value, and would undo what an endpoint's report wrote meanwhile. When it
/// removes an endpoint, it has the datapath clear the slot's bytes (`program_names::GROUPS_FORGET`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupMembers {
    pub slots: [u8; STATS_SLOTS as usize],
    pub _pad: [u8; 7],
}

impl GroupMembers {
    #[inline(always)]
    pub fn has(&self, slot: u32) -> bool {
        (slot as usize) < self.slots.len() && self.slots[slot as usize] != 0
    }

    /// No slot but maybe `slot` is a member: a group the datapath's forget of `slot` deletes (the rule of
    /// `forget_one` in datapath-ebpf's groups.rs, which userspace predicts with this; change them together).
    #[cfg(feature = "user")]
    pub fn none_but(&self, slot: u32) -> bool {
        self.slots.iter().enumerate().all(|(other, &member)| member == 0 || other == slot as usize)
    }
}

/// `XLAN_SPREADER[0]`. Broadcast copies are made on several CPUs: the CPU a frame arrives on makes its own share of
/// the flood list and sends every other share, as one clone each, into the spreader veth, whose receiving end's RPS
/// map has one bucket per CPU; the clone's hash picks the bucket, so share `i` is always made on CPU `i` and a port
/// (always in the same share) gets its copies in order. A flood of at most `WHOLE_FLOOD_MAX_COPIES` goes whole to
/// the CPU after the receiving one: a sender's frames, which arrive on one CPU, still reach each port in order (only
/// a flood that changes size, a group gaining its ninth member, can overtake one of the other size).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpreaderConfig {
    /// The spreader's sending end (0: no spreader, every copy is made on the receiving CPU).
    pub ifindex: u32,
    /// CPUs 0..cpus are in the receiving end's RPS map, in that order.
    pub cpus: u32,
    /// `hashes[i]` steers a clone to CPU `i`: the middle of RPS bucket `i` (`hash * cpus >> 32 == i`).
    pub hashes: [u32; MAX_SPREAD_CPUS],
}

impl SpreaderConfig {
    /// The configuration for a spreader `ifindex` whose receiving end spreads over CPUs 0..cpus.
    pub const fn new(ifindex: u32, cpus: u32) -> Self {
        let cpus = if cpus as usize > MAX_SPREAD_CPUS { MAX_SPREAD_CPUS as u32 } else { cpus };
        let mut hashes = [0u32; MAX_SPREAD_CPUS];
        let mut cpu = 0;
        while cpu < cpus as usize {
            hashes[cpu] = (((2 * cpu as u64 + 1) << 32) / (2 * cpus as u64)) as u32;
            cpu += 1;
        }
        Self { ifindex, cpus, hashes }
    }
}

impl Default for SpreaderConfig {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

/// The counters in `XLAN_FLOOD_COUNTS`.
pub mod flood_counter {
    /// Shares handed to another CPU through the spreader.
    pub const HANDED_OFF: u32 = 0;
    /// Shares made on the receiving CPU after all because the spreader refused the clone (the other CPU's backlog
    /// was full), or because the next CPU had `WHOLE_FLOODS_WAITING` whole floods of this one still to make: the
    /// copies are delivered, made here.
    pub const MADE_HERE: u32 = 1;
    /// Copies a CPU's full backlog refused, which then went to their endpoints' own receive rings (and that CPU's
    /// floods for the next millisecond). Each is also one drop in the kernel's /proc/net/softnet_stat and the
    /// host-side veth's tx drops, which the copy did not suffer.
    pub const BACKLOG_REFUSED: u32 = 2;
    pub const COUNT: u32 = 3;
}

/// How a copy of a frame goes into an endpoint (datapath-ebpf's `copy`). A copy is a clone transmitted on the
/// endpoint's host-side veth, which hands it to the endpoint's end in one of two ways (drivers/net/veth.c,
/// `veth_xmit`):
/// - into the CPU's backlog (`netif_rx`), as the kernel's macvlan delivers its copies: the cheaper way (measured
///   1.4× the copies/s), but a queue of `net.core.netdev_max_backlog` (1000) frames the CPU shares with every
///   device without NAPI (loopback, other veths), and which drops when full;
/// - into the endpoint's own receive ring, drained by its NAPI (GRO on at the endpoint's end): no shared bound.
///
/// The veth takes the ring when the transmit queue's number is one the endpoint's end receives on. The host-side
/// end has two transmit queues and the endpoint's end one receive queue (`driver::port::queue_copies_per_endpoint`),
/// so transmit queue 1 means the backlog and 0 the ring. The program picks one through `skb->queue_mapping`, which
/// the transmit takes as the number of the queue a frame was received on, plus one (`skb_tx_hash`; a clone has no
/// socket whose queue would come first). It does not pick when the host-side end has one transmit queue (the xdp
/// hook, one CPU, an endpoint an older xlan made until `xlan upgrade`), XPS or traffic classes, or the endpoint's
/// end more receive queues: then the veth decides alone, and every copy takes the ring.
pub const QUEUE_MAPPING_TO_BACKLOG: u32 = 2;
pub const QUEUE_MAPPING_TO_RING: u32 = 1;
/// The ports at the front of each share of a flood list whose copies take the backlog; the rest take the rings. A
/// NAPI round brings up to 64 frames to a CPU, so xlan's floods put at most half the default backlog into it in a
/// round. After a refusal (the backlog full) that copy, and this CPU's floods for the next millisecond, take the
/// rings.
pub const BACKLOG_PORTS_PER_SHARE: u32 = 8;

/// `XLAN_PORT_STATS` per-CPU value, indexed by the endpoint's slot (`EndpointConfig::slot`): an array, whose
/// lookup the kernel inlines, rather than a hash by ifindex. rx: delivered to the endpoint; tx: sent by it.
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
    unsafe impl aya::Pod for ParentConfig {}
    unsafe impl aya::Pod for ParentKey {}
    unsafe impl aya::Pod for VniKey {}
    unsafe impl aya::Pod for VtepList {}
    unsafe impl aya::Pod for VtepMac {}
    unsafe impl aya::Pod for IpKey {}
    unsafe impl aya::Pod for IpEndpoint {}
    unsafe impl aya::Pod for bench::BenchConfig {}
    unsafe impl aya::Pod for DropRecord {}
    unsafe impl aya::Pod for SpreaderConfig {}
    unsafe impl aya::Pod for GroupKey {}
    unsafe impl aya::Pod for GroupMembers {}
}

/// True for the IP multicast groups whose members are learned (`XLAN_GROUPS`), as a snooping bridge has them:
/// IPv4 224.0.0.0/4 but not the link-local 224.0.0.0/24 (routing protocols, mDNS: hosts do not report them, so no
/// filter could know their members); IPv6 multicast of link-local scope and wider but not the all-nodes group
/// ff02::1 (which hosts never report). Everything else goes to every port.
#[inline(always)]
pub const fn is_snooped_group(group: &[u8; 16]) -> bool {
    let mapped = v4_mapped([0; 4]);
    let mut prefix = 0;
    let mut ipv4 = true;
    while prefix < 12 {
        ipv4 &= group[prefix] == mapped[prefix];
        prefix += 1;
    }
    if ipv4 {
        let [a, b, c] = [group[12], group[13], group[14]];
        return a >= 224 && a <= 239 && !(a == 224 && b == 0 && c == 0);
    }
    let all_nodes = u128::from_be_bytes(*group) == 0xff02_0000_0000_0000_0000_0000_0000_0001;
    group[0] == 0xff && group[1] & 0x0f >= 2 && !all_nodes
}

/// True for broadcast and multicast destination MACs (the I/G bit).
#[inline(always)]
pub const fn is_multicast_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

/// The benchmark's programs and maps (`cargo xtask bench`). They are in the same object as the datapath but only
/// the bench loads and attaches them; xlan never does. Their maps are not pinned: each load has its own.
pub mod bench {
    /// Names of the bench programs in the eBPF object.
    pub mod program_names {
        /// XDP traffic generator, run through BPF_PROG_TEST_RUN in live-frames mode: gives each frame its flow's
        /// UDP source port and sends it (XDP_TX) out of the device the test run names as ingress.
        pub const GENERATOR: &str = "xlan_bench_gen";
        /// tcx ingress on an endpoint's own interface: counts what is delivered there, at the same point for every
        /// backend, and lets it through.
        pub const COUNTER: &str = "xlan_bench_count";
        /// tcx ingress that turns the generator's frames into frames an endpoint sends (redirect to the egress of
        /// `BenchConfig::inject_ifindex`).
        pub const INJECTOR: &str = "xlan_bench_inject";
        /// The limit of the parent's XDP hook: a bare XDP redirect into `BenchConfig::limit_wire_ifindex`, no
        /// lookup.
        pub const LIMIT_XDP: &str = "xlan_bench_limit_xdp";
        /// The limit of the parent's tc hook: a bare tcx `bpf_redirect_peer` into `BenchConfig::limit_wire_ifindex`
        /// (the peer of that veth), no lookup.
        pub const LIMIT_WIRE_TC: &str = "xlan_bench_limit_wire_tc";
        /// The limit on the endpoint path: a bare tcx `bpf_redirect_peer` into `BenchConfig::limit_tc_ifindex`.
        pub const LIMIT_TC: &str = "xlan_bench_limit_tc";
        /// The limit on an endpoint's way to the underlay: a bare tcx `bpf_redirect` to the egress of
        /// `BenchConfig::limit_egress_ifindex`, no encapsulation.
        pub const LIMIT_EGRESS: &str = "xlan_bench_limit_egress";
        /// The limit of a flood through the tc hook: a bare `bpf_clone_redirect` into each of
        /// `XLAN_BENCH_FLOOD_PORTS` (`BenchConfig::flood_ports` of them), the original passed on; one CPU, no lookup.
        pub const LIMIT_FLOOD_TC: &str = "xlan_bench_limit_flood_tc";
        /// The limit of a flood through XDP: one `bpf_redirect_map` with `BPF_F_BROADCAST` over
        /// `XLAN_BENCH_FLOOD_DEVICES` (the kernel copies the frame into each); nothing goes on to the host.
        pub const LIMIT_FLOOD_XDP: &str = "xlan_bench_limit_flood_xdp";
    }

    /// Names of the bench maps.
    pub mod map_names {
        pub const CONFIG: &str = "XLAN_BENCH_CONFIG";
        pub const COUNTERS: &str = "XLAN_BENCH_COUNTERS";
        pub const TEMPLATE: &str = "XLAN_BENCH_TEMPLATE";
        pub const FLOOD_PORTS: &str = "XLAN_BENCH_FLOOD_PORTS";
        pub const FLOOD_DEVICES: &str = "XLAN_BENCH_FLOOD_DEVICES";
    }

    /// Ports the flood limits copy to at most.
    pub const MAX_FLOOD_PORTS: u32 = 4096;

    /// The generator's frames are exactly this long.
    pub const FRAME_LEN: usize = 64;

    /// `XLAN_BENCH_TEMPLATE[0]`: the frame the generator sends, restored into every frame before it goes out. In
    /// live-frames mode the kernel copies the test run's data into a page only when the page is new; recycled pages
    /// keep what the path last wrote into them (a router rewrites MACs and the TTL in place), so the template must
    /// be put back each time.
    #[repr(C, align(8))]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct BenchTemplate {
        pub bytes: [u8; FRAME_LEN],
    }

    impl Default for BenchTemplate {
        fn default() -> Self {
            Self { bytes: [0; FRAME_LEN] }
        }
    }

    #[cfg(feature = "user")]
    unsafe impl aya::Pod for BenchTemplate {}

    /// `XLAN_BENCH_COUNTERS` slots (per-CPU u64).
    pub const COUNTER_DELIVERED: u32 = 0;
    pub const COUNTER_GENERATED: u32 = 1;
    pub const COUNTERS: u32 = 2;

    /// `XLAN_BENCH_CONFIG[0]`: what the bench programs of one load do. An ifindex is in the namespace of the device
    /// the program that reads it is attached to.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct BenchConfig {
        /// Flows the generator spreads frames over: UDP source ports `base_port .. base_port + flows`.
        pub flows: u32,
        pub base_port: u32,
        pub inject_ifindex: u32,
        /// Where the limit on the parent sends every frame (`LIMIT_XDP`, `LIMIT_WIRE_TC`).
        pub limit_wire_ifindex: u32,
        pub limit_tc_ifindex: u32,
        pub limit_egress_ifindex: u32,
        /// How many of `XLAN_BENCH_FLOOD_PORTS` the tc flood limit copies to.
        pub flood_ports: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn drop_reasons_index_their_names() {
        for (index, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, index);
            assert_eq!(DropReason::from_index(index as u32), Some(reason));
            assert_eq!(reason.name(), DROP_REASON_NAMES[index]);
        }
        assert_eq!(DropReason::from_index(DROP_REASONS as u32), None);
        assert_eq!(DropReason::UnknownPort.name(), "unknown_port");
    }

    #[test]
    fn newtypes_keep_the_layout_the_datapath_reads() {
        // kind, mode, parent_ifindex, flags, parent_mac + dstport, vni, local_ip, group_ip, ageing_secs, vlan_id + pad.
        assert_eq!(size_of::<NetworkConfig>(), 44);
        assert_eq!(size_of::<NetworkKind>(), 4);
        assert_eq!(size_of::<NetworkFlags>(), 4);
        assert_eq!(size_of::<DropRecord>(), 32);
    }

    #[test]
    fn map_values_have_no_implicit_holes() {
        // The fields' sizes add up to the struct's: nothing the kernel copies is left uninitialised.
        assert_eq!(size_of::<ParentConfig>(), 4 * 4 + size_of::<NetworkConfig>());
        assert_eq!(size_of::<ParentKey>(), 2 * 4);
        assert_eq!(size_of::<EndpointConfig>(), 4 + 6 + 2 + 4);
        assert_eq!(size_of::<FdbEntry>(), 4 * 4 + 8);
        assert_eq!(size_of::<FloodList>(), 4 + 2 * 4 * MAX_FLOOD_PORTS);
        assert_eq!(size_of::<SpreaderConfig>(), 2 * 4 + 4 * MAX_SPREAD_CPUS);
    }

    /// The kernel's RPS picks bucket `reciprocal_scale(hash, len)`, `(hash * len) >> 32`: each CPU's hash must land
    /// in that CPU's bucket, and none may be 0 (an skb without a hash is not steered at all).
    #[test]
    fn spreader_hashes_pick_their_cpus_bucket() {
        for cpus in [2u32, 3, 4, 7, 64, 200] {
            let config = SpreaderConfig::new(5, cpus);
            assert_eq!(config.cpus, cpus.min(MAX_SPREAD_CPUS as u32));
            for cpu in 0..config.cpus {
                let hash = config.hashes[cpu as usize];
                assert_ne!(hash, 0);
                assert_eq!(((hash as u64 * config.cpus as u64) >> 32) as u32, cpu, "{cpus} CPUs, CPU {cpu}");
            }
        }
    }

    #[test]
    fn flags_are_sets() {
        let flags = NetworkFlags::PRIVATE | NetworkFlags::LEARNING;
        assert!(flags.contains(NetworkFlags::PRIVATE));
        assert!(!flags.contains(NetworkFlags::PRIVATE | NetworkFlags::VEPA));
        assert!(flags.intersects(NetworkFlags::PRIVATE | NetworkFlags::VEPA));
        assert!(!NetworkFlags::empty().intersects(NetworkFlags::HOST_ACCESS));
        let mut more = NetworkFlags::empty();
        more |= NetworkFlags::VEPA;
        assert_eq!(more, NetworkFlags::VEPA);
    }
}
