//! The ipvlan side of a network: endpoint addresses and routes in the datapath's LPM trie (one owner per address on
//! a parent), and what an endpoint's interface needs (the parent's MAC, no link-local address — every endpoint shares
//! the MAC, so the EUI-64 ones would collide — and in l3 mode NOARP with default routes).
use std::net::IpAddr;

use aya::maps::lpm_trie::Key;
use datapath_common::{v4_mapped, IpEndpoint, IpKey, HOST_PORT};
use ipnet::IpNet;

use crate::{
    datapath::maps::Tables,
    error::{AddressOwner, Result},
    host::{netns::Netns, sysctl},
    model::{Ipvlan, Network, State},
};

/// The LPM-trie key of a prefix in the network (host bits cleared).
pub fn prefix_key(network_id: u32, prefix: &IpNet) -> Key<IpKey> {
    let (addr, bits) = match prefix.trunc() {
        IpNet::V4(net) => (v4_mapped(net.addr().octets()), IpKey::V4_MAPPED_BITS + u32::from(net.prefix_len())),
        IpNet::V6(net) => (net.addr().octets(), u32::from(net.prefix_len())),
    };
    Key::new(IpKey::NETWORK_BITS + bits, IpKey::new(network_id, addr))
}

/// The host route of one address (/32 or /128).
pub fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

/// Who already owns `prefix` (as an endpoint address or a route, or the host's own address) on the network's parent
/// and VLAN (another VLAN is another LAN: its addresses are its own).
pub fn owner_of(state: &State, on: &Network, prefix: &IpNet) -> Option<AddressOwner> {
    state.on_segment(on.parent.ifindex, on.parent.vlan_id()).find_map(|network| {
        let settings = network.ipvlan()?;
        if settings.host_addresses.iter().any(|host| prefix.addr() == *host || prefix.contains(host)) {
            return Some(AddressOwner::Host);
        }
        let by_endpoint =
            network.endpoints.iter().flat_map(|e| &e.addresses).any(|owned| owned.addr() == prefix.addr());
        let by_route = settings.routes.iter().any(|route| route.prefix == *prefix);
        (by_endpoint || by_route).then(|| AddressOwner::Network(network.name.clone()))
    })
}

pub fn learn_prefix(tables: &Tables<'_>, network: &Network, prefix: &IpNet, port: u32) -> Result<()> {
    tables.put_ip(prefix_key(network.id, prefix), IpEndpoint { port, network_id: network.id })
}

pub fn forget_prefix(tables: &Tables<'_>, network: &Network, prefix: &IpNet) -> Result<()> {
    tables.delete_ip(prefix_key(network.id, prefix))
}

/// Marks the host's own addresses on the parent in the trie: the datapath leaves them to the host and keeps
/// endpoints from them.
pub fn fill_maps(tables: &Tables<'_>, network: &Network, settings: &Ipvlan) -> Result<()> {
    for ip in &settings.host_addresses {
        learn_prefix(tables, network, &host_net(*ip), HOST_PORT)?;
    }
    Ok(())
}

/// Removes the network's routes and host addresses from the trie (endpoints remove their own).
pub fn teardown(tables: &Tables<'_>, network: &Network, settings: &Ipvlan) -> Result<()> {
    for route in &settings.routes {
        forget_prefix(tables, network, &route.prefix)?;
    }
    for ip in &settings.host_addresses {
        forget_prefix(tables, network, &host_net(*ip))?;
    }
    Ok(())
}

/// Makes the endpoint's interface an ipvlan slave before it comes up: no link-local address.
pub fn prepare_interface(netns: &Netns, ifname: &str) -> Result<()> {
    let _inside = netns.enter()?;
    sysctl::no_link_local(ifname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_keys_clear_host_bits_and_map_ipv4() {
        let key = prefix_key(7, &"10.1.2.3/24".parse().unwrap());
        assert_eq!(key.prefix_len(), IpKey::NETWORK_BITS + IpKey::V4_MAPPED_BITS + 24);
        assert_eq!(key.data(), IpKey::new(7, v4_mapped([10, 1, 2, 0])));
        let key = prefix_key(7, &"fd00::1:2/112".parse().unwrap());
        assert_eq!(key.prefix_len(), IpKey::NETWORK_BITS + 112);
        assert_eq!(key.data(), IpKey::new(7, "fd00::1:0".parse::<std::net::Ipv6Addr>().unwrap().octets()));
    }
}
