//! Per-CPU copies of what the unicast path looks up for every frame: the parent's entry (`XLAN_PARENTS`, with its
//! macvlan or ipvlan network's configuration), the sending endpoint's with its network's (`XLAN_ENDPOINTS`,
//! `XLAN_NETWORKS`), and macvlan FDB answers. A copy is found by an array lookup, which the kernel inlines, where a
//! hashed lookup costs a call, a hash and a bucket walk: about 28 ns per frame each, measured as the BPF run time of
//! the parent hook with and without them. A copy is good while `XLAN_GENERATION` holds the value it was made under:
//! userspace writes a new one after every change to those maps and to the FDB.
//!
//! Per CPU, so without locks: the programs run with bottom halves off, so nothing else on this CPU runs them while
//! one is between reading and writing an entry. Not pinned: each load of the programs has caches of its own.
use aya_ebpf::{macros::map, maps::PerCpuArray};
use datapath_common::{EndpointConfig, FdbEntry, MacKey, NetworkConfig, ParentConfig, GENERATION_KEY};

use crate::{
    fdb::lookup,
    maps::{ENDPOINTS, GENERATION, NETWORKS, PARENTS},
};

/// A cached entry: the generation it was read under, what it is for (a device's ifindex, an FDB key) and the copy.
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

/// A macvlan FDB answer: the entry, or none (`found` 0: unknown unicast, the host's).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FdbAnswer {
    entry: FdbEntry,
    found: u32,
    _pad: u32,
}

/// Entries per cache (powers of two), direct-mapped: a host has a few parents; the endpoints that send on one CPU,
/// and a macvlan network's MACs (its endpoints', at most `MAX_FLOOD_PORTS`, and the senders it hears from), spread
/// over this many.
const PARENT_ENTRIES: u32 = 4;
const SENDER_ENTRIES: u32 = 64;
const FDB_ENTRIES: u32 = 256;

#[map(name = "XLAN_PARENT_CACHE")]
static PARENT_CACHE: PerCpuArray<Cached<u32, ParentConfig>> = PerCpuArray::with_max_entries(PARENT_ENTRIES, 0);

#[map(name = "XLAN_SENDER_CACHE")]
static SENDER_CACHE: PerCpuArray<Cached<u32, SenderConfig>> = PerCpuArray::with_max_entries(SENDER_ENTRIES, 0);

#[map(name = "XLAN_FDB_CACHE")]
static FDB_CACHE: PerCpuArray<Cached<MacKey, FdbAnswer>> = PerCpuArray::with_max_entries(FDB_ENTRIES, 0);

/// What runs on the parent `ifindex`, with the configuration of its macvlan or ipvlan network.
#[inline(always)]
pub fn parent_config(ifindex: u32) -> Option<&'static ParentConfig> {
    // SAFETY: plain data copied out of the map.
    cached(&PARENT_CACHE, PARENT_ENTRIES, ifindex, ifindex, || unsafe { PARENTS.get(&ifindex).copied() })
}

/// The endpoint whose host-side veth is `ifindex`, with its network's configuration.
#[inline(always)]
pub fn sender_config(ifindex: u32) -> Option<&'static SenderConfig> {
    cached(&SENDER_CACHE, SENDER_ENTRIES, ifindex, ifindex, || {
        // SAFETY: plain data copied out of the maps.
        let endpoint = unsafe { *ENDPOINTS.get(&ifindex)? };
        let network = unsafe { *NETWORKS.get(&endpoint.network_id)? };
        Some(SenderConfig { endpoint, network })
    })
}

/// Where frames to `mac` go in the macvlan network: its FDB entry, answers of both kinds cached. Only for macvlan
/// networks, whose entries only userspace writes (the endpoints'); VXLAN's FDB learns and ages in the datapath,
/// which writes no new generation, so it is always looked up.
#[inline(always)]
pub fn macvlan_fdb(network_id: u32, mac: [u8; 6]) -> Option<FdbEntry> {
    let key = MacKey::new(network_id, mac);
    // MACs differ most in their last bytes (xlan's own are random there).
    let low = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    let index = low ^ (low >> 8) ^ network_id;
    let answer = cached(&FDB_CACHE, FDB_ENTRIES, index, key, || {
        Some(match lookup(network_id, mac) {
            Some(entry) => FdbAnswer { entry, found: 1, _pad: 0 },
            None => FdbAnswer { entry: FdbEntry::default(), found: 0, _pad: 0 },
        })
    })?;
    if answer.found == 0 {
        None
    } else {
        Some(answer.entry)
    }
}

/// This CPU's copy of what `read` gives for `key`, in the entry `index` picks (modulo `entries`); read again when
/// the entry holds another key's or one of another generation. None, and nothing cached, when `read` gives none.
/// A zeroed entry is for ifindex 0 or network 0, which neither devices nor networks have.
#[inline(always)]
fn cached<K: Copy + PartialEq, T: Copy>(
    cache: &PerCpuArray<Cached<K, T>>,
    entries: u32,
    index: u32,
    key: K,
    read: impl FnOnce() -> Option<T>,
) -> Option<&'static T> {
    let generation = GENERATION.get(GENERATION_KEY).copied().unwrap_or(0);
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
