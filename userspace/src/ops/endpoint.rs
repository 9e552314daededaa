//! Endpoints: add and delete. An endpoint is a veth pair (see `driver::port`); a failed add is rolled back.
use datapath_common::{MAX_ENDPOINTS, MAX_FLOOD_PORTS};
use ipnet::IpNet;

use crate::{
    driver::{ipvlan, port},
    error::{AddressOwner, Error, Result, Setting},
    host::{netlink::Netlink, netns::Netns},
    instance::Instance,
    ipam,
    mac::Mac,
    model::{DriverSettings, Endpoint, EndpointRef, HostPort, MacvlanMode, Pending, Placement, VethNames},
    session::Session,
};

/// An endpoint to add.
#[derive(Clone, Debug)]
pub struct AddEndpoint {
    pub network: String,
    pub at: EndpointRef,
    /// Default: random locally administered (passthru: the parent's MAC, as the kernel; ipvlan: always the parent's).
    pub mac: Option<Mac>,
    pub addresses: Vec<IpNet>,
}

pub async fn add(instance: &Instance, request: AddEndpoint) -> Result<Endpoint> {
    add_placed(instance, request, None, false).await
}

/// Adds an endpoint made for a container (`Endpoint::container_id`), which finds it again by that id.
pub async fn add_for_container(
    instance: &Instance,
    request: AddEndpoint,
    container_id: Option<String>,
) -> Result<Endpoint> {
    add_placed(instance, request, container_id, false).await
}

/// Adds an endpoint whose interface a container runtime moves into its container (Docker's remote driver, in Join):
/// as [`add`], but the endpoint's end stays in the host namespace, down, under the name the result's `placement`
/// gives, with its MAC (and MTU) and without addresses or routes, which the runtime sets. `request.at` is the
/// runtime's name for the endpoint (for Docker: the endpoint id, and the interface name's prefix).
pub async fn add_for_runtime(instance: &Instance, request: AddEndpoint) -> Result<Endpoint> {
    add_placed(instance, request, None, true).await
}

async fn add_placed(
    instance: &Instance,
    request: AddEndpoint,
    container_id: Option<String>,
    for_runtime: bool,
) -> Result<Endpoint> {
    let mut session = Session::open(instance).await?;
    let state = &session.state;
    let network = state.network(&request.network)?.clone();
    validate_ifname(&request.at.ifname)?;
    let netns = if for_runtime { None } else { Some(Netns::locate(&request.at.netns)?) };
    if state.find_endpoint(&request.at).is_some() {
        return Err(Error::EndpointExists {
            network: request.network,
            netns: request.at.netns,
            ifname: request.at.ifname,
        });
    }
    if network.macvlan_mode() == MacvlanMode::Passthru && !network.endpoints.is_empty() {
        return Err(Error::PassthruFull(network.name));
    }
    if network.endpoints.len() >= MAX_FLOOD_PORTS {
        return Err(Error::NetworkFull { network: network.name, max: MAX_FLOOD_PORTS });
    }
    // The maps' capacity, shared by the instance's networks: refused here, in words, rather than by a failed update.
    if state.networks.iter().map(|n| n.endpoints.len()).sum::<usize>() >= MAX_ENDPOINTS as usize {
        return Err(Error::TooManyEndpoints(MAX_ENDPOINTS));
    }
    for address in &request.addresses {
        validate_address(address)?;
    }
    // The addresses asked for, checked against the network's subnets, and the others allocated from them.
    let addresses = ipam::assign(&network, &request.addresses)?;
    let mac = if network.ipvlan().is_some() {
        if request.mac.is_some() {
            return Err(Error::MacNotForIpvlan);
        }
        if addresses.is_empty() {
            return Err(Error::Missing { setting: Setting::Address, driver: network.driver_kind() });
        }
        for address in &addresses {
            if let Some(owner) = ipvlan::owner_of(state, &network, &ipvlan::host_net(address.addr())) {
                return Err(Error::AddressInUse {
                    address: address.addr().to_string(),
                    parent: network.parent.name.clone(),
                    owner,
                });
            }
        }
        // Every ipvlan endpoint has the parent's MAC.
        network.parent.mac
    } else {
        let mac = match request.mac {
            Some(mac) => mac.require_unicast()?,
            // The kernel's passthru macvlan takes over the parent's address.
            None if network.macvlan_mode() == MacvlanMode::Passthru => network.parent.mac,
            None => Mac::random(),
        };
        if network.endpoints.iter().any(|e| e.mac == mac) {
            return Err(Error::MacInUse { mac, network: network.name });
        }
        if mac == network.parent.mac && network.macvlan_mode() != MacvlanMode::Passthru {
            return Err(Error::ParentMac { mac });
        }
        // One LAN, one owner per address (ipvlan checks the whole parent above, with the host's addresses).
        let taken = network.endpoints.iter().flat_map(|e| &e.addresses);
        if let Some(taken) = taken.clone().find(|owned| addresses.iter().any(|a| a.addr() == owned.addr())) {
            return Err(Error::AddressInUse {
                address: taken.addr().to_string(),
                parent: network.parent.name.clone(),
                owner: AddressOwner::Network(network.name.clone()),
            });
        }
        mac
    };
    let inside = match &netns {
        Some(netns) => Some((netns, Netlink::connect_in(netns)?)),
        None => None,
    };
    if let Some((_, inside)) = &inside {
        if inside.device(&request.at.ifname).await?.is_some() {
            return Err(Error::DeviceExists { device: request.at.ifname, netns: request.at.netns });
        }
    }

    // The pair's names must be free: a device of such a name is not this add's to use, nor to delete on rollback.
    let names = VethNames::for_port(network.id, network.next_port);
    for name in [&names.host, &names.transit] {
        if instance.netlink.device(name).await?.is_some() {
            return Err(Error::DeviceExists { device: name.clone(), netns: instance.name.clone() });
        }
    }
    // A handed-over end keeps its transit name: free, checked above, and the runtime's to rename.
    let placement = match for_runtime {
        true => Placement::HandedOver { ifname: names.transit.clone() },
        false => Placement::Netns,
    };
    let host = HostPort { ifname: names.host.clone(), ifindex: 0 };
    let mut endpoint = Endpoint { at: request.at, mac, addresses, host, container_id, placement };
    let pending =
        Pending::AddEndpoint { network: network.name.clone(), endpoint: endpoint.clone(), names: names.clone() };
    session.begin(pending)?;
    let inside = inside.as_ref().map(|(netns, netlink)| (*netns, netlink));
    if let Err(error) = port::attach(instance, &network, inside, &names, &mut endpoint).await {
        // Undone now, or (if that fails too) by the next command, which finds the add still pending.
        if port::undo_add(instance, &network, &endpoint, &names).await.is_ok() {
            session.end()?;
        }
        return Err(error);
    }
    let stored = session.state.network_mut(&network.name)?;
    stored.endpoints.push(endpoint.clone());
    stored.next_port += 1;
    session.end()?;
    Ok(endpoint)
}

/// Deletes the endpoint (and, on ipvlan, the routes behind it); returns what it was.
/// Works on a broken instance too (an endpoint whose namespace is gone, a datapath that disagrees).
pub async fn del(instance: &Instance, network_name: &str, at: &EndpointRef) -> Result<Endpoint> {
    let mut session = Session::open_unchecked(instance).await?;
    let network = session.state.network_mut(network_name)?;
    let endpoint = network.require_endpoint(at)?.clone();
    network.endpoints.retain(|e| e.at != *at);
    // The teardown still sees the routes behind the endpoint (it removes them from the datapath); the state not.
    let without_endpoint = network.clone();
    if let DriverSettings::Ipvlan(settings) = &mut network.driver {
        settings.routes.retain(|route| route.endpoint != *at);
    }
    session.begin(Pending::DeleteEndpoint { network: without_endpoint.clone(), endpoint: endpoint.clone() })?;
    port::teardown(instance, &without_endpoint, &endpoint).await?;
    session.end()?;
    Ok(endpoint)
}

/// An endpoint address: a unicast address of a subnet, neither the subnet's network nor its broadcast address.
fn validate_address(address: &IpNet) -> Result<()> {
    let ip = address.addr();
    // /31 and /32 (RFC 3021) have no network or broadcast address to keep free.
    let has_reserved_ends = matches!(address, IpNet::V4(v4) if v4.prefix_len() < 31);
    let reason = if ip.is_unspecified() {
        "the unspecified address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if address.prefix_len() == 0 {
        "a /0 prefix is no subnet"
    } else if has_reserved_ends && ip == address.network() {
        "the subnet's network address"
    } else if has_reserved_ends && ip == address.broadcast() {
        "the subnet's broadcast address"
    } else {
        return Ok(());
    };
    Err(Error::InvalidAddress { address: address.to_string(), reason })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_addresses_are_unicast_hosts_of_a_subnet() {
        for good in ["10.0.0.2/24", "10.0.0.0/31", "10.0.0.1/31", "10.0.0.7/32", "fd00::/64", "fd00::2/64"] {
            assert!(validate_address(&good.parse().unwrap()).is_ok(), "{good}");
        }
        let bad = [
            ("10.0.0.0/24", "network address"),
            ("10.0.0.255/24", "broadcast address"),
            ("10.0.0.2/0", "/0"),
            ("fd00::2/0", "/0"),
            ("0.0.0.0/8", "unspecified"),
            ("224.0.0.5/24", "multicast"),
            ("ff02::1/64", "multicast"),
        ];
        for (text, why) in bad {
            match validate_address(&text.parse().unwrap()) {
                Err(Error::InvalidAddress { address, reason }) => {
                    assert_eq!(address, text);
                    assert!(reason.contains(why), "{text}: {reason}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
