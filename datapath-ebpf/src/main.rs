//! xlan's datapath: the XDP and TC programs. Each entry point calls its `try`-style function and maps an
//! `Error` to a verdict in one place (`xdp_verdict` / `tc_verdict`), counting the drop (and reporting it, see
//! `drops`).
#![no_std]
#![no_main]

mod bench;
mod cache;
mod copy;
mod dispatch;
mod drops;
mod error;
mod fdb;
mod groups;
mod ipvlan;
mod macvlan;
mod maps;
mod neighbour;
mod parse;
mod port;
mod spread;
mod stats;
mod vlan;
mod vxlan;

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_SHOT},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

use crate::{drops::note_drop, error::Error, parse::Packet, port::Port};

#[xdp]
pub fn xlan_parent_xdp(ctx: XdpContext) -> u32 {
    xdp_verdict(&ctx, dispatch::parent_xdp(&ctx))
}

/// Native XDP redirect into a veth needs a program on the receiving end; this one lets everything through.
#[xdp]
pub fn xlan_xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[classifier]
pub fn xlan_parent_ingress(ctx: TcContext) -> i32 {
    tc_verdict(&ctx, dispatch::parent_ingress(&ctx), None)
}

#[classifier]
pub fn xlan_parent_egress(ctx: TcContext) -> i32 {
    tc_verdict(&ctx, dispatch::parent_egress(&ctx), None)
}

#[classifier]
pub fn xlan_endpoint_ingress(ctx: TcContext) -> i32 {
    let port = ctx.device();
    let sender = cache::sender_config(port);
    // What the endpoint sends is counted against it, drops too; a device no endpoint has counts in slot 0, nobody's.
    let from = Port { ifindex: port, slot: sender.map_or(0, |sender| sender.endpoint.slot) };
    tc_verdict(&ctx, dispatch::endpoint_ingress(&ctx, port, sender), Some(from))
}

/// tcx ingress on the spreader's receiving end: the share of a broadcast's copies another CPU handed to this one
/// (`spread`). Nothing arrives there to be delivered as it is.
#[classifier]
pub fn xlan_spreader_ingress(ctx: TcContext) -> i32 {
    spread::receive(&ctx);
    TC_ACT_SHOT as i32
}

/// Never attached: userspace runs it (BPF_PROG_TEST_RUN) to take a removed endpoint out of its network's groups.
#[classifier]
pub fn xlan_groups_forget(ctx: TcContext) -> i32 {
    groups::forget(&ctx);
    TC_ACT_SHOT as i32
}

#[inline(always)]
fn xdp_verdict(ctx: &XdpContext, result: Result<u32, Error>) -> u32 {
    match result {
        Ok(action) => action,
        Err(error) => {
            note_drop(ctx, error, None);
            xdp_action::XDP_DROP
        }
    }
}

#[inline(always)]
fn tc_verdict(ctx: &TcContext, result: Result<i32, Error>, from_port: Option<Port>) -> i32 {
    match result {
        Ok(action) => action,
        Err(error) => {
            note_drop(ctx, error, from_port);
            TC_ACT_SHOT as i32
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
