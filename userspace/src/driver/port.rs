//! An endpoint on the host and in the datapath: a veth pair, one end moved into the endpoint's namespace (named like
//! the kernel's macvlan child, e.g. eth0, with the endpoint's MAC and addresses), the other end in the host namespace
//! carrying the endpoint's TC program and serving as its port in the maps.
use std::net::IpAddr;

use aya::programs::TcAttachType;
use datapath_common::{map_names, program_names, EndpointConfig, FdbEntry, FloodList, MacKey, MAX_FLOOD_PORTS};
use ipnet::IpNet;

use crate::{
    datapath::{
        loader::{detach, link_names, Datapath},
        maps::Tables,
    },
    driver::ipvlan,
    error::{Error, Result},
    host::{
        ethtool::{self, Feature},
        netlink::Netlink,
        netns::Netns,
        querier, sysctl,
    },
    instance::Instance,
    model::{Endpoint, IpvlanMode, Network, ParentHook, VethNames},
};

/// The namespace the endpoint's end goes into, with netlink there; `None`: it stays in the host namespace, handed over
/// to a container runtime (`Placement::HandedOver`).
pub type Inside<'a> = Option<(&'a Netns, &'a Netlink)>;

/// Makes the veth pair named `names`, configures the endpoint's end, fills the maps and attaches the programs.
/// `endpoint.host.ifindex` is filled in as soon as the pair exists, so that a failure later can be undone by
/// [`teardown`]. `network.endpoints` must not hold the endpoint yet.
pub async fn attach(
    instance: &Instance,
    network: &Network,
    inside: Inside<'_>,
    names: &VethNames,
    endpoint: &mut Endpoint,
) -> Result<()> {
    let host = &instance.netlink;
    host.create_veth(&names.host, &names.transit).await?;
    endpoint.host.ifindex = host.require_device(&names.host).await?.index;
    // The host-side end is plumbing, not an interface of the host: no IPv6 on it, or the host's DAD, MLD reports and
    // router solicitations from its link-local address reach the endpoint (the kernel's macvlan and vxlan endpoints
    // have no such peer).
    sysctl::disable_ipv6(&names.host)?;
    queue_copies_per_endpoint(&names.host, &names.transit, network.hook)?;
    let transit = host.require_device(&names.transit).await?;
    host.set_mac(transit.index, endpoint.mac).await?;
    let Some((netns, inside)) = inside else {
        // What survives the runtime's move into its namespace (device flags and MTU; not sysctls or addresses, which
        // the runtime sets from what the driver answered) is set here; the runtime brings the interface up.
        if network.ipvlan().is_some_and(|settings| settings.mode == IpvlanMode::L3) {
            host.set_noarp(transit.index).await?;
        }
        set_vxlan_mtu(host, network, endpoint, host, transit.index).await?;
        fill_maps(&Tables::new(&instance.pins), network, endpoint)?;
        attach_programs(instance, network, None, transit.index, endpoint)?;
        return host.set_up(endpoint.host.ifindex).await;
    };
    host.move_to(transit.index, netns).await?;

    let peer = inside.require_device(&names.transit).await?;
    inside.rename(peer.index, &endpoint.at.ifname).await?;
    if let Some(settings) = network.ipvlan() {
        ipvlan::prepare_interface(netns, &endpoint.at.ifname)?;
        if settings.mode == IpvlanMode::L3 {
            inside.set_noarp(peer.index).await?;
        }
    }
    set_vxlan_mtu(host, network, endpoint, inside, peer.index).await?;
    for address in &endpoint.addresses {
        inside.add_address(peer.index, *address).await?;
    }
    {
        let _inside = netns.enter()?;
        sysctl::announce(&endpoint.at.ifname)?;
    }
    // The datapath first, then the endpoint's end comes up: its announcement (and its first frames) must find the
    // path to the LAN already there.
    fill_maps(&Tables::new(&instance.pins), network, endpoint)?;
    attach_programs(instance, network, Some(netns), peer.index, endpoint)?;
    host.set_up(endpoint.host.ifindex).await?;
    inside.set_up(peer.index).await?;
    for route in default_routes(network, &endpoint.addresses) {
        match route {
            DefaultRoute::OnLink { ipv6 } => inside.add_default_route(peer.index, ipv6).await?,
            DefaultRoute::Via(gateway) => inside.add_default_route_via(peer.index, gateway).await?,
        }
    }
    Ok(())
}

/// An endpoint's default route of one address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultRoute {
    /// On the endpoint's own link (`default dev eth0`): an ipvlan l3 endpoint is NOARP, the parent routes for it.
    OnLink { ipv6: bool },
    /// Through its subnet's gateway.
    Via(IpAddr),
}

/// The default routes an endpoint with `addresses` gets on `network`, one per address family it has an address of:
/// on an ipvlan l3 network on its own link, elsewhere through the gateway of its subnet of that family (none
/// without one). The library sets them on the endpoints it makes; a container runtime's front end hands them on.
pub fn default_routes(network: &Network, addresses: &[IpNet]) -> Vec<DefaultRoute> {
    let has = |ipv6: bool| addresses.iter().any(|address| address.addr().is_ipv6() == ipv6);
    match network.ipvlan() {
        Some(settings) if settings.mode == IpvlanMode::L3 => {
            [false, true].into_iter().filter(|&ipv6| has(ipv6)).map(|ipv6| DefaultRoute::OnLink { ipv6 }).collect()
        }
        _ => network
            .subnets
            .iter()
            .filter_map(|subnet| subnet.gateway)
            .filter(|gateway| has(gateway.is_ipv6()))
            .map(DefaultRoute::Via)
            .collect(),
    }
}

/// On VXLAN, both ends get the parent's MTU less the outer headers: VXLAN never fragments. `peer` is an ifindex of
/// `inside`'s namespace.
async fn set_vxlan_mtu(
    host: &Netlink,
    network: &Network,
    endpoint: &Endpoint,
    inside: &Netlink,
    peer: u32,
) -> Result<()> {
    if network.vxlan().is_none() {
        return Ok(());
    }
    let parent_mtu = host.require_device(&network.parent.name).await?.mtu;
    let mtu = parent_mtu.saturating_sub(datapath_common::VXLAN_OVERHEAD as u32);
    inside.set_mtu(peer, mtu).await?;
    host.set_mtu(endpoint.host.ifindex, mtu).await
}

/// Gives the copies of a broadcast (`bpf_clone_redirect` into `host`, the host-side veth's transmit path) both ways
/// into the endpoint (`datapath_common::QUEUE_MAPPING_TO_BACKLOG`, datapath-ebpf's `copy`): the CPU's backlog,
/// cheap but shared and bounded by
/// `net.core.netdev_max_backlog`, and the endpoint's own veth receive ring, drained by its own NAPI. The veth takes
/// the ring when the endpoint's end has NAPI (GRO on, or an XDP program), the frame is fit for GRO (a frame from
/// outside is only when the sending end has no TSO) and the transmit queue is one the endpoint's end receives on:
/// the host-side end gets two transmit queues, the endpoint's end keeps one receive queue, and the datapath picks
/// the queue per copy.
///
/// Only one way, the ring, with the xdp hook, and with one CPU (a veth has a queue per possible CPU): a veth takes
/// an XDP program only while it receives on as many queues as its peer transmits on (else ENOSPC, "XDP expects
/// number of rx queues not less than peer tx queues"), and the xdp hook puts one on the endpoint's end. For the same
/// reason an XDP program of the endpoint's own on its interface (native mode) needs `ethtool -L IFNAME rx 2` there
/// first, after which every copy takes the ring.
///
/// What else goes through that transmit path is the host's own traffic to the endpoint (`--host-access`): its TCP
/// is segmented before the veth (no TSO) and merged again by GRO when it takes the ring. Unicast from the wire and
/// from other endpoints skips it (`bpf_redirect_peer`, XDP redirect).
pub fn queue_copies_per_endpoint(host: &str, endpoint_end: &str, hook: ParentHook) -> Result<()> {
    set_host_end(host, hook)?;
    set_endpoint_end(endpoint_end)
}

/// The host-side end's part of [`queue_copies_per_endpoint`] (on an interface of the calling thread's namespace,
/// like the other part, for callers whose two ends are in two namespaces already). Returns whether its transmit
/// queues were other than this (an endpoint an older xlan made).
pub fn set_host_end(host: &str, hook: ParentHook) -> Result<bool> {
    ethtool::set(host, Feature::Tso, false)?;
    let ways_in = match hook {
        ParentHook::Tc => 2,
        ParentHook::Xdp => 1,
    };
    ethtool::set_tx_queues(host, ways_in)
}

/// The endpoint's end's part of [`queue_copies_per_endpoint`]: GRO on, so that its veth receives through NAPI.
pub fn set_endpoint_end(endpoint_end: &str) -> Result<()> {
    ethtool::set(endpoint_end, Feature::Gro, true)
}

/// Attaches the endpoint's programs: its TC program on the host-side veth and, with the xdp parent hook, the XDP
/// pass stub on its own end (`peer`, an ifindex of `netns`; `None`: of the host namespace, where a handed-over end
/// waits for its runtime, and the stub moves with the device).
pub fn attach_programs(
    instance: &Instance,
    network: &Network,
    netns: Option<&Netns>,
    peer: u32,
    endpoint: &Endpoint,
) -> Result<()> {
    let mut datapath = Datapath::load(&instance.pins)?;
    let port = endpoint.host.ifindex;
    if network.hook == ParentHook::Xdp {
        // Native XDP redirect into a veth is dropped unless the receiving end has an XDP program.
        let _in_endpoint_netns = netns.map(Netns::enter).transpose()?;
        datapath.attach_xdp(program_names::XDP_PASS, peer, &link_names::port(port, "xdp"))?;
    }
    datapath.attach_tc(
        program_names::ENDPOINT_INGRESS,
        &endpoint.host.ifname,
        TcAttachType::Ingress,
        &link_names::port(port, "tc"),
    )
}

/// The endpoint's entries in the maps: its port, its counters (a slot of its own, zeroed when new), its MAC (or, on ipvlan,
/// its addresses) and the network's flood list with it. `network.endpoints` must not hold the endpoint yet.
pub fn fill_maps(tables: &Tables<'_>, network: &Network, endpoint: &Endpoint) -> Result<()> {
    let port = endpoint.host.ifindex;
    // Filled again (a repair, an upgrade), the endpoint keeps its slot and what it counted; a new slot may have counted
    // for an endpoint before it, and starts at zero.
    let kept = tables.endpoint(port)?.map(|config| config.slot);
    let slot = match kept {
        Some(slot) => slot,
        None => tables.free_slot()?,
    };
    tables.put_endpoint(port, EndpointConfig { network_id: network.id, mac: endpoint.mac.0, _pad: [0; 2], slot })?;
    if kept.is_none() {
        tables.reset_stats(port)?;
    }
    tables.put_port(port)?;
    if network.ipvlan().is_some() {
        for address in &endpoint.addresses {
            ipvlan::learn_prefix(tables, network, &ipvlan::host_net(address.addr()), port)?;
        }
    } else {
        tables.put_fdb(MacKey::new(network.id, endpoint.mac.0), FdbEntry::local(port).with_slot(slot))?;
    }
    let ports: Vec<u32> = network.ports().chain([port]).collect();
    tables.put_flood(network.id, flood_list(tables, &ports)?)
}

/// Asks the endpoint for its multicast groups (`host::querier`), all of them or only whether it is in `group`: its
/// reports give the datapath the memberships it did not see being made. Nothing to ask when its host side is gone
/// or down (it could not receive either).
pub async fn query_groups(instance: &Instance, endpoint: &Endpoint, group: Option<IpAddr>) -> Result<()> {
    let Some(device) = instance.netlink.device(&endpoint.host.ifname).await? else { return Ok(()) };
    match querier::query(device.index, device.mac.map_or([0; 6], |mac| mac.0), group) {
        Err(error) if error.raw_os_error() != Some(libc::ENETDOWN) => {
            Err(Error::io(format!("send multicast queries into {}", endpoint.host.ifname), error))
        }
        _ => Ok(()),
    }
}

/// Takes the endpoint in `port` out of its multicast groups and deletes its network's groups left without members
/// (`program_names::GROUPS_FORGET`). Returns the deleted groups: a report that joined one of them just as it was
/// deleted is lost with it, so the caller asks the network's other endpoints about them again. Nothing is run when
/// the endpoint is in no group and no group of the network is empty already (the forget would change nothing).
pub fn forget_groups(instance: &Instance, tables: &Tables<'_>, port: u32) -> Result<Vec<IpAddr>> {
    // A broken instance's maps may be gone; one from before groups were kept (until `xlan upgrade` makes the map)
    // has none.
    if !tables.exist() || !instance.pins.map(map_names::GROUPS).exists() {
        return Ok(Vec::new());
    }
    let Some(config) = tables.endpoint(port)? else { return Ok(Vec::new()) };
    let groups = tables.groups(config.network_id)?;
    let deleted: Vec<IpAddr> =
        groups.iter().filter(|(_, members)| members.none_but(config.slot)).map(|(key, _)| key.address()).collect();
    if deleted.is_empty() && !groups.iter().any(|(_, members)| members.has(config.slot)) {
        return Ok(deleted);
    }
    Datapath::load(&instance.pins)?.forget_group_member(config.slot, config.network_id)?;
    Ok(deleted)
}

/// Removes what `attach` made for `endpoint`, and its multicast memberships; `network.endpoints` must no longer
/// hold it (its flood list is rewritten from them). Idempotent, so it also serves as the rollback of a failed add.
pub async fn teardown(instance: &Instance, network: &Network, endpoint: &Endpoint) -> Result<()> {
    remove(instance, network, endpoint, Memberships::Forget).await
}

/// `teardown` of an endpoint whose network goes next: its groups go with the network
/// (`Tables::delete_network_groups`), so the endpoint's are not forgotten one by one.
pub async fn teardown_in_going_network(instance: &Instance, network: &Network, endpoint: &Endpoint) -> Result<()> {
    remove(instance, network, endpoint, Memberships::GoWithNetwork).await
}

/// What becomes of a removed endpoint's multicast memberships.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Memberships {
    Forget,
    GoWithNetwork,
}

async fn remove(instance: &Instance, network: &Network, endpoint: &Endpoint, memberships: Memberships) -> Result<()> {
    let tables = Tables::new(&instance.pins);
    // The device the endpoint's name leads to: only that one is the endpoint's (an ifindex may have been reused).
    let device = instance.netlink.device(&endpoint.host.ifname).await?.map(|d| d.index);
    let port = match endpoint.host.ifindex {
        0 => device,
        index => Some(index),
    };
    let Some(port) = port else { return Ok(()) };
    // Its program first: no report of it can set its slot's bytes again once they are forgotten.
    detach(&instance.pins, &link_names::port(port, "tc"))?;
    detach(&instance.pins, &link_names::port(port, "xdp"))?;
    if tables.exist() {
        let others: Vec<u32> = network.ports().filter(|p| *p != port).collect();
        tables.put_flood(network.id, flood_list(&tables, &others)?)?;
    }
    if let Some(settings) = network.ipvlan() {
        for address in &endpoint.addresses {
            ipvlan::forget_prefix(&tables, network, &ipvlan::host_net(address.addr()))?;
        }
        for route in settings.routes.iter().filter(|r| r.endpoint == endpoint.at) {
            ipvlan::forget_prefix(&tables, network, &route.prefix)?;
        }
    } else if !network.endpoints.iter().any(|e| e.mac == endpoint.mac && e.host.ifindex != port) {
        // Only this endpoint's own FDB entry: a rolled-back add must not remove another's.
        tables.delete_fdb(MacKey::new(network.id, endpoint.mac.0))?;
    }
    // Before its entry goes: the entry holds its slot.
    let deleted_groups = match memberships {
        Memberships::Forget => forget_groups(instance, &tables, port)?,
        Memberships::GoWithNetwork => Vec::new(),
    };
    tables.delete_endpoint(port)?;
    tables.delete_port(port)?;
    // Deleting one end of a veth pair deletes the other, the endpoint's interface, too.
    if device == Some(port) {
        instance.netlink.delete(port).await?;
    }
    // Last, and best effort: the endpoint is gone whatever the others answer. An endpoint not asked misses a group
    // only if its join raced the group's deletion, and it reports again when it next joins or is queried.
    for group in deleted_groups {
        for other in network.endpoints.iter().filter(|other| other.host.ifindex != port) {
            let _ = query_groups(instance, other, Some(group)).await;
        }
    }
    Ok(())
}

/// Undoes an add that did not complete (a failure, or a command killed in the middle): what `attach` made, and the
/// endpoint's end if it never left the host namespace under its transit name. `names` were free when the add began,
/// so devices of those names are the add's own.
pub async fn undo_add(instance: &Instance, network: &Network, endpoint: &Endpoint, names: &VethNames) -> Result<()> {
    teardown(instance, network, endpoint).await?;
    if let Some(transit) = instance.netlink.device(&names.transit).await? {
        instance.netlink.delete(transit.index).await?;
    }
    Ok(())
}

/// The flood list of a network's ports (at most `MAX_FLOOD_PORTS`; `endpoint add` refuses more), with the counters'
/// slots their entries in the maps have.
pub fn flood_list(tables: &Tables<'_>, ports: &[u32]) -> Result<FloodList> {
    let mut list = FloodList::default();
    let slots = tables.slots(ports)?;
    for ((ifindex, slot), (port, port_slot)) in
        list.ifindex.iter_mut().zip(list.slots.iter_mut()).zip(ports.iter().zip(slots))
    {
        *ifindex = *port;
        *slot = port_slot;
    }
    list.count = ports.len().min(MAX_FLOOD_PORTS) as u32;
    Ok(list)
}
