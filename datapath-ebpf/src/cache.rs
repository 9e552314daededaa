//! Per-CPU copies of what the unicast paths look up for every frame: the parent's entry (`XLAN_PARENTS`, with its
//! macvlan or ipvlan network's configuration), the sending endpoint's with its network's (`XLAN_ENDPOINT_SLOTS`,
//! `XLAN_NETWORK_CONFIGS`), a VNI's network (`XLAN_VNIS`, `XLAN_NETWORK_CONFIGS`), FDB answers, VTEPs' MACs and ipvlan addresses'
//! owners (`XLAN_NETWORK_IPS`, a longest-prefix match, with the owner's counter slot from `XLAN_ENDPOINT_SLOTS`). A copy is found by
//! an array lookup, which the kernel inlines, where a hashed lookup costs a call, a hash and a bucket walk: about
//! 28 ns per frame each, measured as the BPF run time of the parent hook with and without them. Floods of multicast
//! keep the member counts of their groups (`member_ports`), a walk of the whole flood list each.
//!
//! A copy is good while the generations it was made under hold: `XLAN_GENERATION[USER_GENERATION]`, which userspace
//! changes after every change to those maps, and for copies of what the datapath writes itself (learned FDB entries,
//! VTEPs' MACs, group memberships) also `[DATAPATH_GENERATION]`, which the datapath changes (`datapath_changed`) when
//! it adds, moves or removes such an entry. Refreshing a learned entry's `last_seen_ns` changes no generation: a copy
//! ages by its own stamp, and one that looks expired is read again.
//!
//! Per CPU, so without locks: the programs run with bottom halves off, so nothing else on this CPU runs them while
//! one is between reading and writing an entry. Not pinned: each load of the programs has caches of its own, and the
//! programs an instance shares (verified once by a load, pinned by userspace's loader) share that load's.
use aya_ebpf::maps::lpm_trie::Key;
use aya_ebpf::{
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    macros::map,
    maps::PerCpuArray,
};
use datapath_common::{
    EndpointConfig, FdbEntry, GroupKey, IpKey, NetworkConfig, ParentConfig, ParentKey, VniKey, DATAPATH_GENERATION,
    USER_GENERATION,
};

use crate::{
    fdb::{lookup, lookup_fresh, now_ns},
    groups::MemberPorts,
    maps::{ENDPOINTS, GENERATION, IP_ENDPOINTS, NETWORKS, PARENTS, VNIS, VTEP_MACS},
    parse::IpAddress,
    port::Port,
};

/// A cached entry: the generation it was read under, what it is for (a device's ifindex, a VNI, an FDB key, a VTEP)
/// and the copy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Cached<K, T> {
    generation: u64,
    key: K,
    value: T,
}

/// An endpoint and its network: what everything the endpoint sends needs.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SenderConfig {
    pub endpoint: EndpointConfig,
    pub network: NetworkConfig,
}

/// A VXLAN network as received frames name it (`XLAN_VNIS`), with its configuration.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VniNetwork {
    pub network_id: u32,
    pub network: NetworkConfig,
}

/// A MAC in a network, as `FDB_CACHE` keeps it: in words, where `MacKey` has bytes (`IpAddress` says why).
#[repr(C)]
#[derive(Clone, Copy, PartialEq)]
struct MacInNetwork {
    network_id: u64,
    mac: u64,
}

/// An FDB answer: the entry, or none (`found` 0: unknown unicast).
#[repr(C)]
#[derive(Clone, Copy)]
struct FdbAnswer {
    entry: FdbEntry,
    found: u32,
    _pad: u32,
}

/// An address in an ipvlan network, as `IP_CACHE` keeps it: in words (`IpAddress` says why), where `IpKey` has the
/// trie's bytes.
#[repr(C)]
#[derive(Clone, Copy, PartialEq)]
struct IpOwnerKey {
    network_id: u64,
    addr: IpAddress,
}

/// Who owns an address in an ipvlan network, or nobody (`found` 0: not an endpoint's nor the host's).
#[repr(C)]
#[derive(Clone, Copy)]
struct IpAnswer {
    /// Host-side veth of the endpoint; `HOST_PORT` for the host's own addresses on the parent.
    port: u32,
    slot: u32,
    found: u32,
}

/// Entries per cache (powers of two), direct-mapped: a host has a few parents and VNIs; the endpoints that send on
/// one CPU, the MACs it forwards to (a macvlan network's are its endpoints', at most `MAX_FLOOD_PORTS`), the addresses
/// it delivers to, the groups its floods go to (by sender) and the VTEPs it sends to spread over this many. One set
/// serves every endpoint of an instance (the endpoints share their program), so the senders', destinations' and
/// groups' caches hold 1024: endpoints' host-side veths have consecutive ifindexes, which fill the senders' without a
/// collision up to that many. About 200 KB per CPU for a set; an instance has two, the parents' programs' and the
/// endpoints' (805 KB on 2 CPUs, by bpftool's memlock; 140 KB with 64 senders, 256 destinations and 64 groups,
/// when each endpoint's program brought its own 68 KB on 2 CPUs).
const PARENT_ENTRIES: u32 = 16;
const SENDER_ENTRIES: u32 = 1024;
const VNI_ENTRIES: u32 = 16;
const FDB_ENTRIES: u32 = 1024;
const VTEP_ENTRIES: u32 = 32;
const IP_ENTRIES: u32 = 1024;
const GROUP_ENTRIES: u32 = 1024;

/// A flood of multicast to a group, by its sender (its members less the sender are the copies): in words, where
/// `GroupKey` has bytes (`IpAddress` says why).
#[repr(C)]
#[derive(Clone, Copy, PartialEq)]
struct GroupFlood {
    network_id: u32,
    except_ifindex: u32,
    group: IpAddress,
}

#[map(name = "XLAN_PARENT_CACHE")]
static PARENT_CACHE: PerCpuArray<Cached<ParentKey, ParentConfig>> = PerCpuArray::with_max_entries(PARENT_ENTRIES, 0);

#[map(name = "XLAN_SENDER_CACHE")]
static SENDER_CACHE: PerCpuArray<Cached<u32, SenderConfig>> = PerCpuArray::with_max_entries(SENDER_ENTRIES, 0);

#[map(name = "XLAN_VNI_CACHE")]
static VNI_CACHE: PerCpuArray<Cached<VniKey, VniNetwork>> = PerCpuArray::with_max_entries(VNI_ENTRIES, 0);

#[map(name = "XLAN_FDB_CACHE")]
static FDB_CACHE: PerCpuArray<Cached<MacInNetwork, FdbAnswer>> = PerCpuArray::with_max_entries(FDB_ENTRIES, 0);

#[map(name = "XLAN_VTEP_CACHE")]
static VTEP_CACHE: PerCpuArray<Cached<u32, [u8; 8]>> = PerCpuArray::with_max_entries(VTEP_ENTRIES, 0);

#[map(name = "XLAN_GROUP_CACHE")]
static GROUP_CACHE: PerCpuArray<Cached<GroupFlood, MemberPorts>> = PerCpuArray::with_max_entries(GROUP_ENTRIES, 0);

#[map(name = "XLAN_IP_CACHE")]
static IP_CACHE: PerCpuArray<Cached<IpOwnerKey, IpAnswer>> = PerCpuArray::with_max_entries(IP_ENTRIES, 0);

/// Who owns `addr` in the ipvlan network (its longest-prefix match in `XLAN_NETWORK_IPS`: an address of an endpoint,
/// a route behind one, or the host's own address, `port` `HOST_PORT`), as a port with its counter slot (0 for the
/// host); answers of both kinds cached. A trie lookup and the slot's hashed lookup cost about 40 ns a frame (`perf`,
/// ipvlan l3 outside → endpoint).
#[inline(always)]
pub fn ip_owner(network_id: u32, addr: IpAddress) -> Option<Port> {
    let key = IpOwnerKey { network_id: network_id as u64, addr };
    let low = addr.low_bits();
    let answer = cached(&IP_CACHE, IP_ENTRIES, low ^ (low >> 8) ^ network_id, key, user_generation(), || {
        let trie_key = Key::new(IpKey::NETWORK_BITS + 128, IpKey::new(network_id, addr.bytes()));
        Some(match IP_ENDPOINTS.get(&trie_key) {
            Some(owner) => IpAnswer { port: owner.port, slot: Port::by_ifindex(owner.port).slot, found: 1 },
            None => IpAnswer { port: 0, slot: 0, found: 0 },
        })
    })?;
    (answer.found != 0).then_some(Port { ifindex: answer.port, slot: answer.slot })
}

/// The members of a group among its network's ports, for a flood by the port `except_ifindex` (`count` counts them).
/// Counting walks the whole flood list, 64 bit tests a frame for 64 ports: made once per group, sender and CPU, and
/// again when the generations say a membership or a flood list changed (the datapath's, written by reports and
/// forgets; the user's, by flood list changes). `generation`: `generations()` as read before the flood list and
/// the group's members were.
#[inline(always)]
pub fn member_ports(
    group: GroupKey,
    except_ifindex: u32,
    generation: u64,
    count: impl FnOnce() -> MemberPorts,
) -> MemberPorts {
    let key = GroupFlood { network_id: group.network_id, except_ifindex, group: IpAddress::from_bytes(group.group) };
    let low = key.group.low_bits();
    let index = low ^ (low >> 8) ^ group.network_id ^ except_ifindex;
    // None only if this CPU's entry were out of reach: a flood to every port then, more copies than needed but none
    // missing.
    cached(&GROUP_CACHE, GROUP_ENTRIES, index, key, generation, || Some(count()))
        .copied()
        .unwrap_or(MemberPorts::UNFILTERED)
}

/// What runs on a parent (untagged, or on a VLAN of it), with the configuration of its macvlan or ipvlan network.
#[inline(always)]
pub fn parent_config(key: ParentKey) -> Option<&'static ParentConfig> {
    let generation = user_generation();
    let index = key.ifindex ^ key.vlan_id;
    // SAFETY: plain data copied out of the map.
    cached(&PARENT_CACHE, PARENT_ENTRIES, index, key, generation, || unsafe { PARENTS.get(&key).copied() })
}

/// The endpoint whose host-side veth is `ifindex`, with its network's configuration.
#[inline(always)]
pub fn sender_config(ifindex: u32) -> Option<&'static SenderConfig> {
    cached(&SENDER_CACHE, SENDER_ENTRIES, ifindex, ifindex, user_generation(), || {
        // SAFETY: plain data copied out of the maps.
        let endpoint = unsafe { *ENDPOINTS.get(&ifindex)? };
        let network = unsafe { *NETWORKS.get(&endpoint.network_id)? };
        Some(SenderConfig { endpoint, network })
    })
}

/// The VXLAN network a frame on the parent names (parent, VNI, UDP port), with its configuration.
#[inline(always)]
pub fn vni_network(key: VniKey) -> Option<&'static VniNetwork> {
    let index = key.vni ^ key.parent_ifindex ^ key.dstport as u32;
    cached(&VNI_CACHE, VNI_ENTRIES, index, key, user_generation(), || {
        // SAFETY: plain data copied out of the maps.
        let network_id = unsafe { *VNIS.get(&key)? };
        let network = unsafe { *NETWORKS.get(&network_id)? };
        Some(VniNetwork { network_id, network })
    })
}

/// The MAC `xlan` keeps for the VTEP `remote` (`XLAN_VTEP_MACS`; all zero while it is not known yet).
#[inline(always)]
pub fn vtep_mac(remote: u32) -> Option<[u8; 6]> {
    let found = cached(&VTEP_CACHE, VTEP_ENTRIES, remote ^ (remote >> 16), remote, generations(), || {
        // SAFETY: plain data copied out of the map.
        let known = unsafe { VTEP_MACS.get(&remote)? };
        let mac = known.mac;
        Some([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0])
    })?;
    Some([found[0], found[1], found[2], found[3], found[4], found[5]])
}

/// Where frames to `mac` go in the macvlan network: its FDB entry, answers of both kinds cached. A macvlan
/// network's FDB holds only what userspace writes (its endpoints' MACs).
#[inline(always)]
pub fn macvlan_fdb(network_id: u32, mac: [u8; 6]) -> Option<FdbEntry> {
    let Some(cached) = fdb_entry(network_id, mac) else { return lookup(network_id, mac) };
    if let Some(answer) = cached.answer {
        return answer;
    }
    let answer = lookup(network_id, mac);
    cached.keep(answer);
    answer
}

/// Where frames to `mac` go in the VXLAN network (`lookup_fresh`), hits cached; misses (flooded) are always looked
/// up. A cached learned entry that looks past its age (its copy's `last_seen_ns` is not refreshed) is looked up
/// again.
#[inline(always)]
pub fn vxlan_fdb(network_id: u32, mac: [u8; 6], ageing_secs: u32) -> Option<FdbEntry> {
    let Some(cached) = fdb_entry(network_id, mac) else { return lookup_fresh(network_id, mac, ageing_secs) };
    if let Some(Some(found)) = cached.answer {
        if found.is_static() || now_ns().saturating_sub(found.last_seen_ns) <= ageing_secs as u64 * 1_000_000_000 {
            return Some(found);
        }
    }
    let answer = lookup_fresh(network_id, mac, ageing_secs);
    if answer.is_some() {
        cached.keep(answer);
    }
    answer
}

/// This CPU's cache entry for an FDB key, and the generations read before anything else, which a copy kept in it
/// is made under: a change after that read leaves the copy invalid, never a stale copy valid.
pub struct FdbCached {
    entry: &'static mut Cached<MacInNetwork, FdbAnswer>,
    key: MacInNetwork,
    generation: u64,
    /// The answer the entry holds for the key under the current generations.
    pub answer: Option<Option<FdbEntry>>,
}

impl FdbCached {
    /// Keeps `answer` (as read after `fdb_entry`) as this CPU's copy.
    #[inline(always)]
    pub fn keep(self, answer: Option<FdbEntry>) {
        self.entry.value = match answer {
            Some(found) => FdbAnswer { entry: found, found: 1, _pad: 0 },
            None => FdbAnswer { entry: FdbEntry::default(), found: 0, _pad: 0 },
        };
        self.entry.key = self.key;
        self.entry.generation = self.generation;
    }
}

/// This CPU's cache entry for `mac` in the network, with the answer it holds for the current generations.
#[inline(always)]
pub fn fdb_entry(network_id: u32, mac: [u8; 6]) -> Option<FdbCached> {
    let [a, b, c, d, e, f] = mac;
    let key = MacInNetwork { network_id: network_id as u64, mac: u64::from_ne_bytes([a, b, c, d, e, f, 0, 0]) };
    let generation = generations();
    // MACs differ most in their last bytes (xlan's own are random there).
    let low = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    let entry = FDB_CACHE.get_ptr_mut((low ^ (low >> 8) ^ network_id) & (FDB_ENTRIES - 1))?;
    // SAFETY: this CPU's entry, which nothing else writes meanwhile (see above); the pointer comes from the map.
    let entry = unsafe { &mut *entry };
    let answer = if entry.key == key && entry.generation == generation {
        Some(if entry.value.found == 0 { None } else { Some(entry.value.entry) })
    } else {
        None
    };
    Some(FdbCached { entry, key, generation, answer })
}

/// Tells every CPU's copies that the datapath added, moved or removed a learned FDB entry, a VTEP's MAC or a group's
/// member (a report, the forget), by
/// writing a value no earlier change wrote: the time, with this CPU in the top byte. There is no atomic increment
/// here (the BPF target has no atomic read-modify-write in Rust), and two CPUs incrementing at once could write the
/// same value, leaving a copy made between their writes valid; times differ per call, and the CPU byte keeps two
/// CPUs apart within the same nanosecond.
#[inline(always)]
pub fn datapath_changed() {
    if let Some(generation) = GENERATION.get_ptr_mut(DATAPATH_GENERATION) {
        // SAFETY: plain helper calls; the pointer comes from the map, and an aligned u64 store is not torn.
        unsafe { *generation = bpf_ktime_get_ns() ^ ((bpf_get_smp_processor_id() as u64) << 56) };
    }
}

#[inline(always)]
fn user_generation() -> u64 {
    GENERATION.get(USER_GENERATION).copied().unwrap_or(0)
}

/// Both generations as one value. Userspace's counts up from 0 in the low bits; the datapath's is a time, whose
/// changes between two writes lie in its low bits too, which the rotation moves to the high half: two different
/// pairs do not look the same.
#[inline(always)]
pub fn generations() -> u64 {
    let datapath = GENERATION.get(DATAPATH_GENERATION).copied().unwrap_or(0);
    user_generation() ^ datapath.rotate_left(32)
}

/// This CPU's copy of what `read` gives for `key`, in the entry `index` picks (modulo `entries`); read again when
/// the entry holds another key's or one of another generation. The reference is good until the next call on the
/// same cache on this CPU, which may overwrite the entry: callers that keep it (the sender's and a VNI's network,
/// read in place) make one call a run, and a run's nested runs (`bpf_clone_redirect` into a parent's egress hook
/// runs it at once) must not look up those caches. None, and nothing cached, when `read` gives none.
/// A zeroed entry is for ifindex 0, network 0, parent 0 or VTEP 0.0.0.0, which no device, network or VTEP has.
#[inline(always)]
fn cached<K: Copy + PartialEq, T: Copy>(
    cache: &PerCpuArray<Cached<K, T>>,
    entries: u32,
    index: u32,
    key: K,
    generation: u64,
    read: impl FnOnce() -> Option<T>,
) -> Option<&'static T> {
    let entry = cache.get_ptr_mut(index & (entries - 1))?;
    // SAFETY: this CPU's entry, which nothing else writes meanwhile (see above); the pointer comes from the map.
    let entry = unsafe { &mut *entry };
    if entry.key != key || entry.generation != generation {
        entry.value = read()?;
        entry.key = key;
        entry.generation = generation;
    }
    Some(&entry.value)
}
