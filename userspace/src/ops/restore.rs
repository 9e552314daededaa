//! Bringing an instance back after a reboot (/run and bpffs are empty again, the endpoints' veths are gone): the
//! configuration every change also wrote under /var/lib/xlan (`Instance::config_dir`) is made again through the
//! ordinary operations — networks, their allowed source MACs, static FDB entries and flood lists, endpoints whose
//! namespace exists again (with their MACs and addresses), and their routes.
use serde::Serialize;

use crate::{
    error::{Error, Result},
    host::netns::Netns,
    instance::Instance,
    ipam::IpamRequest,
    model::{DriverSettings, EndpointRef, State},
    ops::{
        endpoint::{self, AddEndpoint},
        fdb,
        macaddr::{self, MacaddrChange},
        network::{self, CreateNetwork, DriverRequest, VxlanRequest},
        route,
    },
    session::Session,
    store,
};

/// What came back, and what did not (with why, in the library's words).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Restored {
    pub networks: Vec<String>,
    pub endpoints: Vec<EndpointRef>,
    pub skipped: Vec<Skipped>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub network: String,
    pub endpoint: EndpointRef,
    pub reason: String,
}

/// Restores the instance's configuration. Refused while the instance has networks (it is running: the doctor checks
/// it); nothing to do without a configuration.
pub async fn restore(instance: &Instance) -> Result<Restored> {
    let running = Session::open_unchecked(instance).await?.state;
    if let Some(network) = running.networks.first() {
        return Err(Error::NetworkExists(network.name.clone()));
    }
    // The operations below rewrite the configuration as they go: restore from a copy, which an interrupted restore
    // finds again.
    let config_path = instance.config_path();
    let copy = config_path.with_extension("json.restoring");
    let config = match store::load_config(&copy)? {
        Some(config) => config,
        None => match store::load_config(&config_path)? {
            Some(config) => {
                std::fs::copy(&config_path, &copy).map_err(|e| Error::io(format!("copy {}", copy.display()), e))?;
                config
            }
            None => return Ok(Restored::default()),
        },
    };
    let restored = bring_back(instance, &config).await?;
    let _ = std::fs::remove_file(&copy);
    Ok(restored)
}

async fn bring_back(instance: &Instance, config: &State) -> Result<Restored> {
    let mut restored = Restored::default();
    for wanted in &config.networks {
        let driver = match &wanted.driver {
            DriverSettings::Macvlan(m) => DriverRequest::Macvlan { mode: m.mode, host_access: m.host_access },
            DriverSettings::Ipvlan(i) => DriverRequest::Ipvlan { mode: i.mode, flag: i.flag },
            DriverSettings::Vxlan(v) => DriverRequest::Vxlan(VxlanRequest {
                vni: v.vni,
                local: Some(v.local),
                flood: v.flood.clone(),
                dstport: Some(v.dstport),
                learning: Some(v.learning),
                ageing: Some(v.ageing),
            }),
        };
        let request = CreateNetwork {
            name: wanted.name.clone(),
            parent: wanted.parent.name.clone(),
            vlan: wanted.parent.vlan,
            hook: Some(wanted.hook),
            driver,
            ipam: IpamRequest {
                subnets: wanted.subnets.iter().map(|s| s.subnet).collect(),
                gateways: wanted.subnets.iter().filter_map(|s| s.gateway).collect(),
                ip_ranges: wanted.subnets.iter().filter_map(|s| s.ip_range).collect(),
                aux_addresses: wanted.subnets.iter().flat_map(|s| s.aux_addresses.clone()).collect(),
            },
        };
        network::create(instance, request).await?;
        restored.networks.push(wanted.name.clone());
        match &wanted.driver {
            DriverSettings::Macvlan(m) => {
                for mac in &m.source_macs {
                    macaddr::change(instance, &wanted.name, MacaddrChange::Add(*mac)).await?;
                }
            }
            DriverSettings::Vxlan(v) => {
                // The flood list came back with the network (remotes given at create time and appended later are one
                // list); the static entries come back here.
                for entry in &v.fdb {
                    fdb::add(instance, &wanted.name, entry.mac, entry.dst).await?;
                }
            }
            DriverSettings::Ipvlan(_) => {}
        }
        for endpoint in &wanted.endpoints {
            let at = endpoint.at.clone();
            if endpoint.placement.handed_over().is_some() {
                // A container runtime's endpoint: its container is gone with the reboot, and the runtime makes a new
                // endpoint when it starts the container again.
                let reason = Error::HandedOver.to_string();
                restored.skipped.push(Skipped { network: wanted.name.clone(), endpoint: at, reason });
                continue;
            }
            if let Err(missing) = Netns::locate(&at.netns) {
                let reason = missing.to_string();
                restored.skipped.push(Skipped { network: wanted.name.clone(), endpoint: at, reason });
                continue;
            }
            let mac = if wanted.ipvlan().is_some() { None } else { Some(endpoint.mac) };
            let request = AddEndpoint {
                network: wanted.name.clone(),
                at: at.clone(),
                mac,
                addresses: endpoint.addresses.clone(),
            };
            match endpoint::add_for_container(instance, request, endpoint.container_id.clone()).await {
                Ok(_) => restored.endpoints.push(at),
                Err(error) => restored.skipped.push(Skipped {
                    network: wanted.name.clone(),
                    endpoint: at,
                    reason: error.to_string(),
                }),
            }
        }
        if let Some(settings) = wanted.ipvlan() {
            for wanted_route in settings.routes.iter().filter(|r| restored.endpoints.contains(&r.endpoint)) {
                route::add(instance, &wanted.name, wanted_route.prefix, wanted_route.endpoint.clone()).await?;
            }
        }
    }
    Ok(restored)
}
