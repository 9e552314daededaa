//! The ipvlan side of a network: endpoint addresses and routes in the datapath's LPM trie (one owner per
//! address on a parent), what an endpoint's interface needs (the parent's MAC, no link-local address — every
//! endpoint shares the MAC, so the EUI-64 ones would collide — and in l3 mode NOARP with default routes), and
//! `xlan route add|del|show`.
use std::net::IpAddr;

use aya::maps::lpm_trie::Key;
use datapath_common::{v4_mapped, IpEndpoint, IpKey, HOST_PORT};
use serde::Serialize;

use crate::{
    cidr::Cidr,
    error::{Error, Result},
    instance::Instance,
    maps::Tables,
    mode::IpvlanMode,
    netlink::Netlink,
    netns::Netns,
    state::{Endpoint, IpRoute, Ipvlan, Network, State},
};

/// The LPM-trie key of a prefix on the network's parent (host bits cleared).
pub fn prefix_key(parent_ifindex: u32, cidr: &Cidr) -> Key<IpKey> {
    let (addr, bits) = match cidr.ip {
        IpAddr::V4(ip) => (v4_mapped(ip.octets()), IpKey::V4_MAPPED_BITS + cidr.prefix as u32),
        IpAddr::V6(ip) => (ip.octets(), cidr.prefix as u32),
    };
    let mut masked = [0u8; 16];
    for (bit_byte, (out, byte)) in masked.iter_mut().zip(addr).enumerate() {
        let keep = bits.saturating_sub(bit_byte as u32 * 8).min(8);
        *out = if keep == 0 { 0 } else { byte & (0xffu8 << (8 - keep)) };
    }
    Key::new(IpKey::PARENT_BITS + bits, IpKey::new(parent_ifindex, masked))
}

/// The host route of one address (/32 or /128).
pub fn host_cidr(cidr: &Cidr) -> Cidr {
    Cidr { ip: cidr.ip, prefix: if cidr.ip.is_ipv4() { 32 } else { 128 } }
}

/// The name `owner_of` gives the host's own addresses.
const THE_HOST: &str = "the host's own";

/// Who already owns `cidr` (as an endpoint address or a route, or the host's own address) on the parent,
/// over all its ipvlan networks.
pub fn owner_of(state: &State, parent_ifindex: u32, cidr: &Cidr) -> Option<String> {
    state.on_parent(parent_ifindex).filter(|n| n.ipvlan().is_some()).find_map(|network| {
        let by_host = network
            .ipvlan()
            .is_some_and(|settings| host_addresses(settings).any(|host| cidr.ip == host || contains(cidr, host)));
        if by_host {
            return Some(THE_HOST.to_string());
        }
        let by_endpoint = network
            .endpoints
            .iter()
            .any(|e| e.ips.iter().filter_map(|text| text.parse::<Cidr>().ok()).any(|owned| owned.ip == cidr.ip));
        let by_route = network.ipvlan().is_some_and(|settings| {
            settings.routes.iter().filter_map(|r| r.cidr.parse::<Cidr>().ok()).any(|route| route == *cidr)
        });
        (by_endpoint || by_route).then(|| network.name.clone())
    })
}

pub fn learn_prefix(tables: &Tables<'_>, network: &Network, cidr: &Cidr, port: u32) -> Result<()> {
    tables.put_ip(prefix_key(network.parent_ifindex, cidr), IpEndpoint { port, network_id: network.id })
}

pub fn forget_prefix(tables: &Tables<'_>, network: &Network, cidr: &str) -> Result<()> {
    match cidr.parse::<Cidr>() {
        Ok(cidr) => tables.delete_ip(prefix_key(network.parent_ifindex, &cidr)),
        Err(_) => Ok(()),
    }
}

fn host_addresses(settings: &Ipvlan) -> impl Iterator<Item = IpAddr> + '_ {
    settings.host_addresses.iter().filter_map(|text| text.parse().ok())
}

/// True when `ip` lies inside the prefix `cidr`.
fn contains(cidr: &Cidr, ip: IpAddr) -> bool {
    match (cidr.ip, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - cidr.prefix as u32).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - cidr.prefix as u32).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// `cidr` with its host bits cleared.
fn network_of(cidr: &Cidr) -> Cidr {
    let ip = match cidr.ip {
        IpAddr::V4(ip) => {
            let mask = u32::MAX.checked_shl(32 - cidr.prefix as u32).unwrap_or(0);
            IpAddr::V4((u32::from(ip) & mask).into())
        }
        IpAddr::V6(ip) => {
            let mask = u128::MAX.checked_shl(128 - cidr.prefix as u32).unwrap_or(0);
            IpAddr::V6((u128::from(ip) & mask).into())
        }
    };
    Cidr { ip, prefix: cidr.prefix }
}

/// Marks the host's own addresses on the parent in the trie: the datapath leaves them to the host and keeps
/// endpoints from them.
pub fn attach(tables: &Tables<'_>, network: &Network, settings: &Ipvlan) -> Result<()> {
    for ip in host_addresses(settings) {
        let cidr = host_cidr(&Cidr { ip, prefix: 0 });
        tables.put_ip(
            prefix_key(network.parent_ifindex, &cidr),
            IpEndpoint { port: HOST_PORT, network_id: network.id },
        )?;
    }
    Ok(())
}

/// Removes the network's routes and host addresses from the trie (endpoints remove their own).
pub fn teardown(tables: &Tables<'_>, network: &Network, settings: &Ipvlan) -> Result<()> {
    for route in &settings.routes {
        forget_prefix(tables, network, &route.cidr)?;
    }
    for ip in host_addresses(settings) {
        tables.delete_ip(prefix_key(network.parent_ifindex, &host_cidr(&Cidr { ip, prefix: 0 })))?;
    }
    Ok(())
}

/// Makes the endpoint's interface an ipvlan slave: no link-local address (before it comes up), and in l3
/// mode no ARP, with default routes through it once it is up (`after_up`).
pub fn prepare_interface(netns: &Netns, ifname: &str) -> Result<()> {
    let _inside = netns.enter()?;
    // /proc/sys/net belongs to the namespace of the thread that opens it.
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/addr_gen_mode");
    std::fs::write(&path, "1").map_err(|e| Error::io(format!("write {path}"), e))
}

pub async fn after_up(inside: &Netlink, index: u32, settings: &Ipvlan, ips: &[Cidr]) -> Result<()> {
    if settings.mode != IpvlanMode::L3 {
        return Ok(());
    }
    for ipv6 in [false, true] {
        if ips.iter().any(|c| c.ip.is_ipv6() == ipv6) {
            inside.add_default_route(index, ipv6).await?;
        }
    }
    Ok(())
}

/// `xlan route add NETWORK CIDR --endpoint NS`.
pub fn route_add(instance: &Instance, network_name: &str, cidr: &str, netns: &str, ifname: &str) -> Result<()> {
    let store = instance.store()?;
    let mut state = store.load()?;
    let cidr: Cidr = cidr.parse()?;
    // As `ip route`: a prefix with host bits set is a mistake, not a route.
    if network_of(&cidr) != cidr {
        return Err(Error::InvalidPrefix(cidr.to_string(), network_of(&cidr).to_string()));
    }
    let network = state.network(network_name)?;
    ipvlan_of(network)?;
    let endpoint = find_endpoint(network, netns, ifname)?;
    if let Some(owner) = owner_of(&state, network.parent_ifindex, &cidr) {
        return Err(Error::AddressInUse(cidr.to_string(), network.parent.clone(), owner));
    }
    let port = endpoint.host_ifindex;
    learn_prefix(&Tables::new(&instance.pins), network, &cidr, port)?;
    let network = state.network_mut(network_name)?;
    let route = IpRoute { cidr: cidr.to_string(), netns: netns.into(), ifname: ifname.into() };
    network.ipvlan.as_mut().expect("checked above").routes.push(route);
    store.save(&state)
}

/// `xlan route del NETWORK CIDR`.
pub fn route_del(instance: &Instance, network_name: &str, cidr: &str) -> Result<()> {
    let store = instance.store()?;
    let mut state = store.load()?;
    let parsed: Cidr = cidr.parse()?;
    let network = state.network_mut(network_name)?;
    ipvlan_of(network)?;
    let name = network.name.clone();
    let settings = network.ipvlan.as_mut().expect("checked above");
    let Some(position) = settings.routes.iter().position(|r| r.cidr.parse::<Cidr>().ok() == Some(parsed)) else {
        return Err(Error::RouteNotFound(parsed.to_string(), name));
    };
    let route = settings.routes.remove(position);
    forget_prefix(&Tables::new(&instance.pins), network, &route.cidr)?;
    store.save(&state)
}

#[derive(Serialize)]
pub struct RouteRow {
    pub cidr: String,
    pub endpoint: String,
}

/// The network's routes, `ip route`-like or as JSON rows.
pub fn route_show(instance: &Instance, network_name: &str, as_json: bool) -> Result<String> {
    let state = instance.store()?.load()?;
    let network = state.network(network_name)?;
    let rows: Vec<RouteRow> = ipvlan_of(network)?
        .routes
        .iter()
        .map(|r| RouteRow { cidr: r.cidr.clone(), endpoint: format!("{}@{}", r.ifname, r.netns) })
        .collect();
    if as_json {
        return Ok(serde_json::to_string_pretty(&rows).expect("plain data serialises") + "\n");
    }
    Ok(rows.iter().map(|r| format!("{} dev {}\n", r.cidr, r.endpoint)).collect())
}

fn ipvlan_of(network: &Network) -> Result<&Ipvlan> {
    network.ipvlan().ok_or_else(|| Error::NotForDriver("route", network.driver.to_string()))
}

fn find_endpoint<'a>(network: &'a Network, netns: &str, ifname: &str) -> Result<&'a Endpoint> {
    network.endpoints.iter().find(|e| e.netns == netns && e.ifname == ifname).ok_or_else(|| Error::EndpointNotFound {
        network: network.name.clone(),
        netns: netns.into(),
        ifname: ifname.into(),
    })
}
