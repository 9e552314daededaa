//! Delivery into a local endpoint, counted once here.
use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_SHOT},
    helpers::{bpf_redirect, bpf_redirect_peer},
    programs::{TcContext, XdpContext},
    EbpfContext,
};
use datapath_common::FdbEntry;

use crate::{
    copy::{set_way, WayIn},
    error::Error,
    maps::{ENDPOINTS, PORTS},
    parse::Packet,
    stats::count_rx,
};

/// A local endpoint as frames are delivered to it: its host-side veth, and the slot of its counters.
#[derive(Clone, Copy)]
pub struct Port {
    pub ifindex: u32,
    pub slot: u32,
}

impl Port {
    /// The local endpoint an FDB entry names (its `ifindex` is not 0).
    #[inline(always)]
    pub const fn of(entry: &FdbEntry) -> Self {
        Self { ifindex: entry.ifindex, slot: entry.slot }
    }

    /// The endpoint whose host-side veth is `ifindex`, for tables that name a port by its ifindex alone (ipvlan's):
    /// its slot is looked up (a device no endpoint has counts in slot 0, nobody's).
    #[inline(always)]
    pub fn by_ifindex(ifindex: u32) -> Self {
        // SAFETY: plain data copied out.
        let slot = unsafe { ENDPOINTS.get(&ifindex) }.map_or(0, |endpoint| endpoint.slot);
        Self { ifindex, slot }
    }
}

/// Into an endpoint's veth from XDP, which may redirect only through a map: the ports' devmap. A port missing
/// from it (its device is gone, the table that named it is stale) is `Error::NoPort`, a counted drop.
#[inline(always)]
pub fn redirect_xdp(ctx: &XdpContext, port: Port) -> Result<u32, Error> {
    let len = ctx.frame_len();
    // The flags' low bits are what the helper returns when the lookup fails; anything but XDP_REDIRECT is a miss.
    match PORTS.redirect(port.ifindex, 0) {
        Ok(action) => {
            count_rx(port.slot, len);
            Ok(action)
        }
        Err(_) => Err(Error::NoPort { port: port.ifindex }),
    }
}

/// Into an endpoint through its host-side veth's transmit path (the veth hands it to the endpoint's end):
/// for TC egress hooks, where `redirect_to_peer` is not allowed. Through the endpoint's receive ring, where GRO
/// merges the host's TCP segments again (`WayIn::Ring`; a socket that already picked a queue keeps it).
#[inline(always)]
pub fn redirect_to_port(ctx: &TcContext, port: Port) -> i32 {
    count_rx(port.slot, ctx.len());
    set_way(ctx.as_ptr() as *mut __sk_buff, WayIn::Ring);
    // SAFETY: a plain helper call.
    let verdict = unsafe { bpf_redirect(port.ifindex, 0) } as i32;
    if verdict < 0 {
        TC_ACT_SHOT as i32
    } else {
        verdict
    }
}

/// Straight into the endpoint's namespace (ingress of the veth's other end), skipping the veth's transmit
/// path and backlog queue, GSO packets intact: from any TC ingress hook (the helper allows no other).
#[inline(always)]
pub fn redirect_to_peer(port: Port, len: u32) -> i32 {
    count_rx(port.slot, len);
    // SAFETY: a plain helper call.
    unsafe { bpf_redirect_peer(port.ifindex, 0) as i32 }
}
