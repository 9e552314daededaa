//! Networks: create, delete, list, show. A network is a parent interface with the datapath attached (once per parent,
//! shared by the networks on it) and the network's entries in the instance's maps. A failed create is rolled back;
//! delete removes every device, program, map entry, neighbour and pin the network made (and the instance's maps with
//! its last network).
use std::net::Ipv4Addr;

use datapath_common::{MAX_NETWORKS, MAX_VLAN_ID, VXLAN_DEFAULT_PORT, VXLAN_MAX_VNI};

use crate::{
    driver::{self, vxlan},
    error::{Error, Result},
    host::netlink::Device,
    instance::Instance,
    ipam::{self, IpamRequest},
    model::{
        self, Driver, DriverSettings, Flood, Ipvlan, IpvlanFlag, IpvlanMode, Macvlan, MacvlanMode, Network, Parent,
        ParentHook, Pending, State, Vxlan,
    },
    session::{self, Session},
};

/// A network to create.
#[derive(Clone, Debug)]
pub struct CreateNetwork {
    pub name: String,
    /// A link, or `LINK.VID` for VLAN VID of it when no link has that name (as Docker reads `-o parent=eth0.10`).
    pub parent: String,
    /// The 802.1Q VLAN (1-4094) on the parent; may repeat what `parent` names, not contradict it.
    pub vlan: Option<u16>,
    /// None: chosen by the parent's kind (or the networks already on it).
    pub hook: Option<ParentHook>,
    pub driver: DriverRequest,
    /// Where endpoint addresses come from (none: endpoints bring their own).
    pub ipam: IpamRequest,
}

/// The driver of a network to create, with the settings only it takes.
#[derive(Clone, Debug)]
pub enum DriverRequest {
    Macvlan { mode: MacvlanMode, host_access: bool },
    Ipvlan { mode: IpvlanMode, flag: IpvlanFlag },
    Vxlan(VxlanRequest),
}

/// A VXLAN network's settings as asked for; None takes the default.
#[derive(Clone, Debug)]
pub struct VxlanRequest {
    pub vni: u32,
    /// Default: the parent's first IPv4 address.
    pub local: Option<Ipv4Addr>,
    pub flood: Flood,
    /// Default: IANA's 4789 (the kernel's own default is 8472).
    pub dstport: Option<u16>,
    /// Default: on.
    pub learning: Option<bool>,
    /// Default: 300 seconds, as `ip link add … type vxlan`.
    pub ageing: Option<u32>,
}

const DEFAULT_AGEING_SECS: u32 = 300;

pub async fn create(instance: &Instance, request: CreateNetwork) -> Result<Network> {
    let mut session = Session::open(instance).await?;
    let state = &session.state;
    validate_name(&request.name)?;
    if state.network(&request.name).is_ok() {
        return Err(Error::NetworkExists(request.name));
    }
    let driver_kind = request.driver.kind();
    let (link, parent, vlan) = resolve_parent(instance, &request.parent, request.vlan).await?;
    // The parent and VLAN as errors about the LAN segment name them (`eth0.10`).
    let segment = model::segment_name(&link, vlan);
    let request = CreateNetwork { parent: link, ..request };
    if parent.is_loopback {
        return Err(Error::UnsuitableParent { parent: request.parent, reason: "the loopback device" });
    }
    if let Some(vlan) = vlan {
        let refused = match &request.driver {
            DriverRequest::Vxlan(_) => Some(("a VXLAN network", "its underlay is the parent's untagged traffic")),
            DriverRequest::Macvlan { host_access: true, .. } => {
                Some(("host access", "the host has no interface in the VLAN (no 8021q device), use an untagged parent"))
            }
            DriverRequest::Ipvlan { mode: IpvlanMode::L3, .. } => Some((
                "an ipvlan l3 network",
                "the host routes for l3 endpoints and has no interface in the VLAN to route through, use l2",
            )),
            _ => None,
        };
        if let Some((what, reason)) = refused {
            return Err(Error::NotOnVlan { what, parent: request.parent, vlan, reason });
        }
    }
    if state.networks.iter().flat_map(|n| n.ports()).any(|port| port == parent.index) {
        return Err(Error::UnsuitableParent {
            parent: request.parent,
            reason: "the host-side end of an xlan endpoint",
        });
    }
    if driver_kind != Driver::Vxlan {
        // One macvlan or ipvlan network per parent and VLAN: both own its incoming unicast.
        if let Some(owner) = state.on_segment(parent.index, vlan.unwrap_or(0)).find(|n| n.vxlan().is_none()) {
            return Err(if owner.driver_kind() == driver_kind {
                Error::ParentInUse { parent: segment, network: owner.name.clone() }
            } else {
                Error::ParentTaken { parent: segment, driver: owner.driver_kind(), network: owner.name.clone() }
            });
        }
    }
    let driver = match request.driver {
        DriverRequest::Macvlan { mode, host_access } => {
            if host_access && !matches!(mode, MacvlanMode::Bridge | MacvlanMode::Private) {
                return Err(Error::HostAccessMode(mode.to_string()));
            }
            DriverSettings::Macvlan(Macvlan { mode, host_access, source_macs: Vec::new() })
        }
        DriverRequest::Vxlan(vxlan) => {
            DriverSettings::Vxlan(vxlan_settings(instance, state, &request.parent, parent.index, vxlan).await?)
        }
        DriverRequest::Ipvlan { mode, flag } => {
            // The host's addresses are on the untagged parent, none in a VLAN of it.
            let host_addresses = match vlan {
                Some(_) => Vec::new(),
                None => instance.netlink.addresses(parent.index).await?.iter().map(|net| net.addr()).collect(),
            };
            DriverSettings::Ipvlan(Ipvlan { mode, flag, routes: Vec::new(), host_addresses })
        }
    };
    let hook_in_use = state.on_parent(parent.index).next().map(|n| n.hook);
    let hook = match (hook_in_use, request.hook) {
        (Some(in_use), Some(asked)) if in_use != asked => {
            return Err(Error::HookInUse { parent: request.parent, in_use })
        }
        (Some(in_use), _) => in_use,
        (None, Some(asked)) => asked,
        (None, None) if parent.is_veth => ParentHook::Tc,
        (None, None) => ParentHook::Xdp,
    };
    let mac = parent.mac.ok_or_else(|| Error::NoMac(request.parent.clone()))?;
    let subnets = ipam::plan(&request.ipam)?;
    for other in state.on_segment(parent.index, vlan.unwrap_or(0)) {
        if let Some((subnet, overlapped)) = ipam::overlapping(&subnets, &other.subnets) {
            return Err(Error::SubnetsOverlap { subnet, other: overlapped, network: other.name.clone() });
        }
    }
    let mut network = Network {
        id: state.free_network_id(MAX_NETWORKS)?,
        name: request.name,
        parent: Parent { name: request.parent, ifindex: parent.index, mac, vlan },
        hook,
        driver,
        endpoints: Vec::new(),
        next_port: 0,
        subnets,
    };
    let first_on_parent = state.on_parent(parent.index).next().is_none();
    session.begin(Pending::CreateNetwork { network: network.clone() })?;
    session.state.networks.push(network.clone());
    let state = &session.state;
    let made = async {
        driver::attach_network(instance, state, &network, first_on_parent).await?;
        let parent = network.parent.ifindex;
        if let DriverSettings::Vxlan(settings) = &mut network.driver {
            for remote in settings.flood.remotes().to_vec() {
                vxlan::manage_neighbour(instance, parent, settings, remote).await?;
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    session.state.networks.retain(|n| n.name != network.name);
    if let Err(error) = made {
        // Undone now, or (if that fails too) by the next command, which finds the create still pending.
        if driver::teardown_network(instance, &session.state, &network).await.is_ok() {
            session.end()?;
        }
        return Err(error);
    }
    session.state.networks.push(network.clone());
    session.end()?;
    Ok(network)
}

/// The parent a user names: a link of that name, else `LINK.VID` read as VLAN VID of LINK (no link is made: the VLAN
/// is done in BPF). `vlan` is the VLAN asked for on its own.
async fn resolve_parent(instance: &Instance, name: &str, vlan: Option<u16>) -> Result<(String, Device, Option<u16>)> {
    let valid = |vlan: u16| (1..=MAX_VLAN_ID).contains(&vlan);
    if let Some(asked) = vlan.filter(|vlan| !valid(*vlan)) {
        return Err(Error::InvalidVlan { vlan: asked.to_string() });
    }
    if let Some(device) = instance.netlink.device(name).await? {
        return Ok((name.into(), device, vlan));
    }
    let vlan_name = name
        .rsplit_once('.')
        .filter(|(link, vid)| !link.is_empty() && !vid.is_empty() && vid.bytes().all(|byte| byte.is_ascii_digit()));
    let Some((link, vid)) = vlan_name else {
        // No such link, and no VLAN of one: the error names it.
        return instance.netlink.require_device(name).await.map(|device| (name.into(), device, vlan));
    };
    let named = vid.parse().ok().filter(|vid| valid(*vid)).ok_or_else(|| Error::InvalidVlan { vlan: vid.into() })?;
    if let Some(asked) = vlan.filter(|asked| *asked != named) {
        return Err(Error::VlanMismatch { parent: name.into(), named, asked });
    }
    Ok((link.into(), instance.netlink.require_device(link).await?, Some(named)))
}

/// Deletes the network with its endpoints; returns what it was.
/// Works on a broken instance too (a parent that is gone, a datapath that disagrees): deleting is how users get out.
pub async fn delete(instance: &Instance, name: &str) -> Result<Network> {
    let session = Session::open_unchecked(instance).await?;
    let network = session.state.network(name)?.clone();
    remove(session, network).await
}

/// Deletes the network only if it has no endpoints, under one lock, so that an endpoint another command added
/// meanwhile is never taken with it; returns what it deleted. For a front end undoing a network it made for an
/// endpoint whose add then failed (the CNI plugin).
pub async fn delete_if_unused(instance: &Instance, name: &str) -> Result<Option<Network>> {
    let session = Session::open_unchecked(instance).await?;
    let network = session.state.network(name)?.clone();
    if !network.endpoints.is_empty() {
        return Ok(None);
    }
    remove(session, network).await.map(Some)
}

async fn remove(mut session: Session<'_>, network: Network) -> Result<Network> {
    let instance = session.instance;
    session.state.networks.retain(|n| n.name != network.name);
    session.begin(Pending::DeleteNetwork { network: network.clone() })?;
    session::delete_network(instance, &session.state, &network).await?;
    session.end()?;
    Ok(network)
}

/// Every network of the instance.
pub async fn list(instance: &Instance) -> Result<Vec<Network>> {
    Ok(Session::open(instance).await?.state.networks)
}

/// One network.
pub async fn show(instance: &Instance, name: &str) -> Result<Network> {
    Session::open(instance).await?.state.network(name).cloned()
}

impl DriverRequest {
    pub fn kind(&self) -> Driver {
        match self {
            DriverRequest::Macvlan { .. } => Driver::Macvlan,
            DriverRequest::Ipvlan { .. } => Driver::Ipvlan,
            DriverRequest::Vxlan(_) => Driver::Vxlan,
        }
    }
}

async fn vxlan_settings(
    instance: &Instance,
    state: &State,
    parent_name: &str,
    parent: u32,
    request: VxlanRequest,
) -> Result<Vxlan> {
    let vni = request.vni;
    if vni == 0 || vni > VXLAN_MAX_VNI {
        return Err(Error::InvalidVni(vni));
    }
    if request.dstport == Some(0) {
        return Err(Error::InvalidPort);
    }
    let flood = match request.flood {
        Flood::Group(group) if !group.is_multicast() => return Err(Error::GroupNotMulticast(group)),
        Flood::Group(group) => Flood::Group(group),
        Flood::Remotes(mut remotes) => {
            for remote in &remotes {
                vxlan::validate_vtep(*remote)?;
            }
            // Each VTEP once, in the order given (`dedup` alone keeps a repeat that is not next to its first).
            let mut seen = std::collections::HashSet::new();
            remotes.retain(|remote| seen.insert(*remote));
            Flood::Remotes(remotes)
        }
    };
    if let Some(owner) = state.on_parent(parent).find(|n| n.vxlan().is_some_and(|v| v.vni == vni)) {
        return Err(Error::VniInUse { vni, parent: parent_name.into(), network: owner.name.clone() });
    }
    let local = match request.local {
        Some(local) => vxlan::validate_vtep(local).map(|_| local)?,
        None => instance.netlink.first_ipv4(parent).await?.ok_or_else(|| Error::NoLocalAddress(parent_name.into()))?,
    };
    Ok(Vxlan {
        vni,
        local,
        dstport: request.dstport.unwrap_or(VXLAN_DEFAULT_PORT),
        flood,
        learning: request.learning.unwrap_or(true),
        ageing: request.ageing.unwrap_or(DEFAULT_AGEING_SECS),
        fdb: Vec::new(),
        managed_neighbours: Vec::new(),
    })
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
