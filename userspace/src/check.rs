//! The state against the pinned datapath and the host's devices: every disagreement as a typed finding. Normal
//! commands refuse to work on an instance with findings (they would succeed while nothing forwards, or hand out a
//! network id a live network still uses); the doctor reports them and repairs what can be repaired.
use std::{
    collections::{HashMap, HashSet},
    fmt,
};

use serde::Serialize;

use crate::{
    datapath::{loader::link_names, maps::Tables},
    driver,
    error::Result,
    instance::Instance,
    model::{EndpointRef, State},
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// The state file cannot be read (truncated, garbled, or of an unknown schema).
    StateUnreadable {
        path: String,
        problem: String,
    },
    /// The state has networks, but the instance's pinned maps are gone: nothing forwards.
    MapsMissing,
    /// The datapath holds a network the state does not know: a lost state directory, or another one for this
    /// namespace. Its id must not be handed out again.
    UnknownNetwork {
        id: u32,
    },
    /// A network of the state is missing from the datapath, or configured differently there.
    NetworkNotInDatapath {
        network: String,
    },
    NetworkConfigDiffers {
        network: String,
    },
    /// Entries of the network's record (routes, allowed source MACs, static FDB entries, the flood list) are missing
    /// from the datapath or point elsewhere.
    EntriesMissing {
        network: String,
        entries: Vec<String>,
    },
    /// The parent is gone.
    ParentMissing {
        network: String,
        parent: String,
    },
    /// A device of the parent's name exists, but it is not the one the network was made on (deleted and re-created).
    ParentReplaced {
        network: String,
        parent: String,
        ifindex: u32,
        now: u32,
    },
    /// The parent's programs are not attached.
    ParentProgramsMissing {
        network: String,
        parent: String,
    },
    /// An endpoint's host-side veth is gone (its namespace was deleted, or the device was).
    EndpointDeviceMissing {
        network: String,
        endpoint: EndpointRef,
        device: String,
    },
    /// An endpoint's port is missing from the datapath or its program is not attached.
    EndpointNotInDatapath {
        network: String,
        endpoint: EndpointRef,
    },
    /// The veth pair that spreads broadcast copies over CPUs (`driver::spreader`) is missing or not in order.
    SpreaderMissing {
        problem: String,
    },
    /// The datapath holds a port no endpoint of the state has.
    UnknownPort {
        port: u32,
        network_id: u32,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::StateUnreadable { path, problem } => write!(f, "the state file {path} cannot be read: {problem}"),
            Finding::MapsMissing => write!(f, "the datapath's maps are gone while the state has networks"),
            Finding::UnknownNetwork { id } => write!(f, "network id {id} is in the datapath but not in the state"),
            Finding::NetworkNotInDatapath { network } => write!(f, "network \"{network}\" is not in the datapath"),
            Finding::NetworkConfigDiffers { network } => {
                write!(f, "network \"{network}\" is configured differently in the datapath")
            }
            Finding::EntriesMissing { network, entries } => {
                write!(f, "network \"{network}\" lacks in the datapath: {}", entries.join(", "))
            }
            Finding::ParentMissing { network, parent } => write!(f, "parent {parent} of network \"{network}\" is gone"),
            Finding::ParentReplaced { network, parent, ifindex, now } => {
                write!(f, "parent {parent} of network \"{network}\" was re-created (ifindex {ifindex}, now {now})")
            }
            Finding::ParentProgramsMissing { network, parent } => {
                write!(f, "parent {parent} of network \"{network}\" has no programs attached")
            }
            Finding::EndpointDeviceMissing { network, endpoint, device } => {
                write!(f, "endpoint {endpoint} of network \"{network}\" lost its host-side device {device}")
            }
            Finding::EndpointNotInDatapath { network, endpoint } => {
                write!(f, "endpoint {endpoint} of network \"{network}\" is not in the datapath")
            }
            Finding::SpreaderMissing { problem } => write!(f, "the broadcast spreader is not in order: {problem}"),
            Finding::UnknownPort { port, network_id } => {
                write!(f, "port {port} (network id {network_id}) is in the datapath but not in the state")
            }
        }
    }
}

/// Every disagreement between `state` and what the instance's pins and the host's devices hold.
pub async fn examine(instance: &Instance, state: &State) -> Result<Vec<Finding>> {
    let tables = Tables::new(&instance.pins);
    let mut findings = Vec::new();
    if !tables.exist() {
        if !state.networks.is_empty() {
            findings.push(Finding::MapsMissing);
        }
        return Ok(findings);
    }
    let in_datapath: HashMap<u32, _> = tables.networks()?.into_iter().collect();
    let ports: HashMap<u32, _> = tables.endpoints()?.into_iter().collect();
    let devices = instance.netlink.device_names().await?;
    let index_of = |name: &str| devices.iter().find(|(_, n)| n.as_str() == name).map(|(index, _)| *index);

    let mut ids: Vec<u32> =
        in_datapath.keys().copied().filter(|id| state.networks.iter().all(|n| n.id != *id)).collect();
    ids.sort_unstable();
    findings.extend(ids.into_iter().map(|id| Finding::UnknownNetwork { id }));
    for network in &state.networks {
        let name = network.name.clone();
        match in_datapath.get(&network.id) {
            None => findings.push(Finding::NetworkNotInDatapath { network: name.clone() }),
            Some(config) if *config != driver::network_config(network) => {
                findings.push(Finding::NetworkConfigDiffers { network: name.clone() })
            }
            Some(_) => {
                let entries = driver::missing_entries(&tables, network)?;
                if !entries.is_empty() {
                    findings.push(Finding::EntriesMissing { network: name.clone(), entries });
                }
            }
        }
        let parent = &network.parent;
        if devices.get(&parent.ifindex) != Some(&parent.name) {
            findings.push(match index_of(&parent.name) {
                Some(now) => Finding::ParentReplaced {
                    network: name.clone(),
                    parent: parent.name.clone(),
                    ifindex: parent.ifindex,
                    now,
                },
                None => Finding::ParentMissing { network: name.clone(), parent: parent.name.clone() },
            });
        } else if !instance.pins.link(&link_names::parent(parent.ifindex, "ingress")).exists() {
            findings.push(Finding::ParentProgramsMissing { network: name.clone(), parent: parent.name.clone() });
        }
        for endpoint in &network.endpoints {
            let port = endpoint.host.ifindex;
            if devices.get(&port) != Some(&endpoint.host.ifname) {
                findings.push(Finding::EndpointDeviceMissing {
                    network: name.clone(),
                    endpoint: endpoint.at.clone(),
                    device: endpoint.host.ifname.clone(),
                });
                continue;
            }
            let attached = instance.pins.link(&link_names::port(port, "tc")).exists();
            if !attached || ports.get(&port).is_none_or(|config| config.network_id != network.id) {
                findings.push(Finding::EndpointNotInDatapath { network: name.clone(), endpoint: endpoint.at.clone() });
            }
        }
    }
    if !state.networks.is_empty() {
        if let Some(problem) = driver::spreader::problem(instance, &tables).await? {
            findings.push(Finding::SpreaderMissing { problem });
        }
    }
    // A set: with thousands of endpoints, a search through every network's ports per port is millions of steps.
    let known: HashSet<u32> = state.networks.iter().flat_map(|n| n.ports()).collect();
    let mut unknown: Vec<_> = ports
        .iter()
        .filter(|(port, _)| !known.contains(*port))
        .map(|(port, config)| Finding::UnknownPort { port: *port, network_id: config.network_id })
        .collect();
    unknown.sort_by_key(|finding| format!("{finding}"));
    findings.extend(unknown);
    Ok(findings)
}
