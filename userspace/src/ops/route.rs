//! Prefixes routed to an ipvlan endpoint (in l3 mode, the networks behind it): add, delete, show.
use ipnet::IpNet;

use crate::{
    datapath::maps::Tables,
    driver::ipvlan,
    error::{Error, Result},
    instance::Instance,
    model::{DriverSettings, EndpointRef, IpRoute, Ipvlan, Network},
    session::Session,
};

/// Routes `prefix` to the endpoint at `endpoint`.
pub async fn add(instance: &Instance, network_name: &str, prefix: IpNet, endpoint: EndpointRef) -> Result<IpRoute> {
    let mut session = Session::open(instance).await?;
    let state = &mut session.state;
    // As `ip route`: a prefix with host bits set is a mistake, not a route.
    if prefix.trunc() != prefix {
        return Err(Error::InvalidPrefix { given: prefix, network: prefix.trunc() });
    }
    let network = state.network(network_name)?;
    ipvlan_of(network)?;
    let port = network.require_endpoint(&endpoint)?.host.ifindex;
    if let Some(owner) = ipvlan::owner_of(state, network, &prefix) {
        return Err(Error::AddressInUse { address: prefix.to_string(), parent: network.parent.name.clone(), owner });
    }
    ipvlan::learn_prefix(&Tables::new(&instance.pins), network, &prefix, port)?;
    let route = IpRoute { prefix, endpoint };
    if let DriverSettings::Ipvlan(settings) = &mut state.network_mut(network_name)?.driver {
        settings.routes.push(route.clone());
    }
    session.save()?;
    Ok(route)
}

/// Removes the route to `prefix`; returns what it was.
pub async fn del(instance: &Instance, network_name: &str, prefix: IpNet) -> Result<IpRoute> {
    let mut session = Session::open(instance).await?;
    let state = &mut session.state;
    let network = state.network(network_name)?.clone();
    let Some(route) = ipvlan_of(&network)?.routes.iter().find(|r| r.prefix == prefix).cloned() else {
        return Err(Error::RouteNotFound { prefix, network: network.name });
    };
    ipvlan::forget_prefix(&Tables::new(&instance.pins), &network, &route.prefix)?;
    if let DriverSettings::Ipvlan(settings) = &mut state.network_mut(network_name)?.driver {
        settings.routes.retain(|r| r.prefix != prefix);
    }
    session.save()?;
    Ok(route)
}

/// The network's routes.
pub async fn show(instance: &Instance, network_name: &str) -> Result<Vec<IpRoute>> {
    let session = Session::open(instance).await?;
    let state = &session.state;
    Ok(ipvlan_of(state.network(network_name)?)?.routes.clone())
}

fn ipvlan_of(network: &Network) -> Result<&Ipvlan> {
    network.ipvlan().ok_or(Error::NotIpvlan { network: network.name.clone(), driver: network.driver_kind() })
}
