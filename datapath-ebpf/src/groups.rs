//! Multicast to the endpoints that joined the group, not to every port: the kernel's macvlan copies multicast only
//! to devices whose address list has the group's MAC, and a bridge with snooping only to ports that reported the
//! group. An endpoint's list is in its own namespace, out of xlan's reach; what it sends is not. So the membership
//! is learned the bridge's way, from the IGMP and MLD reports the endpoint's stack sends when a socket joins or
//! leaves a group (or an address brings its solicited-node group), and kept in `XLAN_GROUPS` by network and group.
//!
//! The bridge's rules for what is not filtered: link-local IPv4 groups (224.0.0.0/24) and IPv6's all-nodes group
//! go to every port (`is_snooped_group`), and so does a group none of the network's ports joined. Nothing ages:
//! without a querier, a member reports only when it joins, so an entry lasts until the endpoint reports leaving
//! or is removed (`forget`).
use aya_ebpf::{
    bindings::{__sk_buff, BPF_NOEXIST},
    cty::{c_long, c_void},
    helpers::{bpf_for_each_map_elem, bpf_loop, bpf_map_delete_elem, bpf_skb_load_bytes},
    programs::TcContext,
    EbpfContext,
};
use core::mem::{offset_of, size_of};
use datapath_common::{
    is_multicast_mac, is_snooped_group, v4_mapped, FloodList, GroupKey, GroupMembers, MAX_FLOOD_PORTS, STATS_SLOTS,
};
use network_types::{
    eth::EtherType,
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
};

use crate::{
    cache::datapath_changed,
    maps::{GROUPS, NO_MEMBERS},
    parse::{parse_l2, L2Header},
};

/// IGMP message types (RFC 1112, 2236, 3376).
const IGMP_V1_REPORT: u8 = 0x12;
const IGMP_V2_REPORT: u8 = 0x16;
const IGMP_V2_LEAVE: u8 = 0x17;
const IGMP_V3_REPORT: u8 = 0x22;
/// MLD message types (RFC 2710, 3810), ICMPv6 types.
const MLD_V1_REPORT: u8 = 131;
const MLD_V1_DONE: u8 = 132;
const MLD_V2_REPORT: u8 = 143;
/// IGMPv3 and MLDv2 report a group per record. A record is at least 8 (IGMPv3) or 20 (MLDv2) bytes: a 64 KB
/// report holds fewer than this many, and the walk stops at the frame's end.
const MAX_RECORDS: u32 = 8192;

/// An IGMP or MLD membership report or leave an endpoint sent (`find_report`), to record (`record`) before the
/// frame is forwarded (reports go toward routers only: `FloodGroup::Routers`). Recording after the forwarding, which
/// does not depend on it, was tried: the verifier then checked the recording once for every way out of the
/// forwarding (`endpoint add` verified the endpoints' program in 0.53 s instead of 0.30 s), and the forwarding may
/// have changed the frame (a VLAN network's tag).
#[derive(Clone, Copy)]
pub struct Report {
    /// The message's type (`IGMP_*`, `MLD_*`: the two sets do not overlap, so it also says IGMP or MLD).
    kind: u8,
    /// Where the message starts.
    offset: u32,
}

/// The membership report or leave a frame an endpoint sent is, if it is one: IGMP in IPv4 (version, header length
/// and fragments checked), MLD in ICMPv6, behind a hop-by-hop header (which carries MLD's router alert) or not.
#[inline(always)]
pub fn find_report(ctx: &TcContext, l2: &L2Header) -> Option<Report> {
    if !is_multicast_mac(&l2.dst) {
        return None;
    }
    report_at(ctx, l2.ether_type, l2.l3_offset)
}

/// `find_report` of the multicast frame's payload of type `ether_type` at `l3_offset`.
#[inline(always)]
fn report_at(ctx: &TcContext, ether_type: u16, l3_offset: usize) -> Option<Report> {
    let found = if ether_type == EtherType::Ipv4 as u16 {
        try_find_igmp(ctx, l3_offset)
    } else if ether_type == EtherType::Ipv6 as u16 {
        try_find_mld(ctx, l3_offset)
    } else {
        Ok(None)
    };
    found.ok().flatten()
}

#[inline(always)]
fn try_find_igmp(ctx: &TcContext, l3_offset: usize) -> Result<Option<Report>, c_long> {
    let ip: Ipv4Hdr = ctx.load(l3_offset)?;
    let header_len = ip.ihl() as usize;
    // A fragment's payload is not a whole message (and only the first has the IGMP header).
    let fragment = u16::from_be_bytes(ip.frags) & 0x3fff != 0;
    if ip.version() != 4 || header_len < Ipv4Hdr::LEN || ip.proto != IpProto::Igmp as u8 || fragment {
        return Ok(None);
    }
    let offset = l3_offset + header_len;
    Ok(match ctx.load::<u8>(offset)? {
        kind @ (IGMP_V1_REPORT | IGMP_V2_REPORT | IGMP_V2_LEAVE | IGMP_V3_REPORT) => {
            Some(Report { kind, offset: offset as u32 })
        }
        _ => None,
    })
}

#[inline(always)]
fn try_find_mld(ctx: &TcContext, l3_offset: usize) -> Result<Option<Report>, c_long> {
    // The next header alone: the whole header would take 40 bytes of the parent's program's stack, at each flood.
    let mut next_header: u8 = ctx.load(l3_offset + offset_of!(Ipv6Hdr, next_hdr))?;
    let mut offset = l3_offset + Ipv6Hdr::LEN;
    // MLD messages carry the router alert option in a hop-by-hop header (RFC 2711).
    if next_header == IpProto::HopOpt as u8 {
        let [next, length]: [u8; 2] = ctx.load(offset)?;
        next_header = next;
        offset += (length as usize + 1) * 8;
    }
    if next_header != IpProto::Ipv6Icmp as u8 {
        return Ok(None);
    }
    Ok(match ctx.load::<u8>(offset)? {
        kind @ (MLD_V1_REPORT | MLD_V1_DONE | MLD_V2_REPORT) => Some(Report { kind, offset: offset as u32 }),
        _ => None,
    })
}

/// Records the joins and leaves `report` says, for the endpoint in `slot` of `network_id`. A report too short for
/// what it claims records what it holds.
#[inline(always)]
pub fn record(ctx: &TcContext, report: &Report, network_id: u32, slot: u32) {
    if slot == 0 {
        return;
    }
    let _ = try_record(ctx, report, network_id, slot);
}

#[inline(always)]
fn try_record(ctx: &TcContext, report: &Report, network_id: u32, slot: u32) -> Result<(), c_long> {
    let at = report.offset as usize;
    // IGMPv1/v2 have the group at 4, MLDv1 at 8; IGMPv3 and MLDv2 have records after 8 bytes.
    match report.kind {
        IGMP_V1_REPORT | IGMP_V2_REPORT | IGMP_V2_LEAVE => {
            let group = v4_mapped(ctx.load(at + 4)?);
            change(&GroupKey { network_id, group }, slot, report.kind != IGMP_V2_LEAVE);
        }
        MLD_V1_REPORT | MLD_V1_DONE => {
            let group = ctx.load(at + 8)?;
            change(&GroupKey { network_id, group }, slot, report.kind == MLD_V1_REPORT);
        }
        _ => walk_records(ctx, at, network_id, slot, report.kind == MLD_V2_REPORT)?,
    }
    Ok(())
}

/// What the record walk of an IGMPv3 or MLDv2 report needs (bpf_loop's callback context, as `fdb::FloodWalk`).
/// The record's fields are read into it, not into the callback's locals: the callback's stack adds to that of the
/// endpoint's program, which has little left.
#[repr(C)]
struct RecordWalk {
    skb: *mut __sk_buff,
    /// The network and the group of the record being read.
    key: GroupKey,
    /// Where the next record starts.
    offset: u32,
    slot: u32,
    /// MLDv2 (16-byte addresses) rather than IGMPv3 (4-byte ones).
    ipv6: bool,
    /// The record's type, auxiliary data length (in 32-bit words) and number of sources (big-endian).
    header: [u8; 4],
}

/// The group records of an IGMPv3 or MLDv2 report whose header (type, reserved, checksum, reserved, number of
/// records) starts at `message`; the records follow its 8 bytes in both.
#[inline(always)]
fn walk_records(ctx: &TcContext, message: usize, network_id: u32, slot: u32, ipv6: bool) -> Result<(), c_long> {
    let records = u16::from_be_bytes(ctx.load(message + 6)?) as u32;
    let mut walk = RecordWalk {
        skb: ctx.as_ptr().cast(),
        key: GroupKey { network_id, group: [0; 16] },
        offset: (message + 8) as u32,
        slot,
        ipv6,
        header: [0; 4],
    };
    // SAFETY: `record_one` reads `walk` (alive for the whole call) as the RecordWalk it is.
    unsafe {
        bpf_loop(records.min(MAX_RECORDS), record_one as *mut c_void, (&mut walk as *mut RecordWalk).cast(), 0);
    }
    Ok(())
}

/// Record types of IGMPv3 and MLDv2 (RFC 3376 4.2.12, RFC 3810 5.2.12).
mod record {
    pub const MODE_IS_INCLUDE: u8 = 1;
    pub const MODE_IS_EXCLUDE: u8 = 2;
    pub const CHANGE_TO_INCLUDE: u8 = 3;
    pub const CHANGE_TO_EXCLUDE: u8 = 4;
    pub const ALLOW_NEW_SOURCES: u8 = 5;
}

/// Whether a record says the host is in the group (Some(true)), out of it (Some(false)), or nothing about it: a
/// host is out only when it includes no source; excluding sources (an ordinary join is EXCLUDE {}) or including
/// some is in (a member for some sources is sent the whole group, as the kernel's MAC filter does). BLOCK_OLD_SOURCES
/// says nothing xlan can use: it keeps no sources, so it cannot tell when a host in INCLUDE mode blocked its last
/// one (that is how such a host leaves), and the host stays a member until it is removed.
#[inline(always)]
fn member_after(kind: u8, sources: u16) -> Option<bool> {
    match kind {
        record::MODE_IS_EXCLUDE | record::CHANGE_TO_EXCLUDE => Some(true),
        record::MODE_IS_INCLUDE | record::CHANGE_TO_INCLUDE => Some(sources > 0),
        record::ALLOW_NEW_SOURCES if sources > 0 => Some(true),
        _ => None,
    }
}

/// One group record: its change, then on to the next. Returns 1 (stop) at the frame's end.
extern "C" fn record_one(_index: u64, walk: *mut c_void) -> c_long {
    // SAFETY: `walk_records` passes its RecordWalk, alive until bpf_loop returns.
    let walk = unsafe { &mut *(walk as *mut RecordWalk) };
    let ctx = TcContext::new(walk.skb);
    let at = walk.offset as usize;
    // Type, auxiliary data length, number of sources; then the group and the sources.
    if !load_into(&ctx, at, &mut walk.header) {
        return 1;
    }
    let address_len = if walk.ipv6 { 16 } else { 4 };
    let group = &mut walk.key.group;
    let read = if walk.ipv6 {
        load_into(&ctx, at + 4, group)
    } else {
        // IPv4 mapped into IPv6: ::ffff: and the address.
        let (prefix, ipv4) = group.split_at_mut(12);
        prefix[10] = 0xff;
        prefix[11] = 0xff;
        ipv4.try_into().is_ok_and(|ipv4: &mut [u8; 4]| load_into(&ctx, at + 4, ipv4))
    };
    if !read {
        return 1;
    }
    let [kind, aux_words, sources_high, sources_low] = walk.header;
    let sources = u16::from_be_bytes([sources_high, sources_low]);
    if let Some(member) = member_after(kind, sources) {
        change(&walk.key, walk.slot, member);
    }
    walk.offset = (at + 4 + address_len * (1 + sources as usize) + aux_words as usize * 4) as u32;
    0
}

/// Reads `N` bytes at `offset` straight into `dst` (`TcContext::load` would read them into a local first, on the
/// callback's stack). False past the frame's end.
#[inline(always)]
fn load_into<const N: usize>(ctx: &TcContext, offset: usize, dst: &mut [u8; N]) -> bool {
    // SAFETY: the helper writes at most N bytes into `dst`.
    unsafe { bpf_skb_load_bytes(ctx.as_ptr(), offset as u32, dst.as_mut_ptr().cast(), N as u32) == 0 }
}

/// Puts the endpoint in `slot` into the group or takes it out, with a store to its own byte (`GroupMembers`).
#[inline(always)]
fn change(key: &GroupKey, slot: u32, member: bool) {
    if !is_snooped_group(&key.group) || slot >= STATS_SLOTS {
        return;
    }
    let members = match GROUPS.get_ptr_mut(key) {
        Some(members) => members,
        None if member => {
            // A new group starts with no members (from a map value: it is too big for the stack). Another CPU may
            // have made it meanwhile; either way it is there now, unless the map is full, and then the group is
            // flooded like one nobody joined.
            let Some(empty) = NO_MEMBERS.get(0) else { return };
            let _ = GROUPS.insert(key, empty, BPF_NOEXIST as u64);
            let Some(members) = GROUPS.get_ptr_mut(key) else { return };
            members
        }
        None => return,
    };
    // SAFETY: the pointer comes from the map and `slot` is within the array.
    unsafe {
        if (*members).slots[slot as usize] != member as u8 {
            (*members).slots[slot as usize] = member as u8;
            // Only after the store: a count made under the generation read before this is not kept as good.
            datapath_changed();
        }
    }
}

/// A group some endpoint of a network joined, and its members.
#[derive(Clone, Copy)]
pub struct FrameGroup {
    pub key: GroupKey,
    pub members: *const GroupMembers,
}

/// Which of a network's ports a flood of a frame is for.
pub enum FloodGroup {
    /// Every port: not multicast, or a group nobody joined or whose members are not learned.
    Every,
    /// The members of a group some endpoint joined.
    Members(FrameGroup),
    /// An IGMP or MLD membership report or leave: routers only, as a snooping bridge sends them, and no endpoint is
    /// one. A host in IGMPv1/v2 or MLDv1 mode (as an IGMPv2 querier on the wire makes it) that hears another's
    /// report for a group withholds its own, and then, not the last to report, sends no leave either: xlan would
    /// never learn that it joined (another endpoint's report), or keep it a member after it left (one from the wire,
    /// the host or another VTEP).
    Routers,
}

/// The ports a flood of the frame goes to: for multicast to a snooped group some endpoint of the network joined,
/// its members (the frame's IP destination is the group); none for a membership report, when `reports` says to look
/// for them (the spreader's CPU gets no report to flood). Frames are flooded without a VLAN network's tag (it is off
/// by then); a tag of the endpoint's own in the frame is skipped, as `find_report` skips it (both through
/// `parse_l2`). The L3 fields are read with `bpf_skb_load_bytes`: the spreader's CPU has only the frame to go by,
/// and a report's fields may lie beyond the linear part. A frame cut short goes to every port.
#[inline(always)]
pub fn group_of_frame(ctx: &TcContext, network_id: u32, reports: bool) -> FloodGroup {
    try_group_of_frame(ctx, network_id, reports).unwrap_or(FloodGroup::Every)
}

#[inline(always)]
fn try_group_of_frame(ctx: &TcContext, network_id: u32, reports: bool) -> Result<FloodGroup, c_long> {
    let Ok(l2) = parse_l2(ctx) else { return Ok(FloodGroup::Every) };
    // Broadcast is for every port, and never a report: its headers need not be read.
    if !is_multicast_mac(&l2.dst) || l2.dst == [0xff; 6] {
        return Ok(FloodGroup::Every);
    }
    let (ether_type, l3_offset) = (l2.ether_type, l2.l3_offset);
    if reports && report_at(ctx, ether_type, l3_offset).is_some() {
        return Ok(FloodGroup::Routers);
    }
    let group = if ether_type == EtherType::Ipv4 as u16 {
        v4_mapped(ctx.load(l3_offset + offset_of!(Ipv4Hdr, dst_addr))?)
    } else if ether_type == EtherType::Ipv6 as u16 {
        ctx.load(l3_offset + offset_of!(Ipv6Hdr, dst_addr))?
    } else {
        return Ok(FloodGroup::Every);
    };
    if !is_snooped_group(&group) {
        return Ok(FloodGroup::Every);
    }
    let key = GroupKey { network_id, group };
    Ok(match GROUPS.get_ptr(&key) {
        Some(members) => FloodGroup::Members(FrameGroup { key, members }),
        None => FloodGroup::Every,
    })
}

/// What the member count's loop needs (bpf_loop's callback context).
#[repr(C)]
struct MemberCount {
    list: *const FloodList,
    members: *const GroupMembers,
    except_ifindex: u32,
    /// Members found so far.
    found: u32,
    /// The index after the last member found.
    end: u32,
    /// Ports found that are not members (the sender aside).
    strangers: u32,
    /// The sender is a member.
    sender_member: bool,
}

/// The members among a flood list's ports.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MemberPorts {
    /// How many (the sender left out).
    pub copies: u32,
    /// The list's ports from this index on hold none of them: the flood's loop stops there (for a group of a
    /// few members, most of a long list is not walked twice).
    pub end: u32,
    /// Every port but the sender is a member: the flood needs no filter.
    pub everyone: bool,
    /// The sender is a member: with no other, the group has a member, and nobody to copy to.
    pub sender_member: bool,
}

impl MemberPorts {
    /// What sends a flood to every port.
    pub const UNFILTERED: Self = Self { copies: 0, end: 0, everyone: true, sender_member: false };
}

/// The members among the list's first `count` ports. The whole list is walked: a callback that stopped at some
/// count would have the verifier check it once for every count below that (it compares the counter, so it must
/// tell them apart), which made every `endpoint add` verify for a quarter of a second longer.
#[inline(always)]
pub fn count_members(
    list: *const FloodList,
    count: u32,
    members: *const GroupMembers,
    except_ifindex: u32,
) -> MemberPorts {
    let mut walk = MemberCount { list, members, except_ifindex, found: 0, end: 0, strangers: 0, sender_member: false };
    // SAFETY: `count_one` reads `walk` (alive for the whole call) as the MemberCount it is.
    unsafe {
        bpf_loop(count, count_one as *mut c_void, (&mut walk as *mut MemberCount).cast(), 0);
    }
    MemberPorts { copies: walk.found, end: walk.end, everyone: walk.strangers == 0, sender_member: walk.sender_member }
}

extern "C" fn count_one(index: u64, walk: *mut c_void) -> c_long {
    // SAFETY: `count_members` passes its MemberCount, alive until bpf_loop returns.
    let walk = unsafe { &mut *(walk as *mut MemberCount) };
    let index = index as usize;
    // bpf_loop's index is below the count it was given, but the verifier does not know that: bound it again.
    if index >= MAX_FLOOD_PORTS {
        return 1;
    }
    // SAFETY: the list and the members are map values, plain data; `index` is within the list's arrays.
    let (port, member) = unsafe { ((*walk.list).ifindex[index], (*walk.members).has((*walk.list).slots[index])) };
    if port == walk.except_ifindex {
        walk.sender_member |= member;
    } else if member {
        walk.found += 1;
        walk.end = index as u32 + 1;
    } else {
        walk.strangers += 1;
    }
    0
}

/// `program_names::GROUPS_FORGET`: takes the slot in `skb->priority` out of every group when userspace removes its
/// endpoint (a new endpoint given the slot would otherwise inherit the memberships of the one that had it); then
/// deletes the groups of the network in `skb->mark` that no slot is in any more (0: none), which
/// would otherwise fill the map as endpoints come and go. Userspace cannot write the byte itself: a map update
/// writes the whole value, and would undo a concurrent report's. A report that joins a group just as it is deleted
/// is lost with it: userspace asks the network's endpoints about each deleted group again (`host::querier`).
#[inline(always)]
pub fn forget(ctx: &TcContext) {
    let skb = ctx.as_ptr() as *const __sk_buff;
    // SAFETY: context fields a program may read.
    let mut forget = unsafe { Forget { slot: (*skb).priority, empty_of: (*skb).mark } };
    // SAFETY: the map is this object's; `forget_one` reads `forget` (alive for the whole call) as the Forget it is.
    unsafe {
        bpf_for_each_map_elem(
            (&raw const GROUPS).cast_mut().cast(),
            forget_one as *mut c_void,
            (&mut forget as *mut Forget).cast(),
            0,
        );
    }
    datapath_changed();
}

/// What `forget` does to each group.
#[repr(C)]
struct Forget {
    /// The slot to take out.
    slot: u32,
    /// The network whose groups without members are deleted (0: none).
    empty_of: u32,
}

/// `GroupMembers` as the 8-byte words it is made of (4104 bytes), for the test for no member.
const MEMBER_WORDS: usize = size_of::<GroupMembers>() / 8;

/// Clears the slot in a group of the network and deletes the group left without members: the rule userspace predicts
/// with `GroupMembers::none_but` (change them together).
extern "C" fn forget_one(
    map: *mut c_void,
    key: *const GroupKey,
    members: *mut GroupMembers,
    forget: *mut c_void,
) -> c_long {
    // SAFETY: the kernel passes the map, the entry's key and value, and `forget`'s context.
    unsafe {
        let forget = &*(forget as *const Forget);
        if forget.slot < STATS_SLOTS {
            (*members).slots[forget.slot as usize] = 0;
        }
        if forget.empty_of == 0 || (*key).network_id != forget.empty_of {
            return 0;
        }
        // Map values are 8-byte aligned; the bytes are read as the words they lie in.
        let words = members as *const u64;
        for word in 0..MEMBER_WORDS {
            if *words.add(word) != 0 {
                return 0;
            }
        }
        bpf_map_delete_elem(map, key.cast());
    }
    0
}
