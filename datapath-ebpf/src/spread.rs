//! Broadcast copies made on every CPU, not only the one a frame arrived on (`SpreaderConfig` says how). The kernel's
//! macvlan queues a broadcast for a worker that makes the copies on another CPU, behind a queue that drops when it
//! is full; here the receiving CPU makes its own share of the flood list and hands each other share, as one clone,
//! to the CPU that always makes it. A share the spreader refuses (that CPU's backlog is full) is made here after
//! all: no copy is lost to the spreading.
use aya_ebpf::{
    bindings::__sk_buff,
    cty::{c_long, c_void},
    helpers::{bpf_get_smp_processor_id, bpf_loop, bpf_set_hash, bpf_set_hash_invalid},
    programs::TcContext,
    EbpfContext,
};
use datapath_common::{
    flood_counter, SpreaderConfig, MAX_SPREAD_CPUS, SPREAD_MARK, SPREAD_PORTS_PER_SHARE, SPREAD_TO_MEMBERS,
};

use crate::{fdb::flood_share, maps::SPREADER, stats::count_flood};

/// What a handed-off share is: the network, how many shares, which one, and whether only the group's members get
/// copies.
struct Share {
    network_id: u32,
    shares: u32,
    share: u32,
    to_members: bool,
}

impl Share {
    /// The tag of a handed-off share, in the clone's `skb->mark` (`SPREAD_MARK` says the layout); the sender to
    /// leave out goes in `skb->priority`.
    #[inline(always)]
    const fn tag(&self) -> u32 {
        let to_members = if self.to_members { SPREAD_TO_MEMBERS } else { 0 };
        SPREAD_MARK | to_members | (self.shares & 0xff) << 16 | (self.share & 0xff) << 8 | (self.network_id & 0xff)
    }

    /// The share a tag says.
    #[inline(always)]
    const fn untag(mark: u32) -> Self {
        Share {
            network_id: mark & 0xff,
            shares: mark >> 16 & 0xff,
            share: mark >> 8 & 0xff,
            to_members: mark & SPREAD_TO_MEMBERS != 0,
        }
    }
}

/// Splits a flood of `count` copies into shares and hands every share but this CPU's to its CPU (`to_members`: the
/// copies are for the members of the frame's group). Returns the number of shares and, as a bit set, those to make
/// here (1, 1: no spreading, everything is made here).
#[inline(always)]
pub fn hand_off(ctx: &TcContext, network_id: u32, except_ifindex: u32, count: u32, to_members: bool) -> (u32, u64) {
    let Some(config) = SPREADER.get_ptr(0) else { return (1, 1) };
    // SAFETY: the pointer comes from the map; the configuration is plain data.
    let (ifindex, cpus) = unsafe { ((*config).ifindex, (*config).cpus) };
    let shares = cpus.min(count / SPREAD_PORTS_PER_SHARE).min(MAX_SPREAD_CPUS as u32);
    if ifindex == 0 || shares < 2 {
        return (1, 1);
    }
    // SAFETY: a plain helper call.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let skb = ctx.as_ptr() as *mut __sk_buff;
    // SAFETY: context fields the program may read and (mark, priority) write; they are put back below.
    let (mark, priority, hash) = unsafe { ((*skb).mark, (*skb).priority, (*skb).hash) };
    let mut walk = HandOff {
        skb,
        config,
        network_id,
        except_ifindex,
        shares,
        to_members,
        cpu,
        made_here: if cpu < shares { 1 << cpu } else { 0 },
    };
    // SAFETY: `hand_off_one` reads `walk` as the HandOff it is, alive for the whole call.
    unsafe {
        bpf_loop(shares, hand_off_one as *mut c_void, (&mut walk as *mut HandOff).cast(), 0);
        (*skb).mark = mark;
        (*skb).priority = priority;
        // The frame goes on to the host with the hash it came with (none: the kernel computes one when it needs it).
        if hash == 0 {
            bpf_set_hash_invalid(skb.cast());
        } else {
            bpf_set_hash(skb.cast(), hash);
        }
    }
    (shares, walk.made_here)
}

/// What one step of the hand-off loop needs (bpf_loop's callback context, as `fdb::FloodWalk`).
#[repr(C)]
struct HandOff {
    skb: *mut __sk_buff,
    config: *const SpreaderConfig,
    network_id: u32,
    except_ifindex: u32,
    shares: u32,
    to_members: bool,
    cpu: u32,
    made_here: u64,
}

/// Hands share `share` to its CPU, unless it is this one's. Returns 0 (go on).
extern "C" fn hand_off_one(share: u64, walk: *mut c_void) -> c_long {
    // SAFETY: `hand_off` passes its HandOff, alive until bpf_loop returns.
    let walk = unsafe { &mut *(walk as *mut HandOff) };
    let share = share as usize;
    // bpf_loop's index is below the count it was given, but the verifier does not know that: bound it again.
    if share >= MAX_SPREAD_CPUS {
        return 1;
    }
    if share as u32 == walk.cpu {
        return 0;
    }
    // SAFETY: the configuration is a map value, plain data, and `share` is within its array; the context fields
    // are the program's to write.
    let handed = unsafe {
        let config = &*walk.config;
        bpf_set_hash(walk.skb.cast(), config.hashes[share]);
        let tagged = Share {
            network_id: walk.network_id,
            shares: walk.shares,
            share: share as u32,
            to_members: walk.to_members,
        };
        (*walk.skb).mark = tagged.tag();
        (*walk.skb).priority = walk.except_ifindex;
        TcContext::new(walk.skb).clone_redirect(config.ifindex, 0).is_ok()
    };
    if handed {
        count_flood(flood_counter::HANDED_OFF);
    } else {
        walk.made_here |= 1 << share;
        count_flood(flood_counter::MADE_HERE);
    }
    0
}

/// On the spreader's receiving end, on the CPU its hash chose: makes the share a clone was tagged with.
#[inline(always)]
pub fn receive(ctx: &TcContext) {
    let skb = ctx.as_ptr() as *mut __sk_buff;
    // SAFETY: context fields the program may read and write.
    let (mark, except_ifindex) = unsafe { ((*skb).mark, (*skb).priority) };
    // Anything else on the device (the kernel's own IPv6 chatter on the sending end) is dropped.
    if mark & SPREAD_MARK == 0 {
        return;
    }
    // The copies carry what the frame came with from the wire: no mark, no priority.
    // SAFETY: as above.
    unsafe {
        (*skb).mark = 0;
        (*skb).priority = 0;
    }
    let Share { network_id, shares, share, to_members } = Share::untag(mark);
    flood_share(ctx, network_id, except_ifindex, shares, share, to_members);
}
