//! Lookups in the forwarding tables and the one flood loop.
use aya_ebpf::programs::TcContext;
use datapath_common::{FdbEntry, MacKey, NetworkConfig, MAX_FLOOD_PORTS};

use crate::{
    maps::{ENDPOINTS, FDB, FLOOD, NETWORKS, PARENTS, SOURCE_MACS},
    stats::count_rx,
};

/// The local port that owns `mac` in the network.
#[inline(always)]
pub fn lookup(network_id: u32, mac: [u8; 6]) -> Option<FdbEntry> {
    // SAFETY: entries are plain data copied out at once; a concurrent update can at worst give a stale port.
    unsafe { FDB.get(&MacKey::new(network_id, mac)).copied() }
}

/// True when `mac` is on the source-mode allowed list of the network.
#[inline(always)]
pub fn source_allowed(network_id: u32, mac: [u8; 6]) -> bool {
    SOURCE_MACS.get_ptr(&MacKey::new(network_id, mac)).is_some()
}

/// The network whose parent is `ifindex`.
#[inline(always)]
pub fn network_of_parent(ifindex: u32) -> Option<(u32, NetworkConfig)> {
    // SAFETY: as in `lookup`.
    let network_id = unsafe { *PARENTS.get(&ifindex)? };
    let config = unsafe { *NETWORKS.get(&network_id)? };
    Some((network_id, config))
}

/// The network of the endpoint whose host-side veth is `ifindex`.
#[inline(always)]
pub fn network_of_endpoint(ifindex: u32) -> Option<(u32, NetworkConfig)> {
    // SAFETY: as in `lookup`.
    let network_id = unsafe { ENDPOINTS.get(&ifindex)?.network_id };
    let config = unsafe { *NETWORKS.get(&network_id)? };
    Some((network_id, config))
}

/// The first port of the network's flood list (passthru networks have exactly one).
#[inline(always)]
pub fn first_port(network_id: u32) -> Option<u32> {
    let list = FLOOD.get_ptr(&network_id)?;
    // SAFETY: the pointer comes from the map and the list is plain data.
    unsafe { if (*list).count > 0 { Some((*list).ifindex[0]) } else { None } }
}

/// Sends one copy of the frame to every port of the network except `except_ifindex` (the sender).
/// TC, not XDP: only an skb can be cloned, and the original still goes on (to the host or the wire).
#[inline(always)]
pub fn flood(ctx: &TcContext, network_id: u32, except_ifindex: u32) {
    let Some(list) = FLOOD.get_ptr(&network_id) else { return };
    // SAFETY: the pointer comes from the map; the loop bound is a constant so the verifier sees it end.
    let count = unsafe { (*list).count } as usize;
    for slot in 0..MAX_FLOOD_PORTS {
        if slot >= count {
            break;
        }
        let port = unsafe { (*list).ifindex[slot] };
        if port != except_ifindex && ctx.clone_redirect(port, 0).is_ok() {
            count_rx(port, ctx.len());
        }
    }
}
