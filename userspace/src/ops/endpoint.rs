//! Endpoints: add and delete. An endpoint is a veth pair (see `driver::port`); a failed add is rolled back.
use datapath_common::MAX_FLOOD_PORTS;
use ipnet::IpNet;

use crate::{
    driver::{ipvlan, port},
    error::{Error, Result, Setting},
    host::{netlink::Netlink, netns::Netns},
    instance::Instance,
    mac::Mac,
    model::{Endpoint, EndpointRef, HostPort, MacvlanMode, Network, VethNames},
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
    let store = instance.store()?;
    let mut state = store.load()?;
    let network = state.network(&request.network)?.clone();
    validate_ifname(&request.at.ifname)?;
    let netns = Netns::open(&request.at.netns)?;
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
    for address in &request.addresses {
        validate_address(address)?;
    }
    let mac = if network.ipvlan().is_some() {
        if request.mac.is_some() {
            return Err(Error::MacNotForIpvlan);
        }
        if request.addresses.is_empty() {
            return Err(Error::Missing { setting: Setting::Address, driver: network.driver_kind() });
        }
        for address in &request.addresses {
            if let Some(owner) = ipvlan::owner_of(&state, network.parent.ifindex, &ipvlan::host_net(address.addr())) {
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
        mac
    };
    let inside = Netlink::connect_in(&netns)?;
    if inside.device(&request.at.ifname).await?.is_some() {
        return Err(Error::DeviceExists { device: request.at.ifname, netns: request.at.netns });
    }

    let names = VethNames::for_port(network.id, network.next_port);
    let mut endpoint = Endpoint {
        at: request.at,
        mac,
        addresses: request.addresses,
        host: HostPort { ifname: names.host.clone(), ifindex: 0 },
    };
    if let Err(error) = port::attach(instance, &network, &netns, &inside, &names, &mut endpoint).await {
        rollback(instance, &network, &endpoint, &names).await;
        return Err(error);
    }
    let stored = state.network_mut(&network.name)?;
    stored.endpoints.push(endpoint.clone());
    stored.next_port += 1;
    store.save(&state)?;
    Ok(endpoint)
}

/// Deletes the endpoint (and, on ipvlan, the routes behind it); returns what it was.
pub async fn del(instance: &Instance, network_name: &str, at: &EndpointRef) -> Result<Endpoint> {
    let store = instance.store()?;
    let mut state = store.load()?;
    let network = state.network_mut(network_name)?;
    let endpoint = network.require_endpoint(at)?.clone();
    network.endpoints.retain(|e| e.at != *at);
    port::teardown(instance, network, &endpoint).await?;
    if let crate::model::DriverSettings::Ipvlan(settings) = &mut network.driver {
        settings.routes.retain(|route| route.endpoint != *at);
    }
    store.save(&state)?;
    Ok(endpoint)
}

/// Undoes a failed add: what `port::attach` made, and the endpoint's end if it never left the host namespace under
/// its transit name.
async fn rollback(instance: &Instance, network: &Network, endpoint: &Endpoint, names: &VethNames) {
    let _ = port::teardown(instance, network, endpoint).await;
    if let Ok(Some(transit)) = instance.netlink.device(&names.transit).await {
        let _ = instance.netlink.delete(transit.index).await;
    }
}

/// An endpoint address: a unicast address with its prefix length.
fn validate_address(address: &IpNet) -> Result<()> {
    let ip = address.addr();
    let reason = if ip.is_unspecified() {
        "the unspecified address"
    } else if ip.is_multicast() {
        "a multicast address"
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
