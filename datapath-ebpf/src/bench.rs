//! The benchmark's programs (`cargo xtask bench`; names and config in `datapath_common::bench`). They live in the
//! datapath's object so the bench needs no second build, but only the bench attaches them.
//!
//! - the generator is what upstream xdp-trafficgen does: BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES runs it
//!   on frames the kernel keeps in a page pool, and XDP_TX sends each out of the test run's ingress device. The pool
//!   recycles pages without copying the template again (and a router on the path rewrites MACs and TTL in place),
//!   so the program puts the template back and sets the flow's source port every time;
//! - the counter counts delivery on an endpoint's interface the same way whatever forwards (kernel or xlan);
//! - the injector and the bare redirects (the limits) are the scaffolding around them (see the program docs).
use aya_ebpf::{
    bindings::{__sk_buff, xdp_action, BPF_F_BROADCAST, TC_ACT_OK, TC_ACT_SHOT},
    cty::{c_long, c_void},
    helpers::{bpf_loop, bpf_redirect, bpf_redirect_peer},
    macros::{classifier, map, xdp},
    maps::{Array, DevMapHash, PerCpuArray},
    programs::{TcContext, XdpContext},
    EbpfContext,
};
use datapath_common::{
    bench::{BenchConfig, BenchTemplate, COUNTERS, COUNTER_DELIVERED, COUNTER_GENERATED, FRAME_LEN, MAX_FLOOD_PORTS},
    csum,
};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
};

use crate::{copy::FloodCopies, error::Error, parse::ptr_at};

#[map(name = "XLAN_BENCH_CONFIG")]
static CONFIG: Array<BenchConfig> = Array::with_max_entries(1, 0);

#[map(name = "XLAN_BENCH_COUNTERS")]
static BENCH_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTERS, 0);

#[map(name = "XLAN_BENCH_TEMPLATE")]
static TEMPLATE: Array<BenchTemplate> = Array::with_max_entries(1, 0);

/// The flood limits' ports: the host-side veths of a network's endpoints, as ifindexes (the tc limit) and as a
/// device map keyed by ifindex (the XDP limit).
#[map(name = "XLAN_BENCH_FLOOD_PORTS")]
static FLOOD_PORTS: Array<u32> = Array::with_max_entries(MAX_FLOOD_PORTS, 0);

#[map(name = "XLAN_BENCH_FLOOD_DEVICES")]
static FLOOD_DEVICES: DevMapHash = DevMapHash::with_max_entries(MAX_FLOOD_PORTS, 0);

#[xdp]
pub fn xlan_bench_gen(ctx: XdpContext) -> u32 {
    match restore_template(&ctx).and_then(|()| set_flow(&ctx)) {
        Ok(()) => xdp_action::XDP_TX,
        // The bench made the template: a frame this program cannot read is a bench bug, and the test run says so.
        Err(_) => xdp_action::XDP_ABORTED,
    }
}

#[classifier]
pub fn xlan_bench_count(_ctx: TcContext) -> i32 {
    bump(COUNTER_DELIVERED);
    TC_ACT_OK as i32
}

/// On the generator's receiving veth in an endpoint's namespace: sends the frame out of the endpoint's interface as
/// if the endpoint had sent it. The kernel's macvlan device has no XDP transmit, so an XDP generator cannot send
/// from it directly; this way kernel and xlan endpoints get the same frames on the same transmit path.
#[classifier]
pub fn xlan_bench_inject(_ctx: TcContext) -> i32 {
    let Some(config) = config() else { return TC_ACT_SHOT as i32 };
    // SAFETY: a plain helper call.
    unsafe { bpf_redirect(config.inject_ifindex, 0) as i32 }
}

/// The limit of the parent's XDP hook on the wire → endpoint path: every frame into one endpoint's veth, nothing
/// looked up.
#[xdp]
pub fn xlan_bench_limit_xdp(_ctx: XdpContext) -> u32 {
    let Some(config) = config() else { return xdp_action::XDP_ABORTED };
    // SAFETY: a plain helper call.
    unsafe { bpf_redirect(config.limit_wire_ifindex, 0) as u32 }
}

/// The limit of the parent's tc hook on the wire → endpoint path: every frame straight into one endpoint (the peer
/// of its host-side veth), nothing looked up.
#[classifier]
pub fn xlan_bench_limit_wire_tc(_ctx: TcContext) -> i32 {
    let Some(config) = config() else { return TC_ACT_SHOT as i32 };
    // SAFETY: a plain helper call.
    unsafe { bpf_redirect_peer(config.limit_wire_ifindex, 0) as i32 }
}

/// The limit on an endpoint's way out to the underlay (vxlan): every frame out of the underlay device as it is, no
/// encapsulation, nothing looked up.
#[classifier]
pub fn xlan_bench_limit_egress(_ctx: TcContext) -> i32 {
    let Some(config) = config() else { return TC_ACT_SHOT as i32 };
    // SAFETY: a plain helper call.
    unsafe { bpf_redirect(config.limit_egress_ifindex, 0) as i32 }
}

/// The limit on the endpoint → endpoint path: every frame straight into one other endpoint, nothing looked up.
#[classifier]
pub fn xlan_bench_limit_tc(_ctx: TcContext) -> i32 {
    let Some(config) = config() else { return TC_ACT_SHOT as i32 };
    // SAFETY: a plain helper call.
    unsafe { bpf_redirect_peer(config.limit_tc_ifindex, 0) as i32 }
}

/// The limit of xlan's way of flooding (tc, `fdb::flood`) on one CPU: a copy of every frame into each flood port
/// as xlan makes it (`copy::FloodCopies`), the original on to the host, nothing looked up or spread.
#[classifier]
pub fn xlan_bench_limit_flood_tc(ctx: TcContext) -> i32 {
    let Some(config) = config() else { return TC_ACT_SHOT as i32 };
    let mut walk = LimitFlood { skb: ctx.as_ptr().cast(), copies: FloodCopies::new(1) };
    // SAFETY: `limit_flood_one` uses `walk` (alive for the whole call) as the LimitFlood it is.
    unsafe {
        bpf_loop(config.flood_ports, limit_flood_one as *mut c_void, (&mut walk as *mut LimitFlood).cast(), 0);
    }
    TC_ACT_OK as i32
}

/// bpf_loop's callback context for the tc flood limit (on the stack, as the verifier wants it).
#[repr(C)]
struct LimitFlood {
    skb: *mut __sk_buff,
    copies: FloodCopies,
}

/// One copy of the tc flood limit. Returns 0 (go on) or 1 (past the ports).
extern "C" fn limit_flood_one(index: u64, walk: *mut c_void) -> c_long {
    // SAFETY: `xlan_bench_limit_flood_tc` passes its LimitFlood, alive until bpf_loop returns.
    let walk = unsafe { &mut *(walk as *mut LimitFlood) };
    let Some(&port) = FLOOD_PORTS.get(index as u32) else { return 1 };
    walk.copies.copy(walk.skb, index as u32, port);
    0
}

/// The limit of flooding in XDP: the kernel copies the frame into every device of the map (`BPF_F_BROADCAST`),
/// nothing looked up. XDP cannot also pass the frame on: the host gets no copy, which xlan's floods must give it.
#[xdp]
pub fn xlan_bench_limit_flood_xdp(_ctx: XdpContext) -> u32 {
    FLOOD_DEVICES.redirect(0, BPF_F_BROADCAST as u64).unwrap_or(xdp_action::XDP_ABORTED)
}

#[inline(always)]
fn config() -> Option<BenchConfig> {
    CONFIG.get(0).copied()
}

/// Adds one to a per-CPU counter and returns its previous value (this CPU's count).
#[inline(always)]
fn bump(slot: u32) -> u64 {
    let Some(counter) = BENCH_COUNTERS.get_ptr_mut(slot) else { return 0 };
    // SAFETY: per-CPU slot, no other writer; the pointer comes from the map.
    unsafe {
        let previous = *counter;
        *counter = previous + 1;
        previous
    }
}

/// Puts the template back over the frame: a recycled page holds what the last path wrote into it.
#[inline(always)]
fn restore_template(ctx: &XdpContext) -> Result<(), Error> {
    let template = TEMPLATE.get_ptr(0).ok_or(Error::Malformed)?;
    // Packet memory is writable in XDP; ptr_at checked that FRAME_LEN bytes lie inside the frame.
    let frame = ptr_at::<[u8; FRAME_LEN]>(ctx, 0)? as *mut BenchTemplate;
    // SAFETY: as above; both are FRAME_LEN plain bytes and cannot overlap (a map value, a packet). A memcpy of a
    // known size is expanded into loads and stores (8 of each: the type's alignment); a plain assignment would
    // become a call to a byte-wise memmove subprogram, which cost more than the rest of the generator.
    unsafe { core::ptr::copy_nonoverlapping(template, frame, 1) };
    Ok(())
}

/// Gives the frame the UDP source port of its flow (frames go round-robin over the flows) and patches the UDP
/// checksum for the change (RFC 1624, `csum::replace`), so every frame stays valid for the receiver's UDP stack.
#[inline(always)]
fn set_flow(ctx: &XdpContext) -> Result<(), Error> {
    let config = config().ok_or(Error::Malformed)?;
    let eth: *const EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: ptr_at checked that the header lies inside the packet.
    let ether_type = unsafe { (*eth).ether_type };
    // The bench's templates carry no VLAN tag and no IPv4 options: the UDP header is at a fixed offset.
    let udp_offset = if ether_type == EtherType::Ipv4 as u16 {
        EthHdr::LEN + Ipv4Hdr::LEN
    } else if ether_type == EtherType::Ipv6 as u16 {
        EthHdr::LEN + Ipv6Hdr::LEN
    } else {
        return Err(Error::Malformed);
    };
    // Packet memory is writable in XDP; ptr_at hands out const pointers because the datapath only reads.
    let udp = ptr_at::<UdpHdr>(ctx, udp_offset)? as *mut UdpHdr;
    let flows = if config.flows == 0 { 1 } else { config.flows };
    let flow = (bump(COUNTER_GENERATED) % flows as u64) as u32;
    let port = ((config.base_port + flow) as u16).to_be_bytes();
    // SAFETY: as above; the bounds of the whole UDP header were checked.
    unsafe {
        let old = u16::from_ne_bytes((*udp).src);
        let new = u16::from_ne_bytes(port);
        let check = u16::from_ne_bytes((*udp).check);
        (*udp).src = port;
        // 0 means "no checksum" (IPv4 only); there is nothing to patch then.
        if check != 0 {
            (*udp).check = match csum::replace(check, old, new) {
                // A computed 0 goes on the wire as 0xffff: 0 would mean "no checksum".
                0 => 0xffff,
                check => check,
            }
            .to_ne_bytes();
        }
    }
    Ok(())
}
