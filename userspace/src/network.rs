//! `xlan network create|delete`: a network is a parent interface with the datapath attached (once per parent,
//! shared by the networks on it) and the network's entries in the instance's maps. A failed create is rolled
//! back; delete removes every device, program, map entry, neighbour and pin the network made (and the
//! instance's maps with its last network).
use std::net::Ipv4Addr;

use aya::programs::TcAttachType;
use datapath_common::{
    program_names, FloodList, NetworkConfig, NetworkFlags, NetworkKind, ParentConfig, MAX_NETWORKS, VXLAN_DEFAULT_PORT,
};

use crate::{
    endpoint,
    error::{Error, Result},
    instance::Instance,
    ipvlan,
    loader::{detach, Datapath},
    maps::Tables,
    mode::{parse_ipvlan_mode, parse_macvlan_mode, IpvlanFlag, Mode},
    state::{Driver, Ipvlan, Network, ParentHook, State, Vxlan},
    vxlan,
};

/// What `network create` asks for.
pub struct CreateRequest {
    pub name: String,
    pub driver: Driver,
    pub parent: String,
    /// The driver's mode word, as given.
    pub mode: Option<String>,
    pub flag: Option<IpvlanFlag>,
    pub host_access: bool,
    /// None: chosen by the parent's kind (or the networks already on it).
    pub parent_hook: Option<ParentHook>,
    pub vxlan: VxlanOptions,
}

/// The VXLAN options of `network create`, as given (None: not given).
#[derive(Default)]
pub struct VxlanOptions {
    pub vni: Option<u32>,
    pub local: Option<Ipv4Addr>,
    pub remotes: Vec<Ipv4Addr>,
    pub group: Option<Ipv4Addr>,
    pub dstport: Option<u16>,
    pub learning: Option<bool>,
    pub ageing: Option<u32>,
}

/// Defaults of `ip link add … type vxlan`, but for the port: IANA's 4789 (the kernel's own default is 8472).
const DEFAULT_AGEING_SECS: u32 = 300;

pub async fn create(instance: &Instance, request: CreateRequest) -> Result<Network> {
    let store = instance.store()?;
    let mut state = store.load()?;
    validate_name(&request.name)?;
    if state.network(&request.name).is_ok() {
        return Err(Error::NetworkExists(request.name));
    }
    let driver_name = request.driver.to_string();
    if request.driver != Driver::Macvlan && request.host_access {
        return Err(Error::NotForDriver("--host-access", driver_name));
    }
    if request.driver != Driver::Ipvlan && request.flag.is_some() {
        return Err(Error::NotForDriver("--flag", driver_name));
    }
    if request.driver != Driver::Vxlan {
        refuse_vxlan_options(&request.vxlan, &driver_name)?;
    }
    let parent = instance.netlink.require_device(&request.parent).await?;
    if request.driver != Driver::Vxlan {
        // One macvlan or ipvlan network per parent: both own the parent's incoming unicast.
        if let Some(owner) = state.on_parent(parent.index).find(|n| n.driver != Driver::Vxlan) {
            return Err(if owner.driver == request.driver {
                Error::ParentInUse(request.parent, owner.name.clone())
            } else {
                Error::ParentTaken(request.parent, owner.driver.to_string(), owner.name.clone())
            });
        }
    }
    let (mode, vxlan, ipvlan) = match request.driver {
        Driver::Macvlan => {
            let mode = match &request.mode {
                Some(text) => parse_macvlan_mode(text).ok_or_else(|| {
                    Error::UnknownMode(text.clone(), driver_name.clone(), "bridge|private|vepa|passthru|source")
                })?,
                None => Mode::Bridge,
            };
            if request.host_access && !matches!(mode, Mode::Bridge | Mode::Private) {
                return Err(Error::HostAccessMode(mode.to_string()));
            }
            (mode, None, None)
        }
        Driver::Vxlan => {
            if request.mode.is_some() {
                return Err(Error::NotForDriver("--mode", driver_name));
            }
            (Mode::Bridge, Some(vxlan_settings(instance, &state, &request, parent.index).await?), None)
        }
        Driver::Ipvlan => {
            let ipvlan_mode = match &request.mode {
                Some(text) => parse_ipvlan_mode(text)
                    .ok_or_else(|| Error::UnknownMode(text.clone(), driver_name.clone(), "l2|l3"))?,
                None => Default::default(),
            };
            let host_addresses =
                instance.netlink.addresses(parent.index).await?.iter().map(|cidr| cidr.ip.to_string()).collect();
            let settings = Ipvlan {
                mode: ipvlan_mode,
                flag: request.flag.unwrap_or_default(),
                routes: Vec::new(),
                host_addresses,
            };
            (Mode::Bridge, None, Some(settings))
        }
    };
    let hook_in_use = state.on_parent(parent.index).next().map(|n| n.parent_hook);
    let parent_hook = match (hook_in_use, request.parent_hook) {
        (Some(in_use), Some(asked)) if in_use != asked => {
            return Err(Error::HookInUse(request.parent, in_use.to_string()))
        }
        (Some(in_use), _) => in_use,
        (None, Some(asked)) => asked,
        (None, None) if parent.is_veth => ParentHook::Tc,
        (None, None) => ParentHook::Xdp,
    };
    let network = Network {
        parent_hook,
        id: state.free_network_id(MAX_NETWORKS)?,
        name: request.name,
        driver: request.driver,
        mode,
        parent: request.parent,
        parent_ifindex: parent.index,
        parent_mac: parent.mac.ok_or_else(|| Error::Netlink("parent has no MAC address".into()))?,
        host_access: request.host_access,
        endpoints: Vec::new(),
        source_macs: Vec::new(),
        next_port: 0,
        vxlan,
        ipvlan,
    };
    let first_on_parent = state.on_parent(parent.index).next().is_none();
    let mut network = network;
    state.networks.push(network.clone());
    let made = async {
        attach(instance, &state, &network, first_on_parent).await?;
        let parent = network.parent_ifindex;
        if let Some(settings) = network.vxlan.as_mut() {
            for remote in settings.remotes.clone() {
                vxlan::manage_neighbour(instance, parent, settings, remote).await?;
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    state.networks.retain(|n| n.name != network.name);
    if let Err(error) = made {
        let _ = teardown(instance, &state, &network).await;
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
    teardown(instance, &state, &network).await?;
    store.save(&state)
}

async fn vxlan_settings(instance: &Instance, state: &State, request: &CreateRequest, parent: u32) -> Result<Vxlan> {
    let options = &request.vxlan;
    let vni = options.vni.ok_or(Error::MissingVni)?;
    if vni == 0 || vni > datapath_common::VXLAN_MAX_VNI {
        return Err(Error::InvalidVni(vni));
    }
    if !options.remotes.is_empty() && options.group.is_some() {
        return Err(Error::RemoteWithGroup);
    }
    if let Some(group) = options.group {
        if !group.is_multicast() {
            return Err(Error::GroupNotMulticast(group.to_string()));
        }
    }
    for remote in &options.remotes {
        vxlan::validate_vtep(*remote)?;
    }
    if let Some(owner) = state.on_parent(parent).find(|n| n.vxlan().is_some_and(|v| v.vni == vni)) {
        return Err(Error::VniInUse { vni, parent: request.parent.clone(), network: owner.name.clone() });
    }
    let local = match options.local {
        Some(local) => vxlan::validate_vtep(local).map(|_| local)?,
        None => {
            instance.netlink.first_ipv4(parent).await?.ok_or_else(|| Error::NoLocalAddress(request.parent.clone()))?
        }
    };
    let mut remotes = options.remotes.clone();
    remotes.dedup();
    Ok(Vxlan {
        vni,
        local,
        dstport: options.dstport.unwrap_or(VXLAN_DEFAULT_PORT),
        group: options.group,
        remotes,
        learning: options.learning.unwrap_or(true),
        ageing: options.ageing.unwrap_or(DEFAULT_AGEING_SECS),
        fdb: Vec::new(),
        managed_neighbours: Vec::new(),
    })
}

fn refuse_vxlan_options(options: &VxlanOptions, driver: &str) -> Result<()> {
    let given = [
        ("--vni", options.vni.is_some()),
        ("--local", options.local.is_some()),
        ("--remote", !options.remotes.is_empty()),
        ("--group", options.group.is_some()),
        ("--dstport", options.dstport.is_some()),
        ("--learning/--no-learning", options.learning.is_some()),
        ("--ageing", options.ageing.is_some()),
    ];
    match given.iter().find(|(_, present)| *present) {
        Some((option, _)) => Err(Error::NotForDriver(option, driver.into())),
        None => Ok(()),
    }
}

/// The network's configuration as the datapath reads it.
pub fn datapath_config(network: &Network) -> NetworkConfig {
    let mut flags = if network.host_access { NetworkFlags::HOST_ACCESS } else { NetworkFlags::empty() };
    let mut config = NetworkConfig {
        kind: NetworkKind::MACVLAN,
        mode: network.mode.datapath_value().into(),
        parent_ifindex: network.parent_ifindex,
        parent_mac: network.parent_mac.0,
        ..Default::default()
    };
    if let Some(vxlan) = network.vxlan() {
        if vxlan.learning {
            flags |= NetworkFlags::LEARNING;
        }
        config.kind = NetworkKind::VXLAN;
        config.vni = vxlan.vni;
        config.dstport = vxlan.dstport;
        config.local_ip = u32::from_ne_bytes(vxlan.local.octets());
        config.group_ip = vxlan.group.map_or(0, |g| u32::from_ne_bytes(g.octets()));
        config.ageing_secs = vxlan.ageing;
    }
    if let Some(settings) = network.ipvlan() {
        config.kind = NetworkKind::IPVLAN;
        config.mode = settings.mode.datapath_value().into();
        flags |= settings.flag.datapath_flags();
    }
    config.flags = flags;
    config
}

/// What the parent carries, from the networks on it in `state`.
fn parent_config(state: &State, parent_ifindex: u32) -> ParentConfig {
    let mut config = ParentConfig::default();
    for network in state.on_parent(parent_ifindex) {
        match network.driver {
            Driver::Macvlan => config.macvlan_network = network.id,
            Driver::Vxlan => config.vxlan_networks += 1,
            Driver::Ipvlan => config.ipvlan_network = network.id,
        }
    }
    config
}

/// Puts the network into the maps (`state` already holds it) and, for the first network on its parent,
/// attaches the parent's programs.
async fn attach(instance: &Instance, state: &State, network: &Network, first_on_parent: bool) -> Result<()> {
    let mut datapath = Datapath::load(&instance.pins)?;
    let tables = Tables::new(&instance.pins);
    tables.put_network(network.id, datapath_config(network))?;
    tables.put_flood(network.id, FloodList::default())?;
    if let Some(settings) = network.vxlan() {
        vxlan::attach(instance, &tables, network, settings).await?;
    }
    if let Some(settings) = network.ipvlan() {
        ipvlan::attach(&tables, network, settings)?;
    }
    tables.put_parent(network.parent_ifindex, parent_config(state, network.parent_ifindex))?;
    if first_on_parent {
        if network.parent_hook == ParentHook::Xdp {
            datapath.attach_xdp(program_names::PARENT_XDP, network.parent_ifindex, &parent_link(network, "xdp"))?;
        }
        let ingress = parent_link(network, "ingress");
        datapath.attach_tc(program_names::PARENT_INGRESS, &network.parent, TcAttachType::Ingress, &ingress)?;
    }
    // Only host access needs to see the host's own frames leaving the parent: every other network spares the
    // host's egress traffic the program.
    let egress = parent_link(network, "egress");
    if network.host_access && !instance.pins.link(&egress).exists() {
        datapath.attach_tc(program_names::PARENT_EGRESS, &network.parent, TcAttachType::Egress, &egress)?;
    }
    Ok(())
}

/// Removes what `attach` made for `network` (`state` no longer holds it); with the parent's last network the
/// parent's programs, with the instance's last network its maps and directories. Idempotent, so it also
/// serves as the rollback of a failed create.
async fn teardown(instance: &Instance, state: &State, network: &Network) -> Result<()> {
    let tables = Tables::new(&instance.pins);
    if state.on_parent(network.parent_ifindex).next().is_none() {
        for part in ["xdp", "ingress", "egress"] {
            detach(&instance.pins, &parent_link(network, part))?;
        }
        tables.delete_parent(network.parent_ifindex)?;
    } else if tables.exist() {
        tables.put_parent(network.parent_ifindex, parent_config(state, network.parent_ifindex))?;
    }
    if let Some(settings) = network.vxlan() {
        vxlan::teardown(instance, &tables, network, settings).await?;
    }
    if let Some(settings) = network.ipvlan() {
        ipvlan::teardown(&tables, network, settings)?;
    }
    tables.delete_flood(network.id)?;
    tables.delete_network(network.id)?;
    for mac in &network.source_macs {
        tables.delete_source_mac(datapath_common::MacKey::new(network.id, mac.0))?;
    }
    if state.networks.is_empty() {
        tables.unpin_all()?;
        instance.pins.remove_if_empty();
    }
    Ok(())
}

fn parent_link(network: &Network, part: &str) -> String {
    format!("parent{}-{part}", network.parent_ifindex)
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.into()))
    }
}
