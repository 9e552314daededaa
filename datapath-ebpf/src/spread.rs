//! Broadcast copies made on every CPU, not only the one a frame arrived on (`SpreaderConfig` says how). The kernel's
//! macvlan queues a broadcast for a worker that makes the copies on another CPU, behind a queue that drops when it
//! is full; here the receiving CPU makes its own share of the flood list and hands each other share, as one clone,
//! to the CPU that always makes it, or hands a small flood whole to the next CPU (`WHOLE_FLOOD_MAX_COPIES`). A share
//! the spreader refuses (that CPU's backlog is full) is made here after all: no copy is lost to the spreading.
use aya_ebpf::{
    bindings::__sk_buff,
    cty::{c_long, c_void},
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_loop, bpf_set_hash, bpf_set_hash_invalid},
    macros::map,
    maps::Array,
    programs::TcContext,
    EbpfContext,
};
use datapath_common::{
    flood_counter, SpreaderConfig, MAX_SPREAD_CPUS, SPREAD_MARK, SPREAD_PORTS_PER_SHARE, SPREAD_TO_MEMBERS,
    WHOLE_FLOODS_WAITING, WHOLE_FLOOD_MAX_COPIES,
};

use crate::{fdb::flood_share, maps::SPREADER, stats::count_flood};

/// Whole floods handed to CPU `i` so far, written only by its one sender, CPU `i - 1` (the BPF target has no atomic
/// read-modify-write in Rust, so every counter here has one writer). Not pinned: per load, like what it counts.
#[map(name = "XLAN_WHOLE_FLOODS_HANDED")]
static WHOLE_FLOODS_HANDED: Array<u64> = Array::with_max_entries(MAX_SPREAD_CPUS as u32, 0);

/// Whole floods CPU `i` has made so far, and when it made the last (ns), written only by CPU `i`.
#[map(name = "XLAN_WHOLE_FLOODS_MADE")]
static WHOLE_FLOODS_MADE: Array<FloodsMade> = Array::with_max_entries(MAX_SPREAD_CPUS as u32, 0);

#[repr(C)]
#[derive(Clone, Copy)]
struct FloodsMade {
    count: u64,
    at_ns: u64,
}

/// Handed floods the next CPU has not made for this long are taken for gone (the spreader went away with them in its
/// queue, or a reload's new counters started at zero) and no longer counted as waiting: a CPU with a backlog makes
/// a flood of 8 copies in about 5 µs.
const WHOLE_FLOODS_GONE_NS: u64 = 10_000_000;

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

/// Splits a flood of `count` copies into shares and hands every share but this CPU's to its CPU, or a small flood
/// whole to the next CPU (`WHOLE_FLOOD_MAX_COPIES`); `to_members`: the copies are for the members of the frame's
/// group. Returns the number of shares and, as a bit set, those to make here (1, 1: no spreading, everything is
/// made here).
#[inline(always)]
pub fn hand_off(ctx: &TcContext, network_id: u32, except_ifindex: u32, count: u32, to_members: bool) -> (u32, u64) {
    let Some(config) = SPREADER.get_ptr(0) else { return (1, 1) };
    // SAFETY: the pointer comes from the map; the configuration is plain data.
    let (ifindex, cpus) = unsafe { ((*config).ifindex, (*config).cpus) };
    let whole = (2..=WHOLE_FLOOD_MAX_COPIES).contains(&count);
    let shares = if whole { 1 } else { cpus.min(count / SPREAD_PORTS_PER_SHARE).min(MAX_SPREAD_CPUS as u32) };
    if ifindex == 0 || cpus < 2 || (shares < 2 && !whole) {
        return (1, 1);
    }
    // SAFETY: a plain helper call.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let next = (cpu + 1) % cpus;
    // A CPU outside the spreader's map would be a second sender to the next CPU.
    if whole && (cpu >= cpus || !next_has_room(next)) {
        count_flood(flood_counter::MADE_HERE);
        return (1, 1);
    }
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
        next,
        made_here: if !whole && cpu < shares { 1 << cpu } else { 0 },
    };
    // SAFETY: `hand_off_one` reads `walk` as the HandOff it is, alive for the whole call.
    unsafe { bpf_loop(shares, hand_off_one as *mut c_void, (&mut walk as *mut HandOff).cast(), 0) };
    // SAFETY: as above.
    unsafe {
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
    /// The CPU after this one, which makes whole floods (one share).
    next: u32,
    made_here: u64,
}

/// Hands share `share` to its CPU, unless it is this one's, or a whole flood to the next CPU. Returns 0 (go on).
extern "C" fn hand_off_one(share: u64, walk: *mut c_void) -> c_long {
    // SAFETY: `hand_off` passes its HandOff, alive until bpf_loop returns.
    let walk = unsafe { &mut *(walk as *mut HandOff) };
    if walk.shares == 1 {
        if walk.hand(0, walk.next) {
            if let Some(handed) = WHOLE_FLOODS_HANDED.get_ptr_mut(walk.next) {
                // SAFETY: this CPU is the slot's one writer.
                unsafe { *handed += 1 };
            }
        }
    } else if share as u32 != walk.cpu {
        walk.hand(share as u32, share as u32);
    }
    0
}

/// Whether CPU `next` has fewer than `WHOLE_FLOODS_WAITING` whole floods of this CPU still to make.
#[inline(always)]
fn next_has_room(next: u32) -> bool {
    let (Some(handed), Some(made)) = (WHOLE_FLOODS_HANDED.get_ptr_mut(next), WHOLE_FLOODS_MADE.get_ptr(next)) else {
        return false;
    };
    // SAFETY: map values, plain data; this CPU is the one writer of `handed`, and an aligned u64 is not torn.
    unsafe {
        let made = *made;
        if *handed <= made.count {
            // None waiting; more made than handed are floods of an earlier load's counters.
            *handed = made.count;
            return true;
        }
        if *handed - made.count < WHOLE_FLOODS_WAITING {
            return true;
        }
        if bpf_ktime_get_ns().wrapping_sub(made.at_ns) > WHOLE_FLOODS_GONE_NS {
            *handed = made.count;
            return true;
        }
    }
    false
}

impl HandOff {
    /// Hands share `share` to CPU `to_cpu` as one clone into the spreader; a share it refuses is made here. Returns
    /// whether the spreader took it.
    #[inline(always)]
    fn hand(&mut self, share: u32, to_cpu: u32) -> bool {
        let to_cpu = to_cpu as usize;
        // The callers' CPUs are below the configuration's count, but the verifier does not know that: bound it again
        // (and were it ever out of bounds, the share is made here, not lost).
        // SAFETY: the configuration is a map value, plain data, and `to_cpu` is within its array; the context fields
        // are the program's to write.
        let handed = to_cpu < MAX_SPREAD_CPUS
            && unsafe {
                let config = &*self.config;
                bpf_set_hash(self.skb.cast(), config.hashes[to_cpu]);
                let tagged =
                    Share { network_id: self.network_id, shares: self.shares, share, to_members: self.to_members };
                (*self.skb).mark = tagged.tag();
                (*self.skb).priority = self.except_ifindex;
                TcContext::new(self.skb).clone_redirect(config.ifindex, 0).is_ok()
            };
        if handed {
            count_flood(flood_counter::HANDED_OFF);
        } else {
            self.made_here |= 1u64.checked_shl(share).unwrap_or(0);
            count_flood(flood_counter::MADE_HERE);
        }
        handed
    }
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
    if shares == 1 {
        // SAFETY: plain helper calls.
        let cpu = unsafe { bpf_get_smp_processor_id() };
        if let Some(made) = WHOLE_FLOODS_MADE.get_ptr_mut(cpu) {
            // SAFETY: this CPU's slot, written only here.
            unsafe { *made = FloodsMade { count: (*made).count + 1, at_ns: bpf_ktime_get_ns() } };
        }
    }
}
