//! Which datapath a frame belongs to: a parent may carry one macvlan or ipvlan network and any number of
//! VXLAN networks untagged, and one macvlan or ipvlan network on each 802.1Q VLAN; an endpoint belongs to exactly one
//! network. Each entry returns what to do; `main.rs` maps errors.
use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_OK},
    programs::{TcContext, XdpContext},
};
use datapath_common::{NetworkConfig, NetworkKind, ParentConfig, ParentKey};

use crate::{
    cache::{parent_config, SenderConfig},
    error::Error,
    fdb::{flood, ipvlan_of_parent, macvlan_of_parent},
    groups, ipvlan, macvlan,
    parse::{parse_l2, L2Header, Packet},
    port::{redirect_xdp, Port},
    stats::count_tx,
    vlan, vxlan,
};

/// The parent's entry for the VLAN a frame is on (0: untagged).
#[inline(always)]
fn segment(parent: u32, l2: &L2Header) -> Option<&'static ParentConfig> {
    parent_config(ParentKey { ifindex: parent, vlan_id: l2.vlan_id })
}

#[inline(always)]
pub fn parent_xdp(ctx: &XdpContext) -> Result<u32, Error> {
    let l2 = parse_l2(ctx)?;
    let parent = ctx.device();
    // A VLAN no network is on, like a parent no network is on, is the host's.
    let Some(config) = segment(parent, &l2) else { return Ok(xdp_action::XDP_PASS) };
    if l2.vlan_id != 0 {
        // The tag comes off only once the frame is known to be an endpoint's: what is passed on keeps it.
        return match endpoint_of_frame_xdp(ctx, &l2, config)? {
            Some(port) => {
                vlan::pop_xdp(ctx)?;
                redirect_xdp(ctx, port)
            }
            None => Ok(xdp_action::XDP_PASS),
        };
    }
    if config.vlan_networks > 0 {
        // It may be tagged after all, its tag in metadata XDP cannot read (a veth whose peer sent with VLAN
        // offload, a NIC that strips tags): TC, which reads it, decides.
        return Ok(xdp_action::XDP_PASS);
    }
    if config.vxlan_networks > 0 {
        vxlan::snoop_arp(ctx, &l2);
        if let Some(action) = vxlan::decap_xdp(ctx, &l2, parent)? {
            return Ok(action);
        }
    }
    match endpoint_of_frame_xdp(ctx, &l2, config)? {
        Some(port) => redirect_xdp(ctx, port),
        None => Ok(xdp_action::XDP_PASS),
    }
}

/// The endpoint XDP can hand a frame of the parent's macvlan or ipvlan network straight to, if any.
#[inline(always)]
fn endpoint_of_frame_xdp(ctx: &XdpContext, l2: &L2Header, config: &ParentConfig) -> Result<Option<Port>, Error> {
    if let Some((network_id, network)) = ipvlan_of_parent(config) {
        return ipvlan::parent_xdp(ctx, l2, network_id, network);
    }
    match macvlan_of_parent(config) {
        Some((network_id, network)) => macvlan::parent_xdp(l2, network_id, network),
        None => Ok(None),
    }
}

#[inline(always)]
pub fn parent_ingress(ctx: &TcContext) -> Result<i32, Error> {
    let l2 = parse_l2(ctx)?;
    let parent = ctx.device();
    let Some(config) = segment(parent, &l2) else { return Ok(TC_ACT_OK as i32) };
    if l2.vlan_id != 0 {
        let untagged = vlan::untag_tc(ctx)?;
        let verdict = network_ingress(ctx, &untagged, config)?;
        return vlan::retag_passed(ctx, &l2, verdict);
    }
    if config.vxlan_networks > 0 {
        vxlan::snoop_arp(ctx, &l2);
        if let Some(verdict) = vxlan::decap_tc(ctx, &l2, parent)? {
            return Ok(verdict);
        }
    }
    network_ingress(ctx, &l2, config)
}

/// A frame of the parent's macvlan or ipvlan network (on the VLAN, untagged by now) in TC.
#[inline(always)]
fn network_ingress(ctx: &TcContext, l2: &L2Header, config: &ParentConfig) -> Result<i32, Error> {
    if let Some((network_id, network)) = ipvlan_of_parent(config) {
        return ipvlan::parent_ingress(ctx, l2, network_id, network);
    }
    match macvlan_of_parent(config) {
        Some((network_id, network)) => macvlan::parent_ingress(ctx, l2, network_id, network),
        None => Ok(TC_ACT_OK as i32),
    }
}

#[inline(always)]
pub fn parent_egress(ctx: &TcContext) -> Result<i32, Error> {
    let l2 = parse_l2(ctx)?;
    let parent = ctx.device();
    // Frames endpoints of a VLAN network sent carry its tag by now, and find its entry (which has no host access).
    let Some(config) = segment(parent, &l2) else { return Ok(TC_ACT_OK as i32) };
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
    /// This CPU's cached copy (`cache::sender_config`), read in place: a copy of a struct with byte arrays in it is
    /// made a byte at a time.
    pub network: &'static NetworkConfig,
}

impl Sender {
    /// Copies the endpoint's broadcast, multicast or unknown unicast to the network's other ports.
    #[inline(always)]
    pub fn flood(&self, ctx: &TcContext) {
        flood(ctx, self.network_id, self.port);
    }
}

/// Everything an endpoint sends (tcx ingress on its host-side veth, so GSO and checksum state survive).
/// `config` is the endpoint of `port` and its network, which `main.rs` looked up to count drops against it.
#[inline(always)]
pub fn endpoint_ingress(ctx: &TcContext, port: u32, config: Option<&'static SenderConfig>) -> Result<i32, Error> {
    let Some(SenderConfig { endpoint, network }) = config else { return Err(Error::UnknownPort) };
    count_tx(endpoint.slot, ctx.len());
    let l2 = parse_l2(ctx)?;
    if let Some(report) = groups::find_report(ctx, &l2) {
        groups::record(ctx, &report, endpoint.network_id, endpoint.slot);
    }
    let sender = Sender { port, network_id: endpoint.network_id, network };
    match network.kind {
        NetworkKind::MACVLAN => macvlan::endpoint_egress(ctx, &l2, &sender),
        NetworkKind::VXLAN => vxlan::endpoint_egress(ctx, &l2, &sender),
        NetworkKind::IPVLAN => ipvlan::endpoint_egress(ctx, &l2, &sender),
        _ => Err(Error::UnknownKind),
    }
}
