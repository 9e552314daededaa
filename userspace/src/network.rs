//! `xlan network create|delete`: a network is a parent interface with the datapath attached and its entries
//! in the instance's maps. A failed create is rolled back; delete removes every device, program, map entry
//! and pin the network made (and the instance's maps with its last network).
use aya::programs::TcAttachType;
use datapath_common::{kind, network_flags, program_names, FloodList, NetworkConfig, MAX_NETWORKS};

use crate::{
    endpoint,
    error::{Error, Result},
    instance::Instance,
    loader::{detach, Datapath},
    maps::Tables,
    mode::Mode,
    state::Network,
};

/// What `network create` asks for.
pub struct CreateRequest {
    pub name: String,
    pub parent: String,
    pub mode: Mode,
    pub host_access: bool,
}

pub async fn create(instance: &Instance, request: CreateRequest) -> Result<Network> {
    let store = instance.store()?;
    let mut state = store.load()?;
    validate_name(&request.name)?;
    if state.network(&request.name).is_ok() {
        return Err(Error::NetworkExists(request.name));
    }
    if request.host_access && !matches!(request.mode, Mode::Bridge | Mode::Private) {
        return Err(Error::HostAccessMode(request.mode.to_string()));
    }
    let parent = instance.netlink.require_device(&request.parent).await?;
    if let Some(owner) = state.networks.iter().find(|n| n.parent_ifindex == parent.index) {
        return Err(Error::ParentInUse(request.parent, owner.name.clone()));
    }
    let network = Network {
        id: state.free_network_id(MAX_NETWORKS)?,
        name: request.name,
        driver: "macvlan".into(),
        mode: request.mode,
        parent: request.parent,
        parent_ifindex: parent.index,
        parent_mac: parent.mac.ok_or_else(|| Error::Netlink("parent has no MAC address".into()))?,
        host_access: request.host_access,
        endpoints: Vec::new(),
        source_macs: Vec::new(),
        next_port: 0,
    };
    if let Err(error) = attach(instance, &network) {
        teardown(instance, &network, state.networks.is_empty());
        return Err(error);
    }
    state.networks.push(network.clone());
    store.save(&state)?;
    Ok(network)
}

pub async fn delete(instance: &Instance, name: &str) -> Result<()> {
    let store = instance.store()?;
    let mut state = store.load()?;
    let network = state.network(name)?.clone();
    for port in &network.endpoints {
        endpoint::teardown(instance, &network, port).await?;
    }
    state.networks.retain(|n| n.name != name);
    teardown(instance, &network, state.networks.is_empty());
    store.save(&state)
}

/// Puts the network into the maps and attaches the parent's programs.
fn attach(instance: &Instance, network: &Network) -> Result<()> {
    let mut datapath = Datapath::load(&instance.pins)?;
    let tables = Tables::new(&instance.pins);
    let config = NetworkConfig {
        kind: kind::MACVLAN,
        mode: network.mode.datapath_value(),
        parent_ifindex: network.parent_ifindex,
        flags: if network.host_access { network_flags::HOST_ACCESS } else { 0 },
        parent_mac: network.parent_mac.0,
        _pad: [0; 2],
    };
    tables.put_network(network.id, config)?;
    tables.put_flood(network.id, FloodList::default())?;
    tables.put_parent(network.parent_ifindex, network.id)?;
    datapath.attach_xdp(program_names::PARENT_XDP, network.parent_ifindex, &parent_link(network, "xdp"))?;
    datapath.attach_tc(
        program_names::PARENT_INGRESS,
        &network.parent,
        TcAttachType::Ingress,
        &parent_link(network, "ingress"),
    )?;
    datapath.attach_tc(
        program_names::PARENT_EGRESS,
        &network.parent,
        TcAttachType::Egress,
        &parent_link(network, "egress"),
    )
}

/// Best-effort removal of everything `attach` may have made; with `last`, the instance's maps and
/// directories too. Errors are not returned: this also runs as the rollback of a failed create.
fn teardown(instance: &Instance, network: &Network, last: bool) {
    for part in ["xdp", "ingress", "egress"] {
        let _ = detach(&instance.pins, &parent_link(network, part));
    }
    let tables = Tables::new(&instance.pins);
    let _ = tables.delete_parent(network.parent_ifindex);
    let _ = tables.delete_flood(network.id);
    let _ = tables.delete_network(network.id);
    for mac in &network.source_macs {
        let _ = tables.delete_source_mac(datapath_common::MacKey::new(network.id, mac.0));
    }
    if last {
        let _ = tables.unpin_all();
        instance.pins.remove_if_empty();
    }
}

fn parent_link(network: &Network, part: &str) -> String {
    format!("net{}-parent-{part}", network.id)
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(Error::InvalidName(name.into())) }
}
