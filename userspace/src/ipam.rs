//! IP address management in the words of `docker network create`: a network's subnets (one IPv4, one IPv6 at most),
//! each with an optional gateway, an optional range to allocate from and named auxiliary addresses, and the
//! allocation of endpoint addresses from them. Pure code over the network's own record (its endpoints' addresses
//! are the allocations), so it is unit-tested without a host; callers hold the state's lock.
use std::net::IpAddr;

use ipnet::{IpAddrRange, IpNet, Ipv4AddrRange, Ipv6AddrRange};

use crate::{
    error::{Error, Result},
    model::{AuxAddress, Network, Subnet},
};

/// The IPAM options of a network to create, as given: gateways, ranges and aux addresses pair with the subnet they
/// fall in, as Docker pairs them.
#[derive(Clone, Debug, Default)]
pub struct IpamRequest {
    pub subnets: Vec<IpNet>,
    pub gateways: Vec<IpAddr>,
    pub ip_ranges: Vec<IpNet>,
    pub aux_addresses: Vec<AuxAddress>,
}

/// The subnets a request describes, each with its gateway, range and aux addresses.
pub fn plan(request: &IpamRequest) -> Result<Vec<Subnet>> {
    let mut subnets: Vec<Subnet> = Vec::new();
    for given in &request.subnets {
        let subnet = given.trunc();
        if subnet != *given {
            return Err(Error::InvalidPrefix { given: *given, network: subnet });
        }
        if let Some(first) = subnets.iter().find(|s| s.subnet.addr().is_ipv4() == subnet.addr().is_ipv4()) {
            return Err(Error::IpamTwice { what: "subnet", subnet: first.subnet });
        }
        subnets.push(Subnet { subnet, gateway: None, ip_range: None, aux_addresses: Vec::new() });
    }
    for gateway in &request.gateways {
        let subnet = owner_of(&mut subnets, *gateway, "gateway")?;
        if subnet.gateway.replace(*gateway).is_some() {
            return Err(Error::IpamTwice { what: "gateway", subnet: subnet.subnet });
        }
    }
    for range in &request.ip_ranges {
        let outside = || Error::OutsideSubnets { what: "ip-range", address: range.to_string() };
        let subnet = subnets.iter_mut().find(|s| s.subnet.contains(range)).ok_or_else(outside)?;
        if subnet.ip_range.replace(range.trunc()).is_some() {
            return Err(Error::IpamTwice { what: "ip-range", subnet: subnet.subnet });
        }
    }
    for aux in &request.aux_addresses {
        owner_of(&mut subnets, aux.address, "aux address")?.aux_addresses.push(aux.clone());
    }
    Ok(subnets)
}

/// The subnet `ip` falls in, for the option `what`.
fn owner_of<'a>(subnets: &'a mut [Subnet], ip: IpAddr, what: &'static str) -> Result<&'a mut Subnet> {
    subnets.iter_mut().find(|s| s.subnet.contains(&ip)).ok_or(Error::OutsideSubnets { what, address: ip.to_string() })
}

/// Whether `subnets` overlap any of `others` (networks on one parent and VLAN must not share addresses).
pub fn overlapping<'a>(subnets: &[Subnet], others: impl IntoIterator<Item = &'a Subnet>) -> Option<(IpNet, IpNet)> {
    let others: Vec<&Subnet> = others.into_iter().collect();
    subnets.iter().find_map(|mine| {
        others
            .iter()
            .find(|other| {
                mine.subnet.contains(&other.subnet.network()) || other.subnet.contains(&mine.subnet.network())
            })
            .map(|other| (mine.subnet, other.subnet))
    })
}

/// The addresses of an endpoint to add: the ones asked for (each inside a subnet, and free), and for every subnet
/// of a family none was asked for, the next free address.
pub fn assign(network: &Network, asked: &[IpNet]) -> Result<Vec<IpNet>> {
    let in_use = |ip: IpAddr| network.endpoints.iter().flat_map(|e| &e.addresses).any(|owned| owned.addr() == ip);
    let mut addresses = Vec::new();
    for address in asked {
        match network.subnets.iter().find(|s| s.subnet.contains(&address.addr())) {
            Some(subnet) => {
                if let Some(why) =
                    reserved(subnet, address.addr()).or_else(|| in_use(address.addr()).then_some("in use"))
                {
                    return Err(Error::AddressTaken { address: address.addr(), why, subnet: subnet.subnet });
                }
                // The subnet's prefix, whatever was written after the address.
                addresses.push(with_prefix(address.addr(), subnet.subnet.prefix_len()));
            }
            None if network.subnets.is_empty() => addresses.push(*address),
            None => return Err(Error::OutsideSubnets { what: "address", address: address.to_string() }),
        }
    }
    for subnet in &network.subnets {
        let family_given = asked.iter().any(|a| a.addr().is_ipv4() == subnet.subnet.addr().is_ipv4());
        if !family_given {
            let ip = next_free(subnet, &in_use).ok_or(Error::SubnetExhausted(subnet.subnet))?;
            addresses.push(with_prefix(ip, subnet.subnet.prefix_len()));
        }
    }
    Ok(addresses)
}

/// The first address of the subnet's range (or the subnet) that is neither reserved nor in use.
pub fn next_free(subnet: &Subnet, in_use: &dyn Fn(IpAddr) -> bool) -> Option<IpAddr> {
    // Every address of the range: only the subnet's own ends are reserved, not the range's.
    let pool = match subnet.ip_range.unwrap_or(subnet.subnet) {
        IpNet::V4(range) => IpAddrRange::from(Ipv4AddrRange::new(range.network(), range.broadcast())),
        IpNet::V6(range) => IpAddrRange::from(Ipv6AddrRange::new(range.network(), range.broadcast())),
    };
    pool.into_iter().find(|ip| reserved(subnet, *ip).is_none() && !in_use(*ip))
}

/// Why `ip` may not be an endpoint's in `subnet`, if it may not.
fn reserved(subnet: &Subnet, ip: IpAddr) -> Option<&'static str> {
    // The all-zeros address is IPv4's network address and IPv6's subnet-router anycast address; IPv4 has a
    // broadcast address too. /31 and /32 (RFC 3021), /127 and /128 (RFC 6164) keep none.
    let (zeros_reserved, broadcast_reserved) = match subnet.subnet {
        IpNet::V4(net) => (net.prefix_len() < 31, net.prefix_len() < 31),
        IpNet::V6(net) => (net.prefix_len() < 127, false),
    };
    if zeros_reserved && ip == subnet.subnet.network() {
        Some("the network address")
    } else if broadcast_reserved && ip == subnet.subnet.broadcast() {
        Some("the broadcast address")
    } else if subnet.gateway == Some(ip) {
        Some("the gateway")
    } else if subnet.aux_addresses.iter().any(|aux| aux.address == ip) {
        Some("an aux address")
    } else {
        None
    }
}

fn with_prefix(ip: IpAddr, prefix: u8) -> IpNet {
    // The prefix is a subnet's, so it fits the address's family.
    IpNet::new(ip, prefix).unwrap_or_else(|_| IpNet::from(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        mac::Mac,
        model::{DriverSettings, Endpoint, EndpointRef, HostPort, Macvlan, MacvlanMode, Parent, ParentHook},
    };

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn network(subnets: Vec<Subnet>, used: &[&str]) -> Network {
        let endpoints = used
            .iter()
            .enumerate()
            .map(|(n, address)| Endpoint {
                at: EndpointRef { netns: format!("ns{n}"), ifname: "eth0".into() },
                mac: Mac([2, 0, 0, 0, 0, n as u8 + 1]),
                addresses: vec![net(address)],
                host: HostPort { ifname: format!("xl1p{n}"), ifindex: 10 + n as u32 },
                container_id: None,
                placement: Default::default(),
            })
            .collect();
        Network {
            name: "n".into(),
            id: 1,
            parent: Parent { name: "eth0".into(), ifindex: 2, mac: Mac([2, 0, 0, 0, 0, 0xfe]), vlan: None },
            hook: ParentHook::Tc,
            driver: DriverSettings::Macvlan(Macvlan {
                mode: MacvlanMode::Bridge,
                host_access: false,
                source_macs: vec![],
            }),
            endpoints,
            next_port: used.len() as u32,
            subnets,
        }
    }

    fn docker_like() -> Vec<Subnet> {
        plan(&IpamRequest {
            subnets: vec![net("172.16.10.0/24"), net("fd10::/64")],
            gateways: vec![ip("172.16.10.1"), ip("fd10::1")],
            ip_ranges: vec![net("172.16.10.128/25")],
            aux_addresses: vec![AuxAddress { name: "router".into(), address: ip("172.16.10.129") }],
        })
        .unwrap()
    }

    #[test]
    fn plans_pair_options_with_their_subnet() {
        let subnets = docker_like();
        assert_eq!(subnets[0].gateway, Some(ip("172.16.10.1")));
        assert_eq!(subnets[0].ip_range, Some(net("172.16.10.128/25")));
        assert_eq!(subnets[0].aux_addresses[0].address, ip("172.16.10.129"));
        assert_eq!((subnets[1].gateway, subnets[1].ip_range), (Some(ip("fd10::1")), None));
    }

    #[test]
    fn plans_refuse_what_docker_refuses() {
        let base = || IpamRequest { subnets: vec![net("10.1.0.0/24")], ..Default::default() };
        let cases = [
            ("gateway outside", IpamRequest { gateways: vec![ip("10.2.0.1")], ..base() }),
            ("range outside", IpamRequest { ip_ranges: vec![net("10.1.1.0/25")], ..base() }),
            ("range wider than the subnet", IpamRequest { ip_ranges: vec![net("10.1.0.0/16")], ..base() }),
            (
                "aux outside",
                IpamRequest { aux_addresses: vec![AuxAddress { name: "a".into(), address: ip("10.9.0.1") }], ..base() },
            ),
            ("two IPv4 subnets", IpamRequest { subnets: vec![net("10.1.0.0/24"), net("10.3.0.0/24")], ..base() }),
            ("host bits", IpamRequest { subnets: vec![net("10.1.0.5/24")], ..base() }),
        ];
        for (what, request) in cases {
            assert!(plan(&request).is_err(), "{what}");
        }
    }

    #[test]
    fn allocates_from_the_range_skipping_reserved_and_used() {
        let n = network(docker_like(), &["172.16.10.128/24"]);
        // .128 used, .129 aux: the next is .130; IPv6 from the subnet, skipping the gateway ::1.
        assert_eq!(assign(&n, &[]).unwrap(), [net("172.16.10.130/24"), net("fd10::2/64")]);
    }

    #[test]
    fn an_explicit_address_is_checked_and_the_other_family_allocated() {
        let n = network(docker_like(), &["172.16.10.128/24"]);
        assert_eq!(assign(&n, &[net("172.16.10.7/32")]).unwrap(), [net("172.16.10.7/24"), net("fd10::2/64")]);
        for taken in ["172.16.10.128/24", "172.16.10.1/24", "172.16.10.129/24", "172.16.10.0/24", "172.16.10.255/24"] {
            assert!(assign(&n, &[net(taken)]).is_err(), "{taken}");
        }
        assert!(assign(&n, &[net("10.0.0.5/24")]).is_err(), "outside the subnets");
    }

    #[test]
    fn a_released_address_is_handed_out_again_and_exhaustion_is_an_error() {
        let tiny = plan(&IpamRequest { subnets: vec![net("10.5.0.0/30")], ..Default::default() }).unwrap();
        let n = network(tiny.clone(), &["10.5.0.1/30"]);
        assert_eq!(assign(&n, &[]).unwrap(), [net("10.5.0.2/30")]);
        let full = network(tiny.clone(), &["10.5.0.1/30", "10.5.0.2/30"]);
        assert!(assign(&full, &[]).is_err());
        let released = network(tiny, &["10.5.0.2/30"]);
        assert_eq!(assign(&released, &[]).unwrap(), [net("10.5.0.1/30")]);
    }

    #[test]
    fn without_subnets_addresses_are_taken_as_given() {
        let n = network(Vec::new(), &[]);
        assert_eq!(assign(&n, &[net("10.0.0.2/24")]).unwrap(), [net("10.0.0.2/24")]);
        assert!(assign(&n, &[]).unwrap().is_empty());
    }

    #[test]
    fn overlaps_are_found_both_ways() {
        let wide = plan(&IpamRequest { subnets: vec![net("10.0.0.0/16")], ..Default::default() }).unwrap();
        let narrow = plan(&IpamRequest { subnets: vec![net("10.0.5.0/24")], ..Default::default() }).unwrap();
        assert!(overlapping(&wide, &narrow).is_some() && overlapping(&narrow, &wide).is_some());
        let apart = plan(&IpamRequest { subnets: vec![net("10.1.0.0/16")], ..Default::default() }).unwrap();
        assert!(overlapping(&wide, &apart).is_none());
    }
}
