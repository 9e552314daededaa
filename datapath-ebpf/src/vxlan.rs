//! VXLAN (RFC 7348) over IPv4, interoperating with the kernel's vxlan driver: decapsulation of frames from
//! the underlay (XDP for unicast to a local endpoint, TC for what needs copies), flood-and-learn (inner source
//! MAC → outer source IP, static entries never overridden, learned ones age out), and encapsulation of what
//! endpoints send (TC: `bpf_skb_adjust_room` keeps GSO/checksum state, one copy per VTEP by
//! `bpf_clone_redirect` for broadcast/unknown, or one copy to the multicast group).
use aya_ebpf::{
    bindings::{
        bpf_adj_room_mode::BPF_ADJ_ROOM_MAC, bpf_fib_lookup, xdp_action, BPF_FIB_LKUP_RET_SUCCESS,
        BPF_FIB_LOOKUP_OUTPUT, BPF_F_ADJ_ROOM_DECAP_L3_IPV6, BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4,
        BPF_F_ADJ_ROOM_ENCAP_L4_UDP, TC_ACT_SHOT,
    },
    helpers::{
        bpf_fib_lookup as fib_lookup, bpf_redirect, bpf_redirect_neigh, bpf_skb_change_head, bpf_xdp_adjust_head,
    },
    programs::{TcContext, XdpContext},
};
use core::mem::{size_of, MaybeUninit};
use datapath_common::{
    csum, is_multicast_mac, FdbEntry, MacKey, NetworkConfig, NetworkFlags, VniKey, VtepMac, MAX_VTEPS, VXLAN_OVERHEAD,
};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
    vxlan::{VxlanHdr, VXLAN_I_FLAG_MASK},
};

use crate::{
    cache::{datapath_changed, fdb_entry, vni_network, vtep_mac, vxlan_fdb, FdbCached, VniNetwork},
    dispatch::Sender,
    drops::note_drop,
    error::Error,
    fdb::{flood, now_ns},
    maps::{FDB, VTEPS, VTEP_MACS},
    parse::{ptr_at, write_owned, ArpHdr, L2Header, Packet},
    port::{redirect_to_peer, redirect_to_port, redirect_xdp, Port},
};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const AF_INET: u8 = 2;
/// Learned entries are refreshed at most this often: no map write per packet.
const REFRESH_NS: u64 = 1_000_000_000;
/// Outer UDP source ports, as the kernel's default local port range (udp_flow_src_port).
const SOURCE_PORT_MIN: u32 = 32768;
const SOURCE_PORT_SPAN: u32 = 61000 - 32768;

/// A frame from the underlay that is VXLAN for one of this host's networks.
struct Received {
    network_id: u32,
    /// This CPU's cached copy (`cache::vni_network`), read in place.
    network: &'static NetworkConfig,
    outer_src_ip: u32,
    outer_src_mac: [u8; 6],
    /// Offset of the inner Ethernet header.
    inner_offset: usize,
    inner_dst: [u8; 6],
    inner_src: [u8; 6],
}

/// The VXLAN network a frame belongs to, or None for anything else (plain traffic, IPv4 with options or
/// fragmented, invalid VXLAN flags, unknown VNI or port, not addressed to the VTEP): the stack's business,
/// never forwarded.
#[inline(always)]
fn classify(packet: &impl Packet, l2: &L2Header, parent: u32) -> Option<Received> {
    if l2.vlan_id != 0 || l2.ether_type != EtherType::Ipv4 as u16 {
        return None;
    }
    let ip: *const Ipv4Hdr = ptr_at(packet, l2.l3_offset).ok()?;
    // SAFETY: ptr_at checked the header lies inside the packet (and so for the headers below).
    let (vihl, proto, frags, src, dst) =
        unsafe { ((*ip).vihl, (*ip).proto, (*ip).frags, (*ip).src_addr, (*ip).dst_addr) };
    let fragmented = u16::from_be_bytes(frags) & 0x3fff != 0;
    if vihl != 0x45 || proto != IpProto::Udp as u8 || fragmented {
        return None;
    }
    let udp: *const UdpHdr = ptr_at(packet, l2.l3_offset + Ipv4Hdr::LEN).ok()?;
    let vxlan: *const VxlanHdr = ptr_at(packet, l2.l3_offset + Ipv4Hdr::LEN + UdpHdr::LEN).ok()?;
    let inner_offset = l2.l3_offset + Ipv4Hdr::LEN + UdpHdr::LEN + VxlanHdr::LEN;
    let inner: *const EthHdr = ptr_at(packet, inner_offset).ok()?;
    let (dstport, flags, vni) = unsafe { (u16::from_be_bytes((*udp).dst), (*vxlan).flags, (*vxlan).vni()) };
    if flags & VXLAN_I_FLAG_MASK == 0 {
        return None;
    }
    let VniNetwork { network_id, network } = vni_network(VniKey { parent_ifindex: parent, vni, dstport, _pad: 0 })?;
    let dst_ip = u32::from_ne_bytes(dst);
    if dst_ip != network.local_ip && (network.group_ip == 0 || dst_ip != network.group_ip) {
        return None;
    }
    let (inner_dst, inner_src) = unsafe { ((*inner).dst_addr, (*inner).src_addr) };
    Some(Received {
        network_id: *network_id,
        network,
        outer_src_ip: u32::from_ne_bytes(src),
        outer_src_mac: l2.src,
        inner_offset,
        inner_dst,
        inner_src,
    })
}

/// Flood-and-learn: the inner source MAC lives behind the outer source IP. Static entries win; a MAC seen
/// behind another VTEP moves there; an unchanged entry is refreshed at most once a second. What this CPU confirmed
/// within that second (its copy in the FDB cache) needs no lookup.
#[inline(always)]
fn learn(received: &Received) {
    if !received.network.flags.contains(NetworkFlags::LEARNING)
        || is_multicast_mac(&received.inner_src)
        || !remote_vtep(received.outer_src_ip, received.network)
    {
        return;
    }
    let now = now_ns();
    let cached = fdb_entry(received.network_id, received.inner_src);
    if let Some(FdbCached { answer: Some(Some(known)), .. }) = cached {
        let confirmed =
            known.remote_ip == received.outer_src_ip && now.saturating_sub(known.last_seen_ns) <= REFRESH_NS;
        if known.is_static() || confirmed {
            return;
        }
    }
    let key = MacKey::new(received.network_id, received.inner_src);
    if let Some(existing) = FDB.get_ptr_mut(&key) {
        // SAFETY: the pointer comes from the map; a racing writer can only make last_seen a little stale.
        let existing = unsafe { &mut *existing };
        if !existing.is_static() && existing.remote_ip == received.outer_src_ip {
            if now.saturating_sub(existing.last_seen_ns) > REFRESH_NS {
                existing.last_seen_ns = now;
                // The VTEP's next hop may have changed (new NIC, moved VM, router failover): follow it.
                set_vtep_mac(received.outer_src_ip, received.outer_src_mac);
            }
        }
        if existing.is_static() || existing.remote_ip == received.outer_src_ip {
            if let Some(cached) = cached {
                cached.keep(Some(*existing));
            }
            return;
        }
    }
    let entry = FdbEntry { ifindex: 0, remote_ip: received.outer_src_ip, flags: 0, slot: 0, last_seen_ns: now };
    let _ = FDB.insert(&key, &entry, 0);
    set_vtep_mac(received.outer_src_ip, received.outer_src_mac);
    datapath_changed();
}

/// An outer source a remote VTEP can have: unicast (not 0.0.0.0, 255.255.255.255, loopback or multicast, which the
/// kernel's IP stack drops as martians before its vxlan driver could learn them) and not this host's own VTEP (a
/// loop). Learning anything else would send the MAC's traffic there.
#[inline(always)]
fn remote_vtep(ip: u32, network: &NetworkConfig) -> bool {
    let octets = ip.to_ne_bytes();
    ip != 0 && ip != u32::MAX && octets[0] != 127 && octets[0] & 0xf0 != 0xe0 && ip != network.local_ip
}

/// Records `mac` as the next hop of `vtep` unless it is already.
#[inline(always)]
fn set_vtep_mac(vtep: u32, mac: [u8; 6]) {
    if let Some(known) = VTEP_MACS.get_ptr_mut(&vtep) {
        // SAFETY: the pointer comes from the map.
        let known = unsafe { &mut *known };
        if known.mac != mac {
            known.mac = mac;
            datapath_changed();
        }
        return;
    }
    let _ = VTEP_MACS.insert(&vtep, &VtepMac { mac, _pad: [0; 2] }, 0);
    datapath_changed();
}

/// ARP on the underlay (the host resolving a VTEP's managed neighbour entry, or a VTEP announcing itself):
/// a VTEP `xlan` is waiting for (a key with the all-zero MAC) or whose MAC changed gets its sender MAC.
/// Only VTEPs already in the map: nothing else of the underlay is recorded.
#[inline(always)]
pub fn snoop_arp(packet: &impl Packet, l2: &L2Header) {
    if l2.vlan_id != 0 || l2.ether_type != EtherType::Arp as u16 {
        return;
    }
    let Ok(arp) = ptr_at::<ArpHdr>(packet, l2.l3_offset) else { return };
    // SAFETY: ptr_at checked the ARP header lies inside the packet.
    let (htype, ptype, hlen, plen, sha, spa) =
        unsafe { ((*arp).htype, (*arp).ptype, (*arp).hlen, (*arp).plen, (*arp).sha, (*arp).spa) };
    if htype != [0, 1] || ptype != [0x08, 0x00] || hlen != 6 || plen != 4 || is_multicast_mac(&sha) {
        return;
    }
    let vtep = u32::from_ne_bytes(spa);
    if let Some(known) = VTEP_MACS.get_ptr_mut(&vtep) {
        // SAFETY: the pointer comes from the map.
        let known = unsafe { &mut *known };
        if known.mac != sha {
            known.mac = sha;
            datapath_changed();
        }
    }
}

/// Underlay frames in XDP: learn, then unicast for a local endpoint is stripped and redirected straight
/// into its veth. Broadcast and unknown unicast go up to `decap_tc`, which can copy.
#[inline(always)]
pub fn decap_xdp(ctx: &XdpContext, l2: &L2Header, parent: u32) -> Result<Option<u32>, Error> {
    let Some(received) = classify(ctx, l2, parent) else { return Ok(None) };
    learn(&received);
    if is_multicast_mac(&received.inner_dst) {
        return Ok(Some(xdp_action::XDP_PASS));
    }
    let Some(entry) = vxlan_fdb(received.network_id, received.inner_dst, received.network.ageing_secs) else {
        return Ok(Some(xdp_action::XDP_PASS));
    };
    if entry.ifindex == 0 {
        // For a MAC behind another VTEP: VTEPs never relay each other's frames.
        return Err(Error::SplitHorizon);
    }
    // SAFETY: a plain helper call; inner_offset lies inside the packet (classify checked).
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, received.inner_offset as i32) } != 0 {
        return Err(Error::Malformed);
    }
    redirect_xdp(ctx, Port::of(&entry)).map(Some)
}

/// Underlay frames XDP left to TC: decapsulate, then one copy per local endpoint for broadcast and unknown
/// unicast, or the one endpoint that owns the destination.
#[inline(always)]
pub fn decap_tc(ctx: &TcContext, l2: &L2Header, parent: u32) -> Result<Option<i32>, Error> {
    let headers = l2.l3_offset + Ipv4Hdr::LEN + UdpHdr::LEN + VxlanHdr::LEN + EthHdr::LEN;
    if ctx.data() + headers > ctx.data_end() {
        // The headers may lie beyond the skb's linear part: pull them in (a shorter frame is not VXLAN).
        if (ctx.len() as usize) < headers || ctx.pull_data(headers as u32).is_err() {
            return Ok(None);
        }
    }
    let Some(received) = classify(ctx, l2, parent) else { return Ok(None) };
    // With the tc parent hook no XDP program saw the frame; with the xdp hook this is at most a refresh.
    learn(&received);
    let inner: *const EthHdr = ptr_at(ctx, received.inner_offset)?;
    // SAFETY: ptr_at checked the header lies inside the packet (classify read it already).
    let inner = unsafe { *inner };
    // Remove outer IP, UDP, VXLAN and the inner Ethernet header behind the outer one, then make the outer
    // Ethernet header the inner one: what is left is the inner frame.
    let strip = (received.inner_offset + EthHdr::LEN - l2.l3_offset) as i32;
    // skb->protocol stays the outer header's (IPv4) unless the helper is told the inner one is IPv6.
    let inner_ipv6 = inner.ether_type == EtherType::Ipv6 as u16;
    let flags = if inner_ipv6 { BPF_F_ADJ_ROOM_DECAP_L3_IPV6 as u64 } else { 0 };
    ctx.adjust_room(-strip, BPF_ADJ_ROOM_MAC, flags).map_err(|_| Error::Malformed)?;
    write_owned(ctx, 0, &inner)?;
    if is_multicast_mac(&received.inner_dst) {
        flood(ctx, received.network_id, 0);
        return Ok(Some(TC_ACT_SHOT as i32));
    }
    match vxlan_fdb(received.network_id, received.inner_dst, received.network.ageing_secs) {
        // bpf_redirect_peer keeps skb->protocol: IPv4 (the outer header's) and IPv6 (set by the decapsulation) inner
        // frames may take it; ARP and the rest go through the veth's transmit path, whose peer sets the protocol
        // from the frame.
        Some(entry) if entry.ifindex != 0 && (inner_ipv6 || inner.ether_type == EtherType::Ipv4 as u16) => {
            Ok(Some(redirect_to_peer(Port::of(&entry), ctx.len())))
        }
        Some(entry) if entry.ifindex != 0 => Ok(Some(redirect_to_port(ctx, Port::of(&entry)))),
        Some(_) => Err(Error::SplitHorizon),
        None => {
            flood(ctx, received.network_id, 0);
            Ok(Some(TC_ACT_SHOT as i32))
        }
    }
}

/// Everything an endpoint of a VXLAN network sends: local endpoints directly, known remote MACs to their VTEP,
/// broadcast and unknown unicast to the local endpoints and every VTEP of the flood list (or the group).
#[inline(always)]
pub fn endpoint_egress(ctx: &TcContext, l2: &L2Header, sender: &Sender) -> Result<i32, Error> {
    let &Sender { port, network_id, network } = sender;
    if !is_multicast_mac(&l2.dst) {
        match vxlan_fdb(network_id, l2.dst, network.ageing_secs) {
            Some(entry) if entry.ifindex == port => return Err(Error::ToItself),
            Some(entry) if entry.ifindex != 0 => return Ok(redirect_to_peer(Port::of(&entry), ctx.len())),
            Some(entry) => return send(ctx, l2, network, entry.remote_ip),
            None => {}
        }
    }
    sender.flood(ctx);
    flood_remote(ctx, l2, network_id, network)
}

/// One copy to the group, or one per VTEP of the flood list (head-end replication).
#[inline(always)]
fn flood_remote(ctx: &TcContext, l2: &L2Header, network_id: u32, network: &NetworkConfig) -> Result<i32, Error> {
    if network.group_ip != 0 {
        return send(ctx, l2, network, network.group_ip);
    }
    let Some(list) = VTEPS.get_ptr(&network_id) else { return Ok(TC_ACT_SHOT as i32) };
    // SAFETY: the pointer comes from the map; the loop bound is a constant.
    let count = unsafe { (*list).count } as usize;
    if count == 0 {
        return Ok(TC_ACT_SHOT as i32);
    }
    encapsulate(ctx, l2, network, unsafe { (*list).ips[0] }, &NextHop::unresolved(network))?;
    // A VTEP whose next hop is not resolved yet gets the original, through bpf_redirect_neigh, which resolves.
    let mut unresolved = 0u32;
    for slot in 0..MAX_VTEPS {
        if slot >= count {
            break;
        }
        let remote = unsafe { (*list).ips[slot] };
        match next_hop(ctx, network, remote) {
            Some(hop) => {
                address(ctx, network, remote, &hop)?;
                let _ = ctx.clone_redirect(hop.ifindex, 0);
            }
            None if unresolved == 0 => unresolved = remote,
            // Only this copy is lost: the frame itself goes on, so no endpoint is blamed.
            None => note_drop(ctx, Error::NoNeighbour, None),
        }
    }
    if unresolved == 0 {
        return Ok(TC_ACT_SHOT as i32);
    }
    resolve_and_send(ctx, network, unresolved)
}

/// Encapsulates for `remote` and sends it to its next hop. A next hop already known (the VTEP's MAC, the group's)
/// goes into the headers as they are written; otherwise the FIB is asked once the frame has its outer length.
#[inline(always)]
fn send(ctx: &TcContext, l2: &L2Header, network: &NetworkConfig, remote: u32) -> Result<i32, Error> {
    let hop = match known_hop(network, remote) {
        Some(hop) => {
            encapsulate(ctx, l2, network, remote, &hop)?;
            hop
        }
        None => {
            encapsulate(ctx, l2, network, remote, &NextHop::unresolved(network))?;
            let Some(hop) = fib_hop(ctx, network, remote) else { return resolve_and_send(ctx, network, remote) };
            address(ctx, network, remote, &hop)?;
            hop
        }
    };
    // SAFETY: a plain helper call.
    Ok(unsafe { bpf_redirect(hop.ifindex, 0) } as i32)
}

/// Lets the kernel resolve the next hop (and queue the frame meanwhile). It does so only for IP frames; an
/// ARP frame to an unresolved VTEP is dropped (the VTEP's neighbour entry is managed by `xlan`, or learned).
#[inline(always)]
fn resolve_and_send(ctx: &TcContext, network: &NetworkConfig, remote: u32) -> Result<i32, Error> {
    if !is_ip(ctx) {
        return Err(Error::NoNeighbour);
    }
    address(ctx, network, remote, &NextHop::unresolved(network))?;
    // SAFETY: a plain helper call; no parameters: the kernel looks the route and neighbour up itself.
    Ok(unsafe { bpf_redirect_neigh(network.parent_ifindex, core::ptr::null_mut(), 0, 0) } as i32)
}

#[inline(always)]
fn is_ip(ctx: &TcContext) -> bool {
    // SAFETY: ctx.skb points at a valid __sk_buff; protocol holds a big-endian EtherType.
    let protocol = unsafe { (*ctx.skb.skb).protocol } as u16;
    protocol == ETH_P_IP.to_be() || protocol == ETH_P_IPV6.to_be()
}

/// The headers put in front of an endpoint's frame.
#[repr(C)]
struct EncapHeader {
    outer: OuterHeader,
    udp: UdpHdr,
    vxlan: VxlanHdr,
    inner: EthHdr,
}

/// The part of the encapsulation that differs per destination VTEP.
#[repr(C)]
struct OuterHeader {
    eth: EthHdr,
    ip: Ipv4Hdr,
}

/// Adds the VXLAN headers for `remote` through `hop` in front of the frame (`address` changes the outer ones).
#[inline(always)]
fn encapsulate(
    ctx: &TcContext,
    l2: &L2Header,
    network: &NetworkConfig,
    remote: u32,
    hop: &NextHop,
) -> Result<(), Error> {
    let inner: *const EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: ptr_at checked the header lies inside the packet.
    let inner = unsafe { *inner };
    let flow_hash = flow_hash(ctx, l2);
    // SAFETY: plain helper calls on the program's own skb.
    let grown = if is_ip(ctx) {
        // Inserts the room behind the Ethernet header and tells GSO that this is now a UDP tunnel.
        let flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 as u64
            | BPF_F_ADJ_ROOM_ENCAP_L4_UDP as u64
            | BPF_F_ADJ_ROOM_ENCAP_L2_ETH as u64
            | ((EthHdr::LEN as u64) << 56);
        ctx.adjust_room(VXLAN_OVERHEAD as i32, BPF_ADJ_ROOM_MAC, flags).is_ok()
    } else {
        // adjust_room takes only IP; ARP and the like (never GSO) get the room in front instead.
        unsafe { bpf_skb_change_head(ctx.skb.skb, VXLAN_OVERHEAD as u32, 0) == 0 }
    };
    if !grown {
        return Err(Error::Encap);
    }
    let outer_len = ctx.len() - EthHdr::LEN as u32;
    // Scaled into the range as the kernel's udp_flow_src_port does (reciprocal_scale): no division.
    let source_port = (SOURCE_PORT_MIN + ((flow_hash as u64 * SOURCE_PORT_SPAN as u64) >> 32) as u32) as u16;
    // The room just made is this program's own (see `write_owned`): the headers go straight in, part by part (one
    // 64-byte value would not fit the program's stack beside the rest). bpf_skb_store_bytes cost about 40 ns more
    // (BPF run time, the decapsulation's store of 14 bytes).
    let header: *mut EncapHeader = ptr_at::<EncapHeader>(ctx, 0).map_err(|_| Error::Encap)? as *mut EncapHeader;
    // SAFETY: ptr_at checked the headers lie inside the packet.
    unsafe {
        (*header).outer = outer_header(network, remote, hop, outer_len);
        (*header).udp = UdpHdr {
            src: source_port.to_be_bytes(),
            dst: network.dstport.to_be_bytes(),
            len: ((outer_len as usize - Ipv4Hdr::LEN) as u16).to_be_bytes(),
            // Zero: no outer UDP checksum over IPv4, as the kernel's vxlan default (RFC 7348).
            check: [0; 2],
        };
        (*header).vxlan = VxlanHdr::new(network.vni);
        (*header).vxlan.flags = VXLAN_I_FLAG_MASK;
        (*header).inner = inner;
    }
    Ok(())
}

/// The hash of the inner flow, for the outer UDP source port: the skb's own when it has one (a local socket's, or one
/// an earlier hop computed), else the inner addresses and ports folded into one word and mixed here.
/// bpf_get_hash_recalc would run the kernel's flow dissector and siphash for it, ~80 ns a frame.
#[inline(always)]
fn flow_hash(ctx: &TcContext, l2: &L2Header) -> u32 {
    // SAFETY: ctx.skb points at a valid __sk_buff.
    let hash = unsafe { (*ctx.skb.skb).hash };
    if hash != 0 {
        return hash;
    }
    // The destination is rotated, so that the two directions of a flow differ.
    let mut folded = 0u32;
    let mut ports_at = 0;
    if l2.ether_type == EtherType::Ipv4 as u16 {
        if let Ok(ip) = ptr_at::<Ipv4Hdr>(ctx, l2.l3_offset) {
            // SAFETY: ptr_at checked the header lies inside the packet.
            let (vihl, frags, proto, src, dst) =
                unsafe { ((*ip).vihl, (*ip).frags, (*ip).proto, (*ip).src_addr, (*ip).dst_addr) };
            folded = u32::from_ne_bytes(src) ^ u32::from_ne_bytes(dst).rotate_left(16) ^ proto as u32;
            // The ports of a first or only fragment behind a header without options.
            if vihl == 0x45 && u16::from_be_bytes(frags) & 0x1fff == 0 && has_ports(proto) {
                ports_at = l2.l3_offset + Ipv4Hdr::LEN;
            }
        }
    } else if l2.ether_type == EtherType::Ipv6 as u16 {
        if let Ok(ip) = ptr_at::<Ipv6Hdr>(ctx, l2.l3_offset) {
            // SAFETY: as above.
            let (next, src, dst) = unsafe { ((*ip).next_hdr, (*ip).src_addr, (*ip).dst_addr) };
            folded = fold(&src) ^ fold(&dst).rotate_left(16) ^ next as u32;
            if has_ports(next) {
                ports_at = l2.l3_offset + Ipv6Hdr::LEN;
            }
        }
    } else {
        folded = u32::from_ne_bytes([l2.dst[2], l2.dst[3], l2.dst[4], l2.dst[5]])
            ^ u32::from_ne_bytes([l2.src[2], l2.src[3], l2.src[4], l2.src[5]]).rotate_left(16);
    }
    if ports_at != 0 {
        if let Ok(ports) = ptr_at::<[u8; 4]>(ctx, ports_at) {
            // SAFETY: ptr_at checked the ports lie inside the packet.
            folded = folded.rotate_left(5) ^ u32::from_ne_bytes(unsafe { *ports });
        }
    }
    // murmur3's finaliser: every input bit reaches the high bits the port is scaled from.
    let mut hash = folded ^ (folded >> 16);
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^ (hash >> 16)
}

/// An IPv6 address's four words, xor-ed.
#[inline(always)]
fn fold(addr: &[u8; 16]) -> u32 {
    let word = |at: usize| u32::from_ne_bytes([addr[at], addr[at + 1], addr[at + 2], addr[at + 3]]);
    word(0) ^ word(4) ^ word(8) ^ word(12)
}

/// TCP, UDP, SCTP and UDP-Lite carry their ports in their first four bytes.
#[inline(always)]
fn has_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 132 | 136)
}

/// Writes the outer Ethernet and IPv4 headers for `remote` through `hop`.
#[inline(always)]
fn address(ctx: &TcContext, network: &NetworkConfig, remote: u32, hop: &NextHop) -> Result<(), Error> {
    let outer_len = ctx.len() - EthHdr::LEN as u32;
    ctx.store(0, &outer_header(network, remote, hop, outer_len), 0).map_err(|_| Error::Encap)
}

#[inline(always)]
fn outer_header(network: &NetworkConfig, remote: u32, hop: &NextHop, outer_len: u32) -> OuterHeader {
    let mut ip = Ipv4Hdr {
        vihl: 0x45,
        tos: 0,
        tot_len: (outer_len as u16).to_be_bytes(),
        id: [0; 2],
        // Don't fragment: the endpoints' MTU leaves room for the headers.
        frags: 0x4000u16.to_be_bytes(),
        ttl: 64,
        proto: IpProto::Udp as u8,
        check: [0; 2],
        src_addr: network.local_ip.to_ne_bytes(),
        dst_addr: remote.to_ne_bytes(),
    };
    // SAFETY: Ipv4Hdr is 20 bytes of plain data.
    ip.check = csum::ipv4_header(unsafe { &*(&ip as *const Ipv4Hdr as *const [u8; Ipv4Hdr::LEN]) });
    OuterHeader { eth: EthHdr { dst_addr: hop.dmac, src_addr: hop.smac, ether_type: EtherType::Ipv4 as u16 }, ip }
}

/// Where a copy for a VTEP leaves: device and link-layer addresses.
struct NextHop {
    ifindex: u32,
    smac: [u8; 6],
    dmac: [u8; 6],
}

impl NextHop {
    /// Out of the parent, to a destination `address` or bpf_redirect_neigh fills in. The parent's own MAC stands in
    /// until then: six zero bytes would be a call to a byte-wise memset subprogram.
    fn unresolved(network: &NetworkConfig) -> Self {
        Self { ifindex: network.parent_ifindex, smac: network.parent_mac, dmac: network.parent_mac }
    }
}

/// The next hop toward `remote`: one already known, else the FIB and neighbour table's.
#[inline(always)]
fn next_hop(ctx: &TcContext, network: &NetworkConfig, remote: u32) -> Option<NextHop> {
    known_hop(network, remote).or_else(|| fib_hop(ctx, network, remote))
}

/// The next hop toward `remote` that needs no FIB lookup per frame: the group's multicast MAC, or the MAC `xlan`
/// keeps for the VTEP (read from its managed neighbour entry, or the link-layer source its frames came from), out of
/// the parent. None for a VTEP whose MAC is not known yet.
#[inline(always)]
fn known_hop(network: &NetworkConfig, remote: u32) -> Option<NextHop> {
    let octets = remote.to_ne_bytes();
    let dmac = if octets[0] & 0xf0 == 0xe0 {
        [0x01, 0x00, 0x5e, octets[1] & 0x7f, octets[2], octets[3]]
    } else {
        let known = vtep_mac(remote)?;
        if known == [0; 6] {
            return None; // a configured VTEP whose MAC is not known yet
        }
        known
    };
    Some(NextHop { ifindex: network.parent_ifindex, smac: network.parent_mac, dmac })
}

/// `bpf_fib_lookup`'s parameters, aligned for `zero_in_place`.
#[repr(C, align(8))]
struct FibParams(bpf_fib_lookup);

/// Zeroes the parameters where they are with eight 8-byte stores. LLVM turns a plain zeroing (`mem::zeroed`, a
/// loop), or a move of zeroed memory, into a call to a byte-wise memset subprogram, 64 stores of one byte; volatile
/// stores it must leave as they are, and using the parameters in place leaves it no move to turn.
#[inline(always)]
fn zero_in_place(params: &mut MaybeUninit<FibParams>) -> &mut bpf_fib_lookup {
    const WORDS: usize = size_of::<FibParams>() / 8;
    let words = params.as_mut_ptr() as *mut u64;
    for word in 0..WORDS {
        // SAFETY: inside `params`, which is 8-aligned and WORDS * 8 bytes long.
        unsafe { words.add(word).write_volatile(0) };
    }
    // SAFETY: every byte was written; all-zero is a valid bpf_fib_lookup.
    unsafe { &mut (*params.as_mut_ptr()).0 }
}

/// The next hop toward `remote` in the FIB and neighbour table (none yet, or a host that does not forward:
/// bpf_fib_lookup then refuses to answer at all).
#[inline(always)]
fn fib_hop(ctx: &TcContext, network: &NetworkConfig, remote: u32) -> Option<NextHop> {
    // All zero is a valid starting point; the helper fills the answer in.
    let mut storage = MaybeUninit::uninit();
    let params = zero_in_place(&mut storage);
    params.family = AF_INET;
    params.l4_protocol = IpProto::Udp as u8;
    params.ifindex = network.parent_ifindex;
    params.__bindgen_anon_3.ipv4_src = network.local_ip;
    params.__bindgen_anon_4.ipv4_dst = remote;
    let verdict =
        unsafe { fib_lookup(ctx.skb.skb as *mut _, params, size_of::<bpf_fib_lookup>() as i32, BPF_FIB_LOOKUP_OUTPUT) }
            as u32;
    if verdict != BPF_FIB_LKUP_RET_SUCCESS {
        return None;
    }
    Some(NextHop { ifindex: params.ifindex, smac: params.smac, dmac: params.dmac })
}
