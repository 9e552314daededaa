//! A VXLAN network's forwarding table in the words of bridge(8): static entries (MAC → VTEP), the flood list (the
//! all-zero MAC, as `bridge fdb append 00:00:00:00:00:00 dst IP`), and what the datapath learned, with its age.
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::{
    datapath::maps::Tables,
    driver::vxlan::{self, mac_key, remote_entry, validate_vtep, vtep_list},
    error::{Error, Result},
    instance::Instance,
    mac::Mac,
    model::{DriverSettings, Flood, Network, StaticFdb, Vxlan},
    session::Session,
};

/// Adds a static entry `mac` → `dst`, or with the all-zero MAC the VTEP `dst` to the flood list.
pub async fn add(instance: &Instance, network_name: &str, mac: Mac, dst: Ipv4Addr) -> Result<()> {
    let mut session = Session::open(instance).await?;
    let state = &mut session.state;
    let network = state.network_mut(network_name)?;
    let mut settings = vxlan_of(network)?.clone();
    validate_vtep(dst)?;
    let tables = Tables::new(&instance.pins);
    if mac == Mac::ZERO {
        let Flood::Remotes(remotes) = &mut settings.flood else { return Err(Error::RemoteWithGroup) };
        if !remotes.contains(&dst) {
            remotes.push(dst);
            tables.put_vteps(network.id, vtep_list(remotes))?;
        }
    } else {
        let mac = mac.require_unicast()?;
        if network.endpoints.iter().any(|e| e.mac == mac) {
            return Err(Error::FdbLocal { mac, network: network.name.clone() });
        }
        tables.put_fdb(mac_key(network, mac), remote_entry(dst))?;
        settings.fdb.retain(|e| e.mac != mac);
        settings.fdb.push(StaticFdb { mac, dst });
    }
    vxlan::manage_neighbour(instance, network.parent.ifindex, &mut settings, dst).await?;
    network.driver = DriverSettings::Vxlan(settings);
    session.save()
}

/// Removes an entry (static or learned; with `dst`, only if it points there), or with the all-zero MAC the VTEP
/// `dst` from the flood list.
pub async fn del(instance: &Instance, network_name: &str, mac: Mac, dst: Option<Ipv4Addr>) -> Result<()> {
    let mut session = Session::open(instance).await?;
    let state = &mut session.state;
    let network = state.network_mut(network_name)?;
    let mut settings = vxlan_of(network)?.clone();
    let tables = Tables::new(&instance.pins);
    let released = if mac == Mac::ZERO {
        let dst = dst.ok_or(Error::FloodEntryNeedsVtep)?;
        let not_found = || Error::FdbNotFound { entry: format!("{mac} dst {dst}"), network: network.name.clone() };
        let Flood::Remotes(remotes) = &mut settings.flood else { return Err(not_found()) };
        if !remotes.contains(&dst) {
            return Err(not_found());
        }
        remotes.retain(|ip| *ip != dst);
        tables.put_vteps(network.id, vtep_list(remotes))?;
        Some(dst)
    } else {
        let key = mac_key(network, mac);
        let entry = tables.fdb_entry(key)?;
        let matches = entry.is_some_and(|e| e.ifindex == 0 && dst.is_none_or(|d| e.remote_ip == vxlan::ip_key(d)));
        if !matches {
            let entry = dst.map_or(mac.to_string(), |d| format!("{mac} dst {d}"));
            return Err(Error::FdbNotFound { entry, network: network.name.clone() });
        }
        tables.delete_fdb(key)?;
        let static_dst = settings.fdb.iter().find(|e| e.mac == mac).map(|e| e.dst);
        settings.fdb.retain(|e| e.mac != mac);
        static_dst
    };
    if let Some(vtep) = released {
        vxlan::release_neighbour(instance, network.parent.ifindex, &mut settings, vtep).await?;
    }
    network.driver = DriverSettings::Vxlan(settings);
    session.save()
}

/// How an FDB entry got there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FdbState {
    Static,
    Learned,
}

/// One entry of a VXLAN network's forwarding table.
#[derive(Clone, Debug, Serialize)]
pub struct FdbRow {
    pub network: String,
    pub mac: Mac,
    /// The VTEP behind the MAC (or, with the all-zero MAC, one of the flood list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<Ipv4Addr>,
    /// A local endpoint, as ip(8) names it: ifname@netns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub state: FdbState,
    /// Seconds since a learned entry last saw traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<u64>,
}

/// The FDB of the named VXLAN network (or of every VXLAN network).
pub async fn show(instance: &Instance, network: Option<&str>) -> Result<Vec<FdbRow>> {
    let session = Session::open(instance).await?;
    let state = &session.state;
    let networks: Vec<&Network> = match network {
        Some(name) => {
            let network = state.network(name)?;
            vxlan_of(network)?;
            vec![network]
        }
        None => state.networks.iter().filter(|n| n.vxlan().is_some()).collect(),
    };
    let tables = Tables::new(&instance.pins);
    let now = monotonic_ns();
    let mut rows = Vec::new();
    for network in networks {
        let settings = vxlan_of(network)?;
        let row =
            |mac, dst, endpoint, state, age| FdbRow { network: network.name.clone(), mac, dst, endpoint, state, age };
        for remote in settings.flood.remotes() {
            rows.push(row(Mac::ZERO, Some(*remote), None, FdbState::Static, None));
        }
        let mut entries = tables.fdb_entries(network.id)?;
        entries.sort_by_key(|(key, _)| key.mac);
        for (key, entry) in entries {
            let mac = Mac(key.mac);
            if entry.ifindex != 0 {
                let endpoint = network.endpoints.iter().find(|e| e.host.ifindex == entry.ifindex);
                rows.push(row(mac, None, endpoint.map(|e| e.at.to_string()), FdbState::Static, None));
                continue;
            }
            let dst = Some(Ipv4Addr::from(entry.remote_ip.to_ne_bytes()));
            if entry.is_static() {
                rows.push(row(mac, dst, None, FdbState::Static, None));
                continue;
            }
            let age_secs = now.saturating_sub(entry.last_seen_ns) / 1_000_000_000;
            // Expired entries are gone for the datapath already (it removes them when it meets them).
            if age_secs <= u64::from(settings.ageing) {
                rows.push(row(mac, dst, None, FdbState::Learned, Some(age_secs)));
            }
        }
    }
    Ok(rows)
}

fn vxlan_of(network: &Network) -> Result<&Vxlan> {
    network.vxlan().ok_or(Error::NotVxlan { network: network.name.clone(), driver: network.driver_kind() })
}

/// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns().
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the struct.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
