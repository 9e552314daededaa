//! Per-CPU copies of the configuration the unicast path needs for the device a frame is on: the parent's entry
//! (`XLAN_PARENTS`, with its macvlan or ipvlan network's configuration), or the sending endpoint's with its network's
//! (`XLAN_ENDPOINTS`, `XLAN_NETWORKS`). A copy is found by an array lookup, which the kernel inlines, where a hashed
//! lookup costs a call, a hash and a bucket walk: about 28 ns per frame each, measured as the BPF run time of the
//! parent hook with and without them. A copy is good while `XLAN_GENERATION` holds the value it was made under:
//! userspace writes a new one after every change to those maps.
//!
//! Per CPU, so without locks: the programs run with bottom halves off, so nothing else on this CPU runs them while
//! one is between reading and writing an entry. Not pinned: each load of the programs has caches of its own.
use aya_ebpf::{macros::map, maps::PerCpuArray};
use datapath_common::{EndpointConfig, NetworkConfig, ParentConfig, GENERATION_KEY};

use crate::maps::{ENDPOINTS, GENERATION, NETWORKS, PARENTS};

/// A cached entry: the device it is for, the generation it was read under and the copy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Cached<T> {
    ifindex: u32,
    _pad: u32,
    generation: u64,
    value: T,
}

/// An endpoint and its network: what everything the endpoint sends needs.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SenderConfig {
    pub endpoint: EndpointConfig,
    pub network: NetworkConfig,
}

/// Entries per cache (powers of two), direct-mapped by ifindex: a host has a few parents, and the endpoints that
/// send on one CPU spread over this many entries.
const PARENT_ENTRIES: u32 = 4;
const SENDER_ENTRIES: u32 = 64;

#[map(name = "XLAN_PARENT_CACHE")]
static PARENT_CACHE: PerCpuArray<Cached<ParentConfig>> = PerCpuArray::with_max_entries(PARENT_ENTRIES, 0);

#[map(name = "XLAN_SENDER_CACHE")]
static SENDER_CACHE: PerCpuArray<Cached<SenderConfig>> = PerCpuArray::with_max_entries(SENDER_ENTRIES, 0);

/// What runs on the parent `ifindex`, with the configuration of its macvlan or ipvlan network.
#[inline(always)]
pub fn parent_config(ifindex: u32) -> Option<&'static ParentConfig> {
    // SAFETY: plain data copied out of the map.
    cached(&PARENT_CACHE, PARENT_ENTRIES, ifindex, || unsafe { PARENTS.get(&ifindex).copied() })
}

/// The endpoint whose host-side veth is `ifindex`, with its network's configuration.
#[inline(always)]
pub fn sender_config(ifindex: u32) -> Option<&'static SenderConfig> {
    cached(&SENDER_CACHE, SENDER_ENTRIES, ifindex, || {
        // SAFETY: plain data copied out of the maps.
        let endpoint = unsafe { *ENDPOINTS.get(&ifindex)? };
        let network = unsafe { *NETWORKS.get(&endpoint.network_id)? };
        Some(SenderConfig { endpoint, network })
    })
}

/// This CPU's copy of what `read` gives for `ifindex`, read again when the entry holds another device's or one
/// of another generation. None, and nothing cached, when `read` finds nothing.
#[inline(always)]
fn cached<T: Copy>(
    cache: &PerCpuArray<Cached<T>>,
    entries: u32,
    ifindex: u32,
    read: impl FnOnce() -> Option<T>,
) -> Option<&'static T> {
    let generation = GENERATION.get(GENERATION_KEY).copied().unwrap_or(0);
    let entry = cache.get_ptr_mut(ifindex & (entries - 1))?;
    // SAFETY: this CPU's entry, which nothing else writes meanwhile (see above); the pointer comes from the map.
    let entry = unsafe { &mut *entry };
    // A zeroed entry is for ifindex 0, which no device has.
    if entry.ifindex != ifindex || entry.generation != generation {
        entry.value = read()?;
        entry.ifindex = ifindex;
        entry.generation = generation;
    }
    Some(&entry.value)
}
