//! What each driver puts in the datapath's maps and on the host, for a network (this module) and for an endpoint
//! (`port`). The operations (`ops/`) decide and record; the functions here carry it out, and their teardowns are
//! idempotent so that they also serve as the rollback of a half-made setup.
pub mod ipvlan;
pub mod macvlan;
pub mod port;
pub mod spreader;
pub mod vxlan;

use aya::programs::TcAttachType;
use datapath_common::{
    self as wire, program_names, FloodList, NetworkConfig, NetworkFlags, NetworkKind, ParentConfig, ParentKey,
};

use crate::{
    datapath::{
        loader::{detach, link_names, Datapath},
        maps::Tables,
    },
    error::Result,
    instance::Instance,
    model::{DriverSettings, IpvlanFlag, IpvlanMode, MacvlanMode, Network, ParentHook, State},
};

/// The network's configuration as the datapath reads it.
pub fn network_config(network: &Network) -> NetworkConfig {
    let mut config = NetworkConfig {
        kind: NetworkKind::MACVLAN,
        mode: macvlan_mode(MacvlanMode::Bridge).into(),
        parent_ifindex: network.parent.ifindex,
        parent_mac: network.parent.mac.0,
        vlan_id: network.parent.vlan_id(),
        ..Default::default()
    };
    match &network.driver {
        DriverSettings::Macvlan(settings) => {
            config.mode = macvlan_mode(settings.mode).into();
            if settings.host_access {
                config.flags |= NetworkFlags::HOST_ACCESS;
            }
        }
        DriverSettings::Vxlan(settings) => {
            config.kind = NetworkKind::VXLAN;
            if settings.learning {
                config.flags |= NetworkFlags::LEARNING;
            }
            config.vni = settings.vni;
            config.dstport = settings.dstport;
            config.local_ip = vxlan::ip_key(settings.local);
            config.group_ip = settings.flood.group().map_or(0, vxlan::ip_key);
            config.ageing_secs = settings.ageing;
        }
        DriverSettings::Ipvlan(settings) => {
            config.kind = NetworkKind::IPVLAN;
            config.mode = ipvlan_mode(settings.mode).into();
            config.flags |= ipvlan_flags(settings.flag);
        }
    }
    config
}

/// The kernel's MACVLAN_MODE_* value, which the datapath uses too.
pub const fn macvlan_mode(mode: MacvlanMode) -> wire::MacvlanMode {
    match mode {
        MacvlanMode::Bridge => wire::MacvlanMode::BRIDGE,
        MacvlanMode::Private => wire::MacvlanMode::PRIVATE,
        MacvlanMode::Vepa => wire::MacvlanMode::VEPA,
        MacvlanMode::Passthru => wire::MacvlanMode::PASSTHRU,
        MacvlanMode::Source => wire::MacvlanMode::SOURCE,
    }
}

/// The kernel's IPVLAN_MODE_* value.
pub const fn ipvlan_mode(mode: IpvlanMode) -> wire::IpvlanMode {
    match mode {
        IpvlanMode::L2 => wire::IpvlanMode::L2,
        IpvlanMode::L3 => wire::IpvlanMode::L3,
    }
}

/// The kernel's IPVLAN_F_* flags.
pub const fn ipvlan_flags(flag: IpvlanFlag) -> NetworkFlags {
    match flag {
        IpvlanFlag::Bridge => NetworkFlags::empty(),
        IpvlanFlag::Private => NetworkFlags::PRIVATE,
        IpvlanFlag::Vepa => NetworkFlags::VEPA,
    }
}

/// What the parent carries untagged (`key.vlan_id` 0) or on one of its VLANs, from the networks there in `state`:
/// with its macvlan or ipvlan network's configuration, which the parent hooks read from here (one lookup per frame).
pub fn parent_config(state: &State, key: ParentKey) -> ParentConfig {
    let mut config = ParentConfig::default();
    let vlan = key.vlan_id as u16;
    for network in state.on_segment(key.ifindex, vlan) {
        match network.driver {
            DriverSettings::Macvlan(_) => config.macvlan_network = network.id,
            DriverSettings::Vxlan(_) => config.vxlan_networks += 1,
            DriverSettings::Ipvlan(_) => config.ipvlan_network = network.id,
        }
        if network.vxlan().is_none() {
            config.network = network_config(network);
        }
    }
    if vlan == 0 {
        config.vlan_networks = state.on_parent(key.ifindex).filter(|n| n.parent.vlan.is_some()).count() as u32;
    }
    config
}

/// The keys of a parent's entries while `state` has networks on it: its untagged one (always: it says whether there
/// are VLANs) and one per VLAN a network is on.
pub fn parent_keys(state: &State, parent_ifindex: u32) -> Vec<ParentKey> {
    let mut keys = vec![ParentKey { ifindex: parent_ifindex, vlan_id: 0 }];
    for network in state.on_parent(parent_ifindex) {
        let key = ParentKey { ifindex: parent_ifindex, vlan_id: network.parent.vlan_id().into() };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Writes the parent's entries as `state` has them, and removes those of VLANs no network is on any more (all of
/// them, with its last network).
pub fn put_parent_entries(tables: &Tables<'_>, state: &State, parent_ifindex: u32) -> Result<()> {
    let wanted =
        if state.on_parent(parent_ifindex).next().is_some() { parent_keys(state, parent_ifindex) } else { vec![] };
    for (key, _) in tables.parents()? {
        if key.ifindex == parent_ifindex && !wanted.contains(&key) {
            tables.delete_parent(key)?;
        }
    }
    for key in wanted {
        tables.put_parent(key, parent_config(state, key))?;
    }
    Ok(())
}

/// The maps' entries of a new network (no endpoints yet): its configuration, an empty flood list, and what its
/// driver keys by (a VXLAN network's VNI and VTEPs, an ipvlan network's host addresses). The parent's entry and
/// programs are `attach_network`'s.
pub fn fill_maps(tables: &Tables<'_>, network: &Network) -> Result<()> {
    tables.put_network(network.id, network_config(network))?;
    tables.put_flood(network.id, FloodList::default())?;
    match &network.driver {
        DriverSettings::Vxlan(settings) => vxlan::fill_maps(tables, network, settings),
        DriverSettings::Ipvlan(settings) => ipvlan::fill_maps(tables, network, settings),
        DriverSettings::Macvlan(_) => Ok(()),
    }
}

/// What the network's record holds beyond its configuration and endpoints, in the maps: ipvlan routes (to their
/// endpoints' ports, which must be in the maps), allowed source MACs, static FDB entries. For rebuilding a
/// datapath from the state.
pub fn fill_entries(tables: &Tables<'_>, network: &Network) -> Result<()> {
    match &network.driver {
        DriverSettings::Ipvlan(settings) => {
            for route in &settings.routes {
                if let Some(endpoint) = network.endpoint(&route.endpoint) {
                    ipvlan::learn_prefix(tables, network, &route.prefix, endpoint.host.ifindex)?;
                }
            }
        }
        DriverSettings::Macvlan(settings) => {
            for mac in &settings.source_macs {
                macvlan::allow_source(tables, network, *mac)?;
            }
        }
        DriverSettings::Vxlan(settings) => {
            for entry in &settings.fdb {
                tables.put_fdb(vxlan::mac_key(network, entry.mac), vxlan::remote_entry(entry.dst))?;
            }
        }
    }
    Ok(())
}

/// The entries of `fill_entries` (and a VXLAN network's flood list) the maps lack, described.
pub fn missing_entries(tables: &Tables<'_>, network: &Network) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    match &network.driver {
        DriverSettings::Ipvlan(settings) => {
            for route in &settings.routes {
                let key = ipvlan::prefix_key(network.id, &route.prefix);
                let port = network.endpoint(&route.endpoint).map(|e| e.host.ifindex);
                if tables.ip_owner(&key)?.map(|owner| owner.port) != port {
                    missing.push(format!("route {} to {}", route.prefix, route.endpoint));
                }
            }
        }
        DriverSettings::Macvlan(settings) => {
            for mac in &settings.source_macs {
                if !tables.has_source_mac(datapath_common::MacKey::new(network.id, mac.0))? {
                    missing.push(format!("allowed source MAC {mac}"));
                }
            }
        }
        DriverSettings::Vxlan(settings) => {
            for entry in &settings.fdb {
                let found = tables.fdb_entry(vxlan::mac_key(network, entry.mac))?;
                if found.is_none_or(|found| found.remote_ip != vxlan::ip_key(entry.dst)) {
                    missing.push(format!("FDB entry {} dst {}", entry.mac, entry.dst));
                }
            }
            if tables.vteps(network.id)? != Some(vxlan::vtep_list(settings.flood.remotes())) {
                missing.push("flood list".into());
            }
        }
    }
    Ok(missing)
}

/// Puts the network into the maps (`state` already holds it) and, for the first network on its parent, attaches
/// the parent's programs.
pub async fn attach_network(
    instance: &Instance,
    state: &State,
    network: &Network,
    first_on_parent: bool,
) -> Result<()> {
    let mut datapath = Datapath::load(&instance.pins)?;
    let tables = Tables::new(&instance.pins);
    fill_maps(&tables, network)?;
    if let DriverSettings::Vxlan(settings) = &network.driver {
        vxlan::join_group(instance, network, settings).await?;
    }
    let parent = &network.parent;
    put_parent_entries(&tables, state, parent.ifindex)?;
    spreader::ensure(instance, &mut datapath, &tables).await?;
    if first_on_parent {
        if network.hook == ParentHook::Xdp {
            let link = link_names::parent(parent.ifindex, "xdp");
            datapath.attach_xdp(program_names::PARENT_XDP, parent.ifindex, &link)?;
        }
        let ingress = link_names::parent(parent.ifindex, "ingress");
        datapath.attach_tc(program_names::PARENT_INGRESS, &parent.name, TcAttachType::Ingress, &ingress)?;
    }
    // Only host access needs to see the host's own frames leaving the parent: every other network spares the host's
    // egress traffic the program.
    let egress = link_names::parent(parent.ifindex, "egress");
    let host_access = network.macvlan().is_some_and(|settings| settings.host_access);
    if host_access && !instance.pins.link(&egress).exists() {
        datapath.attach_tc(program_names::PARENT_EGRESS, &parent.name, TcAttachType::Egress, &egress)?;
    }
    Ok(())
}

/// Brings a parent's programs and entries in line with the networks `state` has on it after one went: a parent no
/// network uses any more loses its programs; the entries are written as the remaining networks have them.
pub fn release_parent(instance: &Instance, tables: &Tables<'_>, state: &State, parent: u32) -> Result<()> {
    if state.on_parent(parent).next().is_none() {
        for part in link_names::PARENT_PARTS {
            detach(&instance.pins, &link_names::parent(parent, part))?;
        }
    }
    if tables.exist() {
        put_parent_entries(tables, state, parent)?;
    }
    Ok(())
}

/// Removes what `attach_network` made for `network` (`state` no longer holds it); with the parent's last network
/// the parent's programs, with the instance's last network its maps and directories. Idempotent, so it also serves
/// as the rollback of a failed create.
pub async fn teardown_network(instance: &Instance, state: &State, network: &Network) -> Result<()> {
    let tables = Tables::new(&instance.pins);
    let parent = network.parent.ifindex;
    release_parent(instance, &tables, state, parent)?;
    match &network.driver {
        DriverSettings::Vxlan(settings) => vxlan::teardown(instance, &tables, network, settings).await?,
        DriverSettings::Ipvlan(settings) => ipvlan::teardown(&tables, network, settings)?,
        DriverSettings::Macvlan(settings) => macvlan::teardown(&tables, network, settings)?,
    }
    forget_network(instance, &tables, state, network.id).await
}

/// The entries every network has whatever its driver (its flood list, groups and configuration), after the driver's
/// own are gone; with the instance's last network (none in `state`, none left in the maps, such as one the state
/// lost and the doctor has yet to remove), the instance's spreader, maps and directories too. For `teardown_network`
/// and the doctor's removal of a network the state no longer knows.
pub async fn forget_network(instance: &Instance, tables: &Tables<'_>, state: &State, network_id: u32) -> Result<()> {
    tables.delete_flood(network_id)?;
    tables.delete_network_groups(network_id)?;
    tables.delete_network(network_id)?;
    if state.networks.is_empty() && (!tables.exist() || tables.networks()?.is_empty()) {
        spreader::remove(instance, tables).await?;
        tables.unpin_all()?;
        instance.pins.remove_if_empty();
    }
    Ok(())
}
