//! Lookups in the forwarding tables and the one flood loop.
use aya_ebpf::{
    bindings::__sk_buff,
    cty::{c_long, c_void},
    helpers::{bpf_ktime_get_coarse_ns, bpf_loop},
    programs::TcContext,
    EbpfContext,
};
use datapath_common::{FdbEntry, FloodList, GroupMembers, MacKey, NetworkConfig, ParentConfig, MAX_FLOOD_PORTS};

use crate::{
    cache::{self, datapath_changed},
    copy::FloodCopies,
    groups::{self, FloodGroup},
    maps::{FDB, FLOOD, SOURCE_MACS},
    port::Port,
    spread,
    stats::count_rx,
};

/// Where frames to `mac` go in the network: a static entry, or a learned one younger than `ageing_secs`
/// (an older one is removed here, so it ages out even when userspace does not look).
#[inline(always)]
pub fn lookup(network_id: u32, mac: [u8; 6]) -> Option<FdbEntry> {
    let key = MacKey::new(network_id, mac);
    // SAFETY: entries are plain data copied out at once; a concurrent update can at worst give a stale port.
    let entry = unsafe { *FDB.get(&key)? };
    Some(entry)
}

/// The clock learned entries are stamped and aged by: CLOCK_MONOTONIC at the tick's resolution (a few ms), which
/// ageing in seconds does not notice, read without bpf_ktime_get_ns's TSC read (~20 ns a call in this VM, twice
/// per VXLAN frame).
#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: a plain helper call.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// `lookup`, with learned entries past their age treated as unknown (and removed).
#[inline(always)]
pub fn lookup_fresh(network_id: u32, mac: [u8; 6], ageing_secs: u32) -> Option<FdbEntry> {
    let entry = lookup(network_id, mac)?;
    if !entry.is_static() {
        let age = now_ns().saturating_sub(entry.last_seen_ns);
        if age > ageing_secs as u64 * 1_000_000_000 {
            let _ = FDB.remove(&MacKey::new(network_id, mac));
            datapath_changed();
            return None;
        }
    }
    Some(entry)
}

/// True when `mac` is on the source-mode allowed list of the network.
#[inline(always)]
pub fn source_allowed(network_id: u32, mac: [u8; 6]) -> bool {
    SOURCE_MACS.get_ptr(&MacKey::new(network_id, mac)).is_some()
}

/// The macvlan network on a parent, with its configuration.
#[inline(always)]
pub fn macvlan_of_parent(config: &ParentConfig) -> Option<(u32, &NetworkConfig)> {
    match config.macvlan_network {
        0 => None,
        network_id => Some((network_id, &config.network)),
    }
}

/// The ipvlan network on a parent, with its configuration.
#[inline(always)]
pub fn ipvlan_of_parent(config: &ParentConfig) -> Option<(u32, &NetworkConfig)> {
    match config.ipvlan_network {
        0 => None,
        network_id => Some((network_id, &config.network)),
    }
}

/// The first port of the network's flood list (passthru networks have exactly one).
#[inline(always)]
pub fn first_port(network_id: u32) -> Option<Port> {
    let list = FLOOD.get_ptr(&network_id)?;
    // SAFETY: the pointer comes from the map and the list is plain data.
    unsafe {
        if (*list).count > 0 {
            Some(Port { ifindex: (*list).ifindex[0], slot: (*list).slots[0] })
        } else {
            None
        }
    }
}

/// What one step of the flood loop needs, handed to `flood_one` by pointer (bpf_loop's callback context, on the
/// caller's stack: the verifier keeps the types of the pointers spilled there).
#[repr(C)]
struct FloodWalk {
    skb: *mut __sk_buff,
    list: *const FloodList,
    /// The members of the group the frame is for: only they get copies. Null: every port does.
    members: *const GroupMembers,
    except_ifindex: u32,
    len: u32,
    /// The list is split into `shares` shares, port `i` in share `i % shares` (`spread`); this walk makes the
    /// copies of the shares whose bit is set in `made_here`.
    shares: u32,
    made_here: u64,
    /// Which way each copy goes in.
    copies: FloodCopies,
}

/// Sends one copy of the frame to every port of the network except `except_ifindex` (the sender); multicast to a
/// group some of the ports joined, only to them, and membership reports to none (`groups::FloodGroup`).
/// TC, not XDP: only an skb can be cloned, and the original still goes on (to the host or the wire).
///
/// A long list is split into shares, one per CPU, and the other CPUs make theirs (`spread`): every copy made on
/// the CPU the frame arrived on is work the kernel's macvlan hands to its broadcast queue's worker.
///
/// A network may have `MAX_FLOOD_PORTS` (4096) ports: a bounded loop over them, inlined at each of the dozen call
/// sites, would have the verifier walk 4096 iterations per site. `bpf_loop` has it check `flood_one` once per site
/// whatever the count (and the kernel inlines the helper into a plain loop).
#[inline(always)]
pub fn flood(ctx: &TcContext, network_id: u32, except_ifindex: u32) {
    // Before the list and the group are read: a member count made from them is kept under this generation.
    let generation = cache::generations();
    let Some(list) = FLOOD.get_ptr(&network_id) else { return };
    // SAFETY: the pointer comes from the map.
    let count = unsafe { (*list).count }.min(MAX_FLOOD_PORTS as u32);
    // The copies to make, and the ports of the list to walk for them.
    let (mut copies, mut end, mut members) = (count, count, core::ptr::null());
    match groups::group_of_frame(ctx, network_id, true) {
        FloodGroup::Every => {}
        FloodGroup::Routers => return,
        FloodGroup::Members(group) => {
            let found = cache::member_ports(group.key, except_ifindex, generation, || {
                groups::count_members(list, count, group.members, except_ifindex)
            });
            if found.copies == 0 && found.sender_member {
                // Its only member sent it.
                return;
            }
            // Only endpoints that have gone joined it (as good as a group nobody joined), or every port did: a flood to
            // all, which neither this CPU nor the one a share goes to need filter.
            if found.copies != 0 && !found.everyone {
                // Within the list read here, should it have changed since the count (before the generation did).
                (copies, end, members) = (found.copies, found.end.min(count), group.members);
            }
        }
    }
    let (shares, made_here) = spread::hand_off(ctx, network_id, except_ifindex, copies, !members.is_null());
    flood_shares(ctx, list, end, members, except_ifindex, shares, made_here, FloodCopies::new(shares.max(1)));
}

/// The copies of share `share` (of `shares`) of the network's list: what the spreader's program makes of a share
/// the CPU a frame arrived on handed off (`spread`). `to_members`: that CPU found members of the frame's group.
#[inline(always)]
pub fn flood_share(ctx: &TcContext, network_id: u32, except_ifindex: u32, shares: u32, share: u32, to_members: bool) {
    let Some(list) = FLOOD.get_ptr(&network_id) else { return };
    // SAFETY: the pointer comes from the map.
    let count = unsafe { (*list).count }.min(MAX_FLOOD_PORTS as u32);
    let members = match to_members {
        true => match groups::group_of_frame(ctx, network_id, false) {
            FloodGroup::Members(group) => group.members,
            _ => core::ptr::null(),
        },
        false => core::ptr::null(),
    };
    // A whole flood (one share) came through this CPU's backlog with the others waiting there: its copies take the
    // rings, so that they do not fill it behind them.
    let copies = if shares == 1 { FloodCopies::through_rings() } else { FloodCopies::new(shares) };
    flood_shares(ctx, list, count, members, except_ifindex, shares, 1u64.checked_shl(share).unwrap_or(0), copies);
}

/// The copies of the shares in `made_here` (a bit set) of a list split into `shares`.
#[inline(always)]
fn flood_shares(
    ctx: &TcContext,
    list: *const FloodList,
    count: u32,
    members: *const GroupMembers,
    except_ifindex: u32,
    shares: u32,
    made_here: u64,
    copies: FloodCopies,
) {
    if made_here == 0 {
        return;
    }
    let mut walk = FloodWalk {
        skb: ctx.as_ptr().cast(),
        list,
        members,
        except_ifindex,
        len: ctx.len(),
        shares: shares.max(1),
        made_here,
        copies,
    };
    // SAFETY: `flood_one` uses `walk` (alive for the whole call) as the FloodWalk it is; the result (the number
    // of iterations) says nothing the copies' counters do not.
    unsafe {
        bpf_loop(count, flood_one as *mut c_void, (&mut walk as *mut FloodWalk).cast(), 0);
    }
}

/// The body of the flood loop: the copy for port `index` of the list, if its share is made here. Returns 0 (go
/// on): a port that refuses its copy (down, gone) must not keep the others from theirs.
extern "C" fn flood_one(index: u64, walk: *mut c_void) -> c_long {
    // SAFETY: `flood_shares` passes its FloodWalk, alive until bpf_loop returns.
    let walk = unsafe { &mut *(walk as *mut FloodWalk) };
    let index = index as usize;
    // bpf_loop's index is below the count it was given, but the verifier does not know that: bound it again.
    if index >= MAX_FLOOD_PORTS {
        return 1;
    }
    // `checked_rem`: a plain `%` would bring in a division-by-zero panic, which the verifier rejects.
    let share = (index as u32).checked_rem(walk.shares).unwrap_or(0);
    if walk.made_here >> share & 1 == 0 {
        return 0;
    }
    // SAFETY: the list is a map value, plain data, and `index` is within its arrays.
    let (port, slot) = unsafe { ((*walk.list).ifindex[index], (*walk.list).slots[index]) };
    // SAFETY: the members are a map value, plain data (a byte a slot, each written whole).
    if !walk.members.is_null() && unsafe { !(*walk.members).has(slot) } {
        return 0;
    }
    if port != walk.except_ifindex && walk.copies.copy(walk.skb, index as u32, port) {
        count_rx(slot, walk.len);
    }
    0
}
