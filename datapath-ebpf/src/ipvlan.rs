//! ipvlan (Documentation/networking/ipvlan.rst): every endpoint has the parent's MAC; frames are
//! demultiplexed by destination IP (IPv4 and IPv6, an endpoint may own several addresses and, in l3 mode,
//! routes behind it). l2: broadcast and multicast reach the endpoints, which answer ARP/ND themselves.
//! l3: the parent routes for the endpoints, no broadcast or multicast reaches them, and `neighbour` answers
//! ARP/ND for their addresses. Flags: bridge (endpoint to endpoint directly), private (never), vepa (out to
//! the switch and back). An endpoint sending from an address that is not its own is dropped (`Spoofed`).
use aya_ebpf::{
    bindings::TC_ACT_OK,
    helpers::{bpf_redirect, bpf_redirect_neigh},
    programs::{TcContext, XdpContext},
};
use datapath_common::{is_multicast_mac, IpvlanMode, NetworkConfig, NetworkFlags, HOST_PORT};

use crate::{
    cache::ip_owner,
    dispatch::Sender,
    error::Error,
    fdb::flood,
    neighbour,
    parse::{l3_kind, parse_l3, IpAddress, L2Header, L3Addrs},
    port::{redirect_to_peer, Port},
    vlan::tag_tc,
};

/// The endpoint that owns `addr` in the network, if an endpoint does (`ip_owner` also names the host's own
/// addresses, as `HOST_PORT`).
#[inline(always)]
pub fn endpoint_owner(network_id: u32, addr: IpAddress) -> Option<Port> {
    ip_owner(network_id, addr).filter(|o| o.ifindex != HOST_PORT)
}

/// The address a frame is for: an IP destination, or the target of an ARP packet.
#[inline(always)]
fn destination(l3: &L3Addrs) -> Option<IpAddress> {
    if l3.kind == l3_kind::OTHER {
        None
    } else {
        Some(l3.dst)
    }
}

/// The address a frame is from: an IP source, or the sender of an ARP packet.
#[inline(always)]
fn source(l3: &L3Addrs) -> Option<IpAddress> {
    if l3.kind == l3_kind::OTHER {
        None
    } else {
        Some(l3.src)
    }
}

/// Frames from the wire, before the stack sees them: unicast to the parent's MAC for an endpoint's address goes
/// straight into its veth (the dispatcher redirects it). Group frames (copies in l2, ARP/ND answers in l3) and frames
/// an endpoint sent that the switch hairpinned back (their skb state matters) are left to `parent_ingress`: None.
#[inline(always)]
pub fn parent_xdp(
    ctx: &XdpContext,
    l2: &L2Header,
    network_id: u32,
    network: &NetworkConfig,
) -> Result<Option<Port>, Error> {
    if is_multicast_mac(&l2.dst) || l2.dst != network.parent_mac || l2.src == network.parent_mac {
        return Ok(None);
    }
    let Some(target) = destination(&parse_l3(ctx, l2)?) else { return Ok(None) };
    // The parent's own addresses stay the host's.
    Ok(endpoint_owner(network_id, target))
}

/// Frames from the wire in TC: l2 copies broadcast and multicast to the endpoints (the host keeps the
/// original); l3 answers ARP/ND for endpoint addresses; hairpinned endpoint frames are delivered (vepa) or
/// dropped (private).
#[inline(always)]
pub fn parent_ingress(ctx: &TcContext, l2: &L2Header, network_id: u32, network: &NetworkConfig) -> Result<i32, Error> {
    let l3 = parse_l3(ctx, l2)?;
    let hairpinned = l2.src == network.parent_mac;
    let sender = if hairpinned { source(&l3).and_then(|src| endpoint_owner(network_id, src)) } else { None };
    if network.ipvlan_mode() == IpvlanMode::L3 {
        if let Some(verdict) = neighbour::answer(ctx, l2, &l3, network_id, network)? {
            return Ok(verdict);
        }
    }
    if is_multicast_mac(&l2.dst) {
        if network.ipvlan_mode() == IpvlanMode::L2 {
            match sender {
                None => flood(ctx, network_id, 0),
                // vepa endpoints see each other's multicast only through the switch; bridge endpoints already got
                // it on the way out; private ones never do (the kernel's ipvlan_external_frame floods none of them).
                Some(sender) if network.flags.contains(NetworkFlags::VEPA) => flood(ctx, network_id, sender.ifindex),
                Some(_) => {}
            }
        }
        return Ok(TC_ACT_OK as i32);
    }
    if l2.dst != network.parent_mac {
        return Ok(TC_ACT_OK as i32);
    }
    let Some(endpoint) = destination(&l3).and_then(|dst| endpoint_owner(network_id, dst)) else {
        return Ok(TC_ACT_OK as i32);
    };
    if sender.is_some() && network.flags.contains(NetworkFlags::PRIVATE) {
        return Err(Error::Isolation);
    }
    Ok(redirect_to_peer(endpoint, ctx.len()))
}

/// Everything an endpoint of an ipvlan network sends.
#[inline(always)]
pub fn endpoint_egress(ctx: &TcContext, l2: &L2Header, sender: &Sender) -> Result<i32, Error> {
    let &Sender { port, network_id, network } = sender;
    let l3 = parse_l3(ctx, l2)?;
    if let Some(src) = source(&l3) {
        if !src.is_unspecified() && ip_owner(network_id, src).is_none_or(|o| o.ifindex != port) {
            return Err(Error::Spoofed);
        }
    }
    let l3_mode = network.ipvlan_mode() == IpvlanMode::L3;
    if l3_mode && l3.kind != l3_kind::IP {
        // l3 endpoints are NOARP: nothing but IP has a way out.
        return Err(Error::NotIp);
    }
    if is_multicast_mac(&l2.dst) {
        if !l3_mode && !network.flags.intersects(NetworkFlags::PRIVATE.union(NetworkFlags::VEPA)) {
            sender.flood(ctx);
        }
        return out_of_parent(ctx, l2, network);
    }
    match destination(&l3).and_then(|dst| ip_owner(network_id, dst)) {
        Some(endpoint) if endpoint.ifindex == port => Err(Error::ToItself),
        // l3 routes through the host's FIB, which would send a frame for the host's own address out of the
        // wire, to nobody: the host's addresses are not for endpoints (as with macvlan). In l2 such a frame
        // goes out as it is, and only a hairpinning switch brings it back to the host, as with the kernel.
        Some(owner) if owner.ifindex == HOST_PORT && l3_mode => Err(Error::Isolation),
        Some(owner) if owner.ifindex == HOST_PORT => out_of_parent(ctx, l2, network),
        Some(_) if network.flags.contains(NetworkFlags::PRIVATE) => Err(Error::Isolation),
        Some(_) if network.flags.contains(NetworkFlags::VEPA) => out_of_parent(ctx, l2, network),
        Some(endpoint) => Ok(redirect_to_peer(endpoint, ctx.len())),
        None => out_of_parent(ctx, l2, network),
    }
}

/// Out of the parent: as it is in l2 (the endpoint resolved the next hop itself, the network's VLAN tag put on), routed
/// by the host's FIB and neighbour table in l3 (the endpoint is NOARP and addressed the frame to its own MAC; l3 is
/// never on a VLAN, whose neighbours the host could not resolve).
#[inline(always)]
fn out_of_parent(ctx: &TcContext, l2: &L2Header, network: &NetworkConfig) -> Result<i32, Error> {
    // SAFETY: plain helper calls.
    unsafe {
        if network.ipvlan_mode() == IpvlanMode::L3 {
            Ok(bpf_redirect_neigh(network.parent_ifindex, core::ptr::null_mut(), 0, 0) as i32)
        } else {
            tag_tc(ctx, l2, network)?;
            Ok(bpf_redirect(network.parent_ifindex, 0) as i32)
        }
    }
}
