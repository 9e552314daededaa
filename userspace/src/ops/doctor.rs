//! The doctor: every disagreement between the instance's state, its pinned datapath and the host's devices
//! (`check::Finding`), and the repair of what can be repaired — the datapath rebuilt from the state where it lost
//! something, the state rid of endpoints whose devices are gone, a re-created parent bound again, and what xlan made
//! that the state does not know (orphan networks and ports) removed. Only what xlan made is ever removed: ports the
//! datapath lists, and devices of those ports that carry xlan's names.
use datapath_common::MacKey;
use serde::Serialize;

use crate::{
    check::Finding,
    datapath::{
        loader::{detach, link_names},
        maps::Tables,
        pins::unpin,
    },
    driver::{self, port, vxlan},
    error::{Error, Result},
    host::{netlink::Netlink, netns::Netns},
    instance::Instance,
    model::{Endpoint, Network, ParentHook, Pending, State, VethNames},
    session::Session,
    store,
};

/// What the doctor saw, and did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Mutations of killed commands that opening the instance finished or undid.
    pub recovered: Vec<Pending>,
    /// The disagreements found (before any repair).
    pub findings: Vec<Finding>,
    /// The findings repaired (with --repair).
    pub repaired: Vec<Finding>,
    /// What is still wrong afterwards: what needs the user (a parent that is gone: re-create it or delete the
    /// network).
    pub remaining: Vec<Finding>,
}

/// Examines the instance; changes nothing but what opening it finishes or undoes.
pub async fn examine(instance: &Instance) -> Result<Report> {
    let session = match Session::open_unchecked(instance).await {
        Err(Error::State { path, problem }) => {
            let finding = Finding::StateUnreadable { path: path.display().to_string(), problem };
            return Ok(Report {
                recovered: Vec::new(),
                findings: vec![finding.clone()],
                repaired: Vec::new(),
                remaining: vec![finding],
            });
        }
        opened => opened?,
    };
    let findings = session.examine().await?;
    Ok(Report { recovered: session.recovered, remaining: findings.clone(), findings, repaired: Vec::new() })
}

/// Examines the instance and repairs what can be repaired. An unreadable state file is moved aside: the instance then
/// starts from an empty state, and what the datapath holds is removed as unknown (the networks must be made again).
pub async fn repair(instance: &Instance) -> Result<Report> {
    let (mut session, mut findings, mut repaired) = match Session::open_unchecked(instance).await {
        Err(Error::State { path, problem }) => {
            instance.store()?.set_aside()?;
            let unreadable = Finding::StateUnreadable { path: path.display().to_string(), problem };
            (Session::open_unchecked(instance).await?, vec![unreadable.clone()], vec![unreadable])
        }
        opened => (opened?, Vec::new(), Vec::new()),
    };
    findings.extend(session.examine().await?);
    let mut to_repair = findings.clone();
    if findings.iter().any(|f| matches!(f, Finding::UnknownNetwork { .. }))
        && adopt_kept_configuration(instance, &mut session)?
    {
        // The networks the state had lost are its own again; what else is wrong is seen anew.
        repaired.extend(findings.iter().filter(|f| matches!(f, Finding::UnknownNetwork { .. })).cloned());
        to_repair = session.examine().await?;
    }
    let findings_to_repair = to_repair;
    // Removals first (they may free what a rebuild needs), then rebinding and rebuilding from the state.
    for finding in &findings_to_repair {
        let done = match finding {
            Finding::UnknownNetwork { id } => remove_orphan_network(instance, &session.state, *id).await?,
            Finding::UnknownPort { port, .. } => remove_orphan_port(instance, *port).await?,
            Finding::EndpointDeviceMissing { network, endpoint, .. } => {
                let Ok(stored) = session.state.network_mut(network) else { continue };
                let Some(gone) = stored.endpoint(endpoint).cloned() else { continue };
                stored.endpoints.retain(|e| e.at != gone.at);
                let remaining = stored.clone();
                port::teardown(instance, &remaining, &gone).await?;
                session.save()?;
                true
            }
            _ => false,
        };
        if done {
            repaired.push(finding.clone());
        }
    }
    // A re-created parent is bound again: the state takes its new ifindex and MAC, and the datapath, whose maps key
    // by the old ifindex, is installed anew.
    let mut reinstall_all = findings_to_repair.contains(&Finding::MapsMissing);
    for finding in &findings_to_repair {
        if let Finding::ParentReplaced { network, now, .. } = finding {
            let parent = instance.netlink.require_device(&session.state.network(network)?.parent.name).await?;
            let stored = session.state.network_mut(network)?;
            stored.parent.ifindex = *now;
            stored.parent.mac = parent.mac.unwrap_or(stored.parent.mac);
            session.save()?;
            reinstall_all = true;
        }
    }
    let rebuilt = |finding: &&Finding| needs_rebuild(finding) || matches!(finding, Finding::ParentReplaced { .. });
    if reinstall_all {
        reinstall(instance, &session.state).await?;
        repaired.extend(findings_to_repair.iter().filter(rebuilt).cloned());
    } else if findings_to_repair.iter().any(needs_rebuild) {
        // Whatever is missing from the datapath comes back from the state.
        rebuild(instance, &session.state).await?;
        repaired.extend(findings_to_repair.iter().filter(rebuilt).cloned());
    }
    // The spreader alone is made again by itself, not by rebuilding every network (a rebuild above made it too:
    // then this finds it in order).
    let spreader = |finding: &&Finding| matches!(finding, Finding::SpreaderMissing { .. });
    if findings_to_repair.iter().any(|finding| spreader(&finding)) {
        let mut datapath = crate::datapath::loader::Datapath::load(&instance.pins)?;
        driver::spreader::ensure(instance, &mut datapath, &Tables::new(&instance.pins)).await?;
        repaired.extend(findings_to_repair.iter().filter(spreader).cloned());
    }
    let remaining = session.examine().await?;
    repaired.retain(|finding| !remaining.contains(finding));
    Ok(Report { recovered: session.recovered, findings, repaired, remaining })
}

/// A lost state directory (or an unreadable state file set aside) while the datapath still runs the networks of the
/// kept configuration, which every change wrote along with the state: the configuration becomes the state again,
/// instead of what forwards being removed as unknown. Only for the instance's own state directory (a second one,
/// `--state-dir`, must not take over another's networks), and only if every network of the configuration is in the
/// datapath with the same id and configuration.
fn adopt_kept_configuration(instance: &Instance, session: &mut Session<'_>) -> Result<bool> {
    if !session.state.networks.is_empty() || instance.state_dir != Instance::default_state_dir(&instance.name) {
        return Ok(false);
    }
    let Some(kept) = store::load_config(&instance.config_path())? else { return Ok(false) };
    let tables = Tables::new(&instance.pins);
    if kept.networks.is_empty() || !tables.exist() {
        return Ok(false);
    }
    let running: std::collections::HashMap<u32, _> = tables.networks()?.into_iter().collect();
    if !kept.networks.iter().all(|network| running.get(&network.id) == Some(&driver::network_config(network))) {
        return Ok(false);
    }
    session.state.networks = kept.networks;
    session.save()?;
    Ok(true)
}

fn needs_rebuild(finding: &Finding) -> bool {
    matches!(
        finding,
        Finding::MapsMissing
            | Finding::NetworkNotInDatapath { .. }
            | Finding::NetworkConfigDiffers { .. }
            | Finding::ParentProgramsMissing { .. }
            | Finding::EndpointNotInDatapath { .. }
            | Finding::EntriesMissing { .. }
    )
}

/// Puts every network of the state, with its endpoints, into the datapath again (maps and programs), as
/// `network create` and `endpoint add` did. Idempotent: what is there is written again.
pub(crate) async fn rebuild(instance: &Instance, state: &State) -> Result<()> {
    let tables = Tables::new(&instance.pins);
    let mut reattached = Vec::new();
    for network in &state.networks {
        let parent_attached = instance.pins.link(&link_names::parent(network.parent.ifindex, "ingress")).exists();
        let empty = Network { endpoints: Vec::new(), ..network.clone() };
        driver::attach_network(instance, state, &empty, !parent_attached).await?;
        let mut made = empty;
        for endpoint in &network.endpoints {
            port::fill_maps(&tables, &made, endpoint)?;
            made.endpoints.push(endpoint.clone());
            if !instance.pins.link(&link_names::port(endpoint.host.ifindex, "tc")).exists() {
                reattach_programs(instance, network, endpoint).await?;
                // Without its program, its reports went unseen.
                reattached.push(endpoint);
            }
        }
        tables.put_flood(network.id, port::flood_list(&tables, &network.ports().collect::<Vec<_>>())?)?;
        driver::fill_entries(&tables, network)?;
        if let Some(settings) = network.vxlan() {
            // The VTEPs' next hops, as create and `fdb add` put them.
            let mut settings = settings.clone();
            let vteps: Vec<_> =
                settings.flood.remotes().iter().chain(settings.fdb.iter().map(|e| &e.dst)).copied().collect();
            for vtep in vteps {
                vxlan::manage_neighbour(instance, network.parent.ifindex, &mut settings, vtep).await?;
            }
        }
    }
    // Once everything else is in place: a query that cannot be sent leaves nothing half-made.
    let mut first_failure = Ok(());
    for endpoint in reattached {
        if let Err(error) = port::query_groups(instance, endpoint, None).await {
            first_failure = first_failure.and(Err(error));
        }
    }
    first_failure
}

/// Attaches an endpoint's programs again, finding its own end where it is: in its namespace, or, handed over to a
/// container runtime, wherever the runtime put it — then only the host side's program can be put back (the peer's
/// XDP stub stays with its device as long as the device lives).
async fn reattach_programs(instance: &Instance, network: &Network, endpoint: &Endpoint) -> Result<()> {
    if let Some(ifname) = endpoint.placement.handed_over() {
        // Still in the host namespace if the runtime has not taken it yet.
        let peer = instance.netlink.device(ifname).await?.map(|d| d.index);
        let network = match peer {
            Some(_) => network.clone(),
            None => Network { hook: ParentHook::Tc, ..network.clone() },
        };
        return port::attach_programs(instance, &network, None, peer.unwrap_or_default(), endpoint);
    }
    let netns = Netns::locate(&endpoint.at.netns)?;
    let peer = Netlink::connect_in(&netns)?.require_device(&endpoint.at.ifname).await?;
    port::attach_programs(instance, network, Some(&netns), peer.index, endpoint)
}

/// Installs the whole datapath anew from the state: every link and map pin goes, then `rebuild`. Programs hold the
/// maps of their own load, so new maps mean every program attached again (counters and learned entries start over).
async fn reinstall(instance: &Instance, state: &State) -> Result<()> {
    for link in instance.pins.link_pins()? {
        unpin(&link)?;
    }
    Tables::new(&instance.pins).unpin_all()?;
    rebuild(instance, state).await
}

/// Removes everything the datapath holds for a network id the state does not know, and the ports of that network.
/// Returns whether there was anything to remove.
async fn remove_orphan_network(instance: &Instance, state: &State, id: u32) -> Result<bool> {
    let tables = Tables::new(&instance.pins);
    if !tables.exist() {
        return Ok(false);
    }
    for (port, config) in tables.endpoints()? {
        if config.network_id == id {
            remove_orphan_port(instance, port).await?;
        }
    }
    tables.delete_network_fdb(id)?;
    for (key, network_id) in tables.vnis()? {
        if network_id == id {
            tables.delete_vni(key)?;
        }
    }
    for key in tables.source_macs()?.into_iter().filter(|key: &MacKey| key.network_id == id) {
        tables.delete_source_mac(key)?;
    }
    for (key, owner) in tables.ip_entries()? {
        if owner.network_id == id {
            tables.delete_ip(key)?;
        }
    }
    tables.delete_vteps(id)?;
    // Parents only that network used lose their programs; the others get their configuration from the state.
    // One parent has an entry per VLAN.
    let parents: std::collections::BTreeSet<u32> = tables.parents()?.into_iter().map(|(key, _)| key.ifindex).collect();
    for parent in parents {
        driver::release_parent(instance, &tables, state, parent)?;
    }
    driver::forget_network(instance, &tables, state, id).await?;
    Ok(true)
}

/// Removes a port the state does not know: its programs, its entries, and its host-side device if it is one of
/// xlan's (named `xl<network>p<n>`).
async fn remove_orphan_port(instance: &Instance, port: u32) -> Result<bool> {
    let tables = Tables::new(&instance.pins);
    detach(&instance.pins, &link_names::port(port, "tc"))?;
    detach(&instance.pins, &link_names::port(port, "xdp"))?;
    // Before its entry goes (it holds the slot): the next endpoint given the slot must not inherit its groups. The
    // groups this deletes are not asked about again: the port's network may be unknown too, and only a join racing
    // this repair could be lost with them.
    port::forget_groups(instance, &tables, port)?;
    tables.delete_endpoint(port)?;
    tables.delete_port(port)?;
    let devices = instance.netlink.device_names().await?;
    if devices.get(&port).is_some_and(|name| VethNames::is_host_name(name)) {
        instance.netlink.delete(port).await?;
    }
    Ok(true)
}
