//! `xlan endpoint add|del`: an endpoint is a veth pair, one end moved into the endpoint's namespace (named
//! like the kernel's macvlan child, e.g. eth0, with the endpoint's MAC and addresses), the other end in the
//! host namespace carrying the endpoint's TC program. A failed add is rolled back.
use aya::programs::TcAttachType;
use datapath_common::{program_names, EndpointConfig, FdbEntry, FloodList, MacKey, MAX_FLOOD_PORTS};

use crate::{
    cidr::Cidr,
    error::{Error, Result},
    instance::Instance,
    ipvlan,
    loader::{detach, Datapath},
    mac::Mac,
    maps::Tables,
    mode::{IpvlanMode, Mode},
    netlink::Netlink,
    netns::Netns,
    state::{Endpoint, Network, ParentHook},
};

pub struct AddRequest {
    pub network: String,
    pub netns: String,
    pub ifname: String,
    pub mac: Option<String>,
    pub ips: Vec<String>,
}

pub async fn add(instance: &Instance, request: AddRequest) -> Result<Endpoint> {
    let store = instance.store()?;
    let mut state = store.load()?;
    let network = state.network(&request.network)?.clone();
    validate_ifname(&request.ifname)?;
    let netns = Netns::open(&request.netns)?;
    if state.find_endpoint(&request.netns, &request.ifname).is_some() {
        return Err(Error::EndpointExists { network: request.network, netns: request.netns, ifname: request.ifname });
    }
    if network.mode == Mode::Passthru && !network.endpoints.is_empty() {
        return Err(Error::PassthruFull(network.name));
    }
    if network.endpoints.len() >= MAX_FLOOD_PORTS {
        return Err(Error::NetworkFull(network.name, MAX_FLOOD_PORTS));
    }
    let ips = request.ips.iter().map(|text| text.parse::<Cidr>()).collect::<Result<Vec<_>>>()?;
    let mac = if network.ipvlan().is_some() {
        if request.mac.is_some() {
            return Err(Error::MacNotForIpvlan);
        }
        if ips.is_empty() {
            return Err(Error::MissingIp);
        }
        for cidr in &ips {
            if let Some(owner) = ipvlan::owner_of(&state, network.parent_ifindex, &ipvlan::host_cidr(cidr)) {
                return Err(Error::AddressInUse(cidr.ip.to_string(), network.parent.clone(), owner));
            }
        }
        // Every ipvlan endpoint has the parent's MAC.
        network.parent_mac
    } else {
        let mac = match &request.mac {
            Some(text) => Mac::parse_unicast(text)?,
            // The kernel's passthru macvlan takes over the parent's address.
            None if network.mode == Mode::Passthru => network.parent_mac,
            None => Mac::random(),
        };
        if network.endpoints.iter().any(|e| e.mac == mac) {
            return Err(Error::MacInUse(mac.to_string(), network.name));
        }
        mac
    };
    let inside = Netlink::connect_in(&netns)?;
    if inside.device(&request.ifname).await?.is_some() {
        return Err(Error::DeviceExists(request.ifname, request.netns));
    }

    let mut endpoint = Endpoint {
        netns: request.netns,
        ifname: request.ifname,
        mac,
        ips: ips.iter().map(Cidr::to_string).collect(),
        host_ifname: format!("xl{}p{}", network.id, network.next_port),
        host_ifindex: 0,
    };
    if let Err(error) = attach(instance, &network, &netns, &inside, &ips, &mut endpoint).await {
        let _ = teardown(instance, &network, &endpoint).await;
        return Err(error);
    }
    let stored = state.network_mut(&network.name)?;
    stored.endpoints.push(endpoint.clone());
    stored.next_port += 1;
    store.save(&state)?;
    Ok(endpoint)
}

pub async fn del(instance: &Instance, network_name: &str, netns: &str, ifname: &str) -> Result<()> {
    let store = instance.store()?;
    let mut state = store.load()?;
    let network = state.network_mut(network_name)?;
    let Some(position) = network.endpoints.iter().position(|e| e.netns == netns && e.ifname == ifname) else {
        return Err(Error::EndpointNotFound {
            network: network_name.into(),
            netns: netns.into(),
            ifname: ifname.into(),
        });
    };
    let endpoint = network.endpoints.remove(position);
    let snapshot = network.clone();
    teardown(instance, &snapshot, &endpoint).await?;
    // Routes behind the endpoint go with it.
    if let Some(settings) = network.ipvlan.as_mut() {
        settings.routes.retain(|r| !(r.netns == endpoint.netns && r.ifname == endpoint.ifname));
    }
    store.save(&state)
}

/// Makes the veth pair, configures the endpoint's end, fills the maps and attaches the programs.
async fn attach(
    instance: &Instance,
    network: &Network,
    netns: &Netns,
    inside: &Netlink,
    ips: &[Cidr],
    endpoint: &mut Endpoint,
) -> Result<()> {
    let host = &instance.netlink;
    // The endpoint's end gets a temporary name: the final one (eth0) may well exist in the host namespace.
    let transit_name = format!("xl{}t{}", network.id, network.next_port);
    host.create_veth(&endpoint.host_ifname, &transit_name).await?;
    endpoint.host_ifindex = host.require_device(&endpoint.host_ifname).await?.index;
    // The host-side end is plumbing, not an interface of the host: no IPv6 on it, or the host's DAD, MLD reports
    // and router solicitations from its link-local address reach the endpoint (the kernel's macvlan and vxlan
    // endpoints have no such peer). Absent when the host has no IPv6 at all.
    let sysctl = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", endpoint.host_ifname);
    if std::path::Path::new(&sysctl).exists() {
        std::fs::write(&sysctl, "1").map_err(|e| Error::io(format!("writing {sysctl}"), e))?;
    }
    let transit = host.require_device(&transit_name).await?;
    host.set_mac(transit.index, endpoint.mac).await?;
    host.move_to(transit.index, netns).await?;

    let peer = inside.require_device(&transit_name).await?;
    inside.rename(peer.index, &endpoint.ifname).await?;
    if let Some(settings) = network.ipvlan() {
        ipvlan::prepare_interface(netns, &endpoint.ifname)?;
        if settings.mode == IpvlanMode::L3 {
            inside.set_noarp(peer.index).await?;
        }
    }
    if network.vxlan().is_some() {
        // Room for the outer headers: VXLAN never fragments.
        let parent_mtu = host.require_device(&network.parent).await?.mtu;
        let mtu = parent_mtu.saturating_sub(datapath_common::VXLAN_OVERHEAD as u32);
        inside.set_mtu(peer.index, mtu).await?;
        host.set_mtu(endpoint.host_ifindex, mtu).await?;
    }
    for cidr in ips {
        inside.add_address(peer.index, cidr.ip, cidr.prefix).await?;
    }
    inside.set_up(peer.index).await?;
    if let Some(settings) = network.ipvlan() {
        ipvlan::after_up(inside, peer.index, settings, ips).await?;
    }

    let mut datapath = Datapath::load(&instance.pins)?;
    if network.parent_hook == ParentHook::Xdp {
        // Native XDP redirect into a veth is dropped unless the receiving end has an XDP program.
        let _in_endpoint_netns = netns.enter()?;
        datapath.attach_xdp(program_names::XDP_PASS, peer.index, &port_link(endpoint.host_ifindex, "xdp"))?;
    }
    let port = endpoint.host_ifindex;
    let tables = Tables::new(&instance.pins);
    tables.reset_stats(port)?;
    tables.put_endpoint(port, EndpointConfig { network_id: network.id, mac: endpoint.mac.0, _pad: [0; 2] })?;
    tables.put_port(port)?;
    if network.ipvlan().is_some() {
        for cidr in ips {
            ipvlan::learn_prefix(&tables, network, &ipvlan::host_cidr(cidr), port)?;
        }
    } else {
        tables.put_fdb(MacKey::new(network.id, endpoint.mac.0), FdbEntry::local(port))?;
    }
    let ports: Vec<u32> = network.endpoints.iter().map(|e| e.host_ifindex).chain([port]).collect();
    tables.put_flood(network.id, flood_list(&ports))?;
    datapath.attach_tc(
        program_names::ENDPOINT_INGRESS,
        &endpoint.host_ifname,
        TcAttachType::Ingress,
        &port_link(port, "tc"),
    )?;
    host.set_up(port).await
}

/// Removes what `attach` made for `endpoint`; `network.endpoints` must no longer hold it (its flood list is
/// rewritten from them). Idempotent, so it also serves as the rollback of a failed add.
pub async fn teardown(instance: &Instance, network: &Network, endpoint: &Endpoint) -> Result<()> {
    let tables = Tables::new(&instance.pins);
    let port = match endpoint.host_ifindex {
        0 => instance.netlink.device(&endpoint.host_ifname).await?.map(|d| d.index),
        index => Some(index),
    };
    if let Some(port) = port {
        detach(&instance.pins, &port_link(port, "tc"))?;
        detach(&instance.pins, &port_link(port, "xdp"))?;
        if tables.exist() {
            let others: Vec<u32> = network.endpoints.iter().map(|e| e.host_ifindex).filter(|p| *p != port).collect();
            tables.put_flood(network.id, flood_list(&others))?;
        }
        let key = MacKey::new(network.id, endpoint.mac.0);
        if network.ipvlan().is_some() {
            for cidr in endpoint.ips.iter().filter_map(|text| text.parse::<Cidr>().ok()) {
                tables.delete_ip(ipvlan::prefix_key(network.parent_ifindex, &ipvlan::host_cidr(&cidr)))?;
            }
            let routes = network.ipvlan().map(|s| s.routes.as_slice()).unwrap_or_default();
            for route in routes.iter().filter(|r| r.netns == endpoint.netns && r.ifname == endpoint.ifname) {
                ipvlan::forget_prefix(&tables, network, &route.cidr)?;
            }
        } else if !network.endpoints.iter().any(|e| e.mac == endpoint.mac && e.host_ifindex != port) {
            // Only this endpoint's own FDB entry: a rolled-back add must not remove another's.
            tables.delete_fdb(key)?;
        }
        tables.delete_endpoint(port)?;
        tables.delete_port(port)?;
        tables.delete_stats(port)?;
        // Deleting one end of a veth pair deletes the other, the endpoint's interface, too.
        instance.netlink.delete(port).await?;
    }
    // A failed add may have left the transit end behind if the pair was made but not found.
    let transit_name = endpoint.host_ifname.replacen('p', "t", 1);
    if let Some(transit) = instance.netlink.device(&transit_name).await? {
        instance.netlink.delete(transit.index).await?;
    }
    Ok(())
}

fn flood_list(ports: &[u32]) -> FloodList {
    let mut list = FloodList::default();
    for (slot, port) in list.ifindex.iter_mut().zip(ports) {
        *slot = *port;
    }
    list.count = ports.len().min(MAX_FLOOD_PORTS) as u32;
    list
}

fn port_link(port: u32, part: &str) -> String {
    format!("port{port}-{part}")
}

fn validate_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidIfname(name.into()))
    }
}
