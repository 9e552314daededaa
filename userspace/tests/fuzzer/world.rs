//! A scenario's configuration as the oracle reads it: the product's model (`xlan::model::Network`s, the same values
//! `Fixture::install` put into the maps) and the ports whose counters the fuzzer watches.
use std::net::IpAddr;

use ipnet::IpNet;
use xlan::model::{DriverSettings, Macvlan, Network, Vxlan};

use super::reference::v4_mapped;

pub struct World {
    pub networks: Vec<Network>,
    /// Every port with counters: the networks' endpoints and ports in no network (frames must never reach those).
    pub ports: Vec<u32>,
    /// The parents (whose transmitted copies the fuzzer watches too).
    pub parents: Vec<u32>,
}

/// Who owns an address in an ipvlan network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Host,
    Port(u32),
}

impl World {
    pub fn network_of_port(&self, port: u32) -> Option<&Network> {
        self.networks.iter().find(|n| n.ports().any(|p| p == port))
    }

    pub fn on_parent(&self, ifindex: u32) -> impl Iterator<Item = &Network> {
        self.networks.iter().filter(move |n| n.parent.ifindex == ifindex)
    }

    pub fn is_parent(&self, ifindex: u32) -> bool {
        self.on_parent(ifindex).next().is_some()
    }

    /// The networks on one LAN segment: VLAN `vlan` of the parent (0: its untagged frames).
    pub fn segment(&self, ifindex: u32, vlan: u16) -> impl Iterator<Item = &Network> {
        self.on_parent(ifindex).filter(move |n| n.parent.vlan_id() == vlan)
    }

    /// Whether networks are on VLANs of the parent.
    pub fn has_vlans(&self, ifindex: u32) -> bool {
        self.on_parent(ifindex).any(|n| n.parent.vlan.is_some())
    }

    pub fn macvlan_on(&self, ifindex: u32, vlan: u16) -> Option<(&Network, &Macvlan)> {
        self.segment(ifindex, vlan).find_map(|n| n.macvlan().map(|s| (n, s)))
    }

    pub fn ipvlan_on(&self, ifindex: u32, vlan: u16) -> Option<&Network> {
        self.segment(ifindex, vlan).find(|n| n.ipvlan().is_some())
    }

    pub fn vxlans(&self) -> impl Iterator<Item = (&Network, &Vxlan)> {
        self.networks.iter().filter_map(|n| n.vxlan().map(|s| (n, s)))
    }

    /// The VXLAN network of this host that a frame with these outer headers is for.
    pub fn vxlan_for(&self, parent: u32, vni: u32, dst_port: u16, outer_dst: [u8; 4]) -> Option<(&Network, &Vxlan)> {
        self.vxlans().find(|(n, s)| {
            n.parent.ifindex == parent
                && s.vni == vni
                && s.dstport == dst_port
                && (outer_dst == s.local.octets() || s.flood.group().is_some_and(|g| g.octets() == outer_dst))
        })
    }

    /// The endpoint of a macvlan or VXLAN network that owns `mac` (its static FDB entry).
    pub fn mac_owner(network: &Network, mac: [u8; 6]) -> Option<u32> {
        network.endpoints.iter().find(|e| e.mac.0 == mac).map(|e| e.host.ifindex)
    }

    /// Longest-prefix match over the addresses, routes and host addresses of an ipvlan network (addresses are per
    /// network: two VLANs of a parent may use the same ones).
    pub fn ip_owner(network: &Network, addr: [u8; 16]) -> Option<Owner> {
        let mut best: Option<(u32, Owner)> = None;
        let mut consider = |prefix: &IpNet, owner: Owner| {
            let (net, bits) = match prefix.trunc() {
                IpNet::V4(v4) => (v4_mapped(&v4.addr().octets()), 96 + u32::from(v4.prefix_len())),
                IpNet::V6(v6) => (v6.addr().octets(), u32::from(v6.prefix_len())),
            };
            let covers = (0..bits as usize).all(|bit| (net[bit / 8] ^ addr[bit / 8]) & (0x80 >> (bit % 8)) == 0);
            if covers && best.is_none_or(|(len, _)| bits > len) {
                best = Some((bits, owner));
            }
        };
        let settings = network.ipvlan()?;
        for host in &settings.host_addresses {
            consider(&IpNet::from(*host), Owner::Host);
        }
        for endpoint in &network.endpoints {
            for address in &endpoint.addresses {
                consider(&IpNet::from(address.addr()), Owner::Port(endpoint.host.ifindex));
            }
        }
        for route in &settings.routes {
            let port = network.endpoint(&route.endpoint).map(|e| e.host.ifindex).expect("route to an endpoint");
            consider(&route.prefix, Owner::Port(port));
        }
        best.map(|(_, owner)| owner)
    }

    /// The port of an endpoint of the ipvlan network that owns `addr`.
    pub fn endpoint_owning(network: &Network, addr: [u8; 16]) -> Option<u32> {
        match Self::ip_owner(network, addr) {
            Some(Owner::Port(port)) => Some(port),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        self.networks
            .iter()
            .map(|n| {
                let what = match &n.driver {
                    DriverSettings::Macvlan(s) => {
                        format!("macvlan {}{}", s.mode, if s.host_access { " host-access" } else { "" })
                    }
                    DriverSettings::Ipvlan(s) => format!("ipvlan {} {}", s.mode, s.flag),
                    DriverSettings::Vxlan(s) => format!("vxlan vni {} port {}", s.vni, s.dstport),
                };
                let ports: Vec<String> = n.ports().map(|p| p.to_string()).collect();
                format!("{} (id {}) on {}: {what}, ports {}", n.name, n.id, n.parent, ports.join(","))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub fn ip_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4_mapped(&v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
    }
}
