//! macvlan forwarding, with the kernel driver's semantics (drivers/net/macvlan.c) per mode:
//! bridge: endpoints reach each other directly; private: never; vepa: only through the external switch's
//! hairpin; passthru: the one endpoint gets all the parent's unicast; source: endpoints get only frames from
//! allowed source MACs. Each entry point returns what to do; `main.rs` maps errors to a verdict.
use aya_ebpf::{
    bindings::{BPF_F_INGRESS, TC_ACT_OK},
    helpers::bpf_redirect,
    programs::TcContext,
    EbpfContext,
};
use datapath_common::{is_multicast_mac, MacvlanMode, NetworkConfig, NetworkFlags};

use crate::{
    cache::macvlan_fdb,
    copy::{clone_into, WayIn},
    dispatch::Sender,
    error::Error,
    fdb::{first_port, flood, source_allowed},
    parse::L2Header,
    port::{redirect_to_peer, redirect_to_port, Port},
    stats::count_rx,
    vlan::tag_tc,
};

/// Whether a mode's endpoints send unicast for each other out of the parent, so that it may come back from the
/// switch (vepa: through its hairpin; private: to be refused). A bridge endpoint's frame for another endpoint never
/// leaves the host, so in bridge mode a frame from the wire needs no look at its source.
#[inline(always)]
fn hairpins(mode: MacvlanMode) -> bool {
    mode == MacvlanMode::VEPA || mode == MacvlanMode::PRIVATE
}

/// Frames from the wire, before the stack sees them: the endpoint unicast for it goes straight into (the dispatcher
/// redirects it). Everything that needs a copy (broadcast, multicast, source mode) or the skb's checksum state
/// (frames an endpoint sent that the switch hairpinned back) is left to `parent_ingress` in TC: None.
#[inline(always)]
pub fn parent_xdp(l2: &L2Header, network_id: u32, network: &NetworkConfig) -> Result<Option<Port>, Error> {
    if is_multicast_mac(&l2.dst) {
        return Ok(None);
    }
    let mode = network.macvlan_mode();
    Ok(match mode {
        MacvlanMode::SOURCE => None,
        MacvlanMode::PASSTHRU => first_port(network_id),
        _ => {
            // Unknown unicast is the host's own traffic, as with the kernel driver.
            let Some(entry) = macvlan_fdb(network_id, l2.dst) else { return Ok(None) };
            if hairpins(mode) && macvlan_fdb(network_id, l2.src).is_some() {
                return Ok(None);
            }
            Some(Port::of(&entry))
        }
    })
}

/// Frames from the wire in TC (after XDP passed them): copies of broadcast/multicast to the endpoints the mode
/// allows, hairpinned endpoint frames, and source-mode copies. The original goes on to the host unless it was
/// unicast for an endpoint.
#[inline(always)]
pub fn parent_ingress(ctx: &TcContext, l2: &L2Header, network_id: u32, network: &NetworkConfig) -> Result<i32, Error> {
    let multicast = is_multicast_mac(&l2.dst);
    match network.macvlan_mode() {
        MacvlanMode::SOURCE => {
            if source_allowed(network_id, l2.src) {
                if multicast {
                    flood(ctx, network_id, 0);
                } else if let Some(entry) = macvlan_fdb(network_id, l2.dst) {
                    // The ring: one way for a source's unicast, so it keeps its order.
                    if clone_into(ctx.as_ptr().cast(), entry.ifindex, WayIn::Ring) {
                        count_rx(entry.slot, ctx.len());
                    }
                }
            }
            Ok(TC_ACT_OK as i32)
        }
        MacvlanMode::PASSTHRU => {
            if multicast {
                flood(ctx, network_id, 0);
                return Ok(TC_ACT_OK as i32);
            }
            match first_port(network_id) {
                Some(port) => Ok(redirect_to_peer(port, ctx.len())),
                None => Ok(TC_ACT_OK as i32),
            }
        }
        mode => {
            // A frame with a local endpoint's source came back from the switch (hairpin), or was handed to
            // the host by `endpoint_ingress` (host access).
            if multicast {
                match macvlan_fdb(network_id, l2.src) {
                    None => flood(ctx, network_id, 0),
                    // vepa endpoints see each other's broadcast only through the switch; bridge endpoints
                    // already got it on the way out; private ones never do.
                    Some(sender) if mode == MacvlanMode::VEPA => flood(ctx, network_id, sender.ifindex),
                    Some(_) => {}
                }
                return Ok(TC_ACT_OK as i32);
            }
            let Some(entry) = macvlan_fdb(network_id, l2.dst) else { return Ok(TC_ACT_OK as i32) };
            // Unicast from an endpoint is delivered like any other, except between private ones: only private
            // mode needs to know the sender.
            if mode == MacvlanMode::PRIVATE && macvlan_fdb(network_id, l2.src).is_some() {
                return Err(Error::Isolation);
            }
            Ok(redirect_to_peer(Port::of(&entry), ctx.len()))
        }
    }
}

/// The host's own frames leaving the parent, for `--host-access` networks: copies of its broadcast and its
/// unicast for endpoints go into the endpoints instead of only onto the wire.
#[inline(always)]
pub fn parent_egress(ctx: &TcContext, l2: &L2Header, network_id: u32, network: &NetworkConfig) -> Result<i32, Error> {
    if !network.flags.contains(NetworkFlags::HOST_ACCESS) {
        return Ok(TC_ACT_OK as i32);
    }
    // Endpoint frames that `endpoint_ingress` sent out of the parent were already delivered locally.
    if macvlan_fdb(network_id, l2.src).is_some() {
        return Ok(TC_ACT_OK as i32);
    }
    if is_multicast_mac(&l2.dst) {
        flood(ctx, network_id, 0);
        return Ok(TC_ACT_OK as i32);
    }
    match macvlan_fdb(network_id, l2.dst) {
        Some(entry) => Ok(redirect_to_port(ctx, Port::of(&entry))),
        None => Ok(TC_ACT_OK as i32),
    }
}

/// Everything an endpoint of a macvlan network sends.
#[inline(always)]
pub fn endpoint_egress(ctx: &TcContext, l2: &L2Header, sender: &Sender) -> Result<i32, Error> {
    let &Sender { port, network_id, network } = sender;
    let host_access = network.flags.contains(NetworkFlags::HOST_ACCESS);
    if is_multicast_mac(&l2.dst) {
        if network.macvlan_mode() == MacvlanMode::BRIDGE {
            sender.flood(ctx);
        }
        if host_access {
            // The result is not checked: a host that cannot take the copy still lets the wire have it.
            let _ = ctx.clone_redirect(network.parent_ifindex, BPF_F_INGRESS as u64);
        }
        return out_of_parent(ctx, l2, network);
    }
    if host_access && l2.dst == network.parent_mac {
        // SAFETY: a plain helper call.
        return Ok(unsafe { bpf_redirect(network.parent_ifindex, BPF_F_INGRESS as u64) } as i32);
    }
    if network.macvlan_mode() == MacvlanMode::BRIDGE {
        if let Some(entry) = macvlan_fdb(network_id, l2.dst) {
            if entry.ifindex != port {
                return Ok(redirect_to_peer(Port::of(&entry), ctx.len()));
            }
        }
    }
    out_of_parent(ctx, l2, network)
}

/// Onto the wire, tagged with the network's VLAN if it has one.
#[inline(always)]
fn out_of_parent(ctx: &TcContext, l2: &L2Header, network: &NetworkConfig) -> Result<i32, Error> {
    tag_tc(ctx, l2, network)?;
    // SAFETY: a plain helper call.
    Ok(unsafe { bpf_redirect(network.parent_ifindex, 0) as i32 })
}
