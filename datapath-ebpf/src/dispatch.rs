//! Which datapath a frame belongs to: a parent may carry one macvlan or ipvlan network and any number of
//! VXLAN networks; an endpoint belongs to exactly one network. Each entry returns what to do; `main.rs` maps errors.
use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_OK},
    programs::{TcContext, XdpContext},
};
use datapath_common::{NetworkConfig, NetworkKind};

use crate::{
    cache::{parent_config, SenderConfig},
    error::Error,
    fdb::{ipvlan_of_parent, macvlan_of_parent},
    ipvlan, macvlan,
    parse::{parse_l2, Packet},
    stats::count_tx,
    vxlan,
};

#[inline(always)]
pub fn parent_xdp(ctx: &XdpContext) -> Result<u32, Error> {
    let l2 = parse_l2(ctx)?;
    let parent = ctx.device();
    let Some(config) = parent_config(parent) else { return Ok(xdp_action::XDP_PASS) };
    if config.vxlan_networks > 0 {
        vxlan::snoop_arp(ctx, &l2);
        if let Some(action) = vxlan::decap_xdp(ctx, &l2, parent)? {
            return Ok(action);
        }
    }
    if let Some((_, network)) = ipvlan_of_parent(config) {
        return ipvlan::parent_xdp(ctx, &l2, parent, network);
    }
    match macvlan_of_parent(config) {
        Some((network_id, network)) => macvlan::parent_xdp(ctx, &l2, network_id, network),
        None => Ok(xdp_action::XDP_PASS),
    }
}

#[inline(always)]
pub fn parent_ingress(ctx: &TcContext) -> Result<i32, Error> {
    let l2 = parse_l2(ctx)?;
    let parent = ctx.device();
    let Some(config) = parent_config(parent) else { return Ok(TC_ACT_OK as i32) };
    if config.vxlan_networks > 0 {
        vxlan::snoop_arp(ctx, &l2);
        if let Some(verdict) = vxlan::decap_tc(ctx, &l2, parent)? {
            return Ok(verdict);
        }
    }
    if let Some((network_id, network)) = ipvlan_of_parent(config) {
        return ipvlan::parent_ingress(ctx, &l2, network_id, parent, network);
    }
    match macvlan_of_parent(config) {
        Some((network_id, network)) => macvlan::parent_ingress(ctx, &l2, network_id, network),
        None => Ok(TC_ACT_OK as i32),
    }
}

#[inline(always)]
pub fn parent_egress(ctx: &TcContext) -> Result<i32, Error> {
    let l2 = parse_l2(ctx)?;
    let parent = ctx.device();
    let Some(config) = parent_config(parent) else { return Ok(TC_ACT_OK as i32) };
    match macvlan_of_parent(config) {
        Some((network_id, network)) => macvlan::parent_egress(ctx, &l2, network_id, network),
        None => Ok(TC_ACT_OK as i32),
    }
}

/// The endpoint a frame came from, and its network.
#[derive(Clone, Copy)]
pub struct Sender {
    /// Host-side veth of the endpoint.
    pub port: u32,
    pub network_id: u32,
    pub network: NetworkConfig,
}

/// Everything an endpoint sends (tcx ingress on its host-side veth, so GSO and checksum state survive).
/// `config` is the endpoint of `port` and its network, which `main.rs` looked up to count drops against it.
#[inline(always)]
pub fn endpoint_ingress(ctx: &TcContext, port: u32, config: Option<&SenderConfig>) -> Result<i32, Error> {
    let Some(&SenderConfig { endpoint, network }) = config else { return Err(Error::UnknownPort) };
    count_tx(endpoint.slot, ctx.len());
    let l2 = parse_l2(ctx)?;
    let sender = Sender { port, network_id: endpoint.network_id, network };
    match network.kind {
        NetworkKind::MACVLAN => macvlan::endpoint_egress(ctx, &l2, &sender),
        NetworkKind::VXLAN => vxlan::endpoint_egress(ctx, &l2, &sender),
        NetworkKind::IPVLAN => ipvlan::endpoint_egress(ctx, &l2, &sender),
        _ => Err(Error::UnknownKind),
    }
}
