//! Delivery into a local endpoint, counted once here.
use aya_ebpf::{
    bindings::TC_ACT_SHOT,
    helpers::{bpf_redirect, bpf_redirect_peer},
    programs::XdpContext,
};

use crate::{error::Error, maps::PORTS, parse::Packet, stats::count_rx};

/// Into an endpoint's veth from XDP, which may redirect only through a map: the ports' devmap. A port missing
/// from it (its device is gone, the table that named it is stale) is `Error::NoPort`, a counted drop.
#[inline(always)]
pub fn redirect_xdp(ctx: &XdpContext, port: u32) -> Result<u32, Error> {
    let len = ctx.frame_len();
    // The flags' low bits are what the helper returns when the lookup fails; anything but XDP_REDIRECT is a miss.
    match PORTS.redirect(port, 0) {
        Ok(action) => {
            count_rx(port, len);
            Ok(action)
        }
        Err(_) => Err(Error::NoPort { port }),
    }
}

/// Into an endpoint through its host-side veth's transmit path (the veth hands it to the endpoint's end):
/// for TC egress hooks, where `redirect_to_peer` is not allowed.
#[inline(always)]
pub fn redirect_to_port(port: u32, len: u32) -> i32 {
    count_rx(port, len);
    // SAFETY: a plain helper call.
    let verdict = unsafe { bpf_redirect(port, 0) } as i32;
    if verdict < 0 {
        TC_ACT_SHOT as i32
    } else {
        verdict
    }
}

/// Straight into the endpoint's namespace (ingress of the veth's other end), skipping the veth's transmit
/// path and backlog queue, GSO packets intact: from any TC ingress hook (the helper allows no other).
#[inline(always)]
pub fn redirect_to_peer(port: u32, len: u32) -> i32 {
    count_rx(port, len);
    // SAFETY: a plain helper call.
    unsafe { bpf_redirect_peer(port, 0) as i32 }
}
