//! `xlan fdb add|del|show`: a VXLAN network's forwarding table in the words of bridge(8): static entries
//! (MAC → VTEP), the flood list (the all-zero MAC, as `bridge fdb append 00:00:00:00:00:00 dst IP`), and
//! what the datapath learned, with its age.
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::{
    error::{Error, Result},
    instance::Instance,
    mac::Mac,
    maps::Tables,
    state::{Network, StaticFdb, Vxlan},
    vxlan::{self, mac_key, remote_entry, validate_vtep, vtep_list},
};

const ALL_ZERO: Mac = Mac([0; 6]);

pub async fn add(instance: &Instance, network_name: &str, mac: &str, dst: Option<Ipv4Addr>) -> Result<()> {
    let store = instance.store()?;
    let mut state = store.load()?;
    let network = state.network_mut(network_name)?;
    let mut settings = vxlan_of(network)?.clone();
    let mac: Mac = mac.parse()?;
    let dst = dst.ok_or_else(|| Error::MissingDst("fdb add".into()))?;
    validate_vtep(dst)?;
    let tables = Tables::new(&instance.pins);
    if mac == ALL_ZERO {
        if settings.group.is_some() {
            return Err(Error::RemoteWithGroup);
        }
        if !settings.remotes.contains(&dst) {
            settings.remotes.push(dst);
            tables.put_vteps(network.id, vtep_list(&settings.remotes))?;
        }
    } else {
        let mac = Mac::parse_unicast(&mac.to_string())?;
        if network.endpoints.iter().any(|e| e.mac == mac) {
            return Err(Error::FdbLocal(mac.to_string(), network.name.clone()));
        }
        tables.put_fdb(mac_key(network, mac), remote_entry(dst))?;
        settings.fdb.retain(|e| e.mac != mac);
        settings.fdb.push(StaticFdb { mac, dst });
    }
    vxlan::manage_neighbour(instance, network.parent_ifindex, &mut settings, dst).await?;
    network.vxlan = Some(settings);
    store.save(&state)
}

pub async fn del(instance: &Instance, network_name: &str, mac: &str, dst: Option<Ipv4Addr>) -> Result<()> {
    let store = instance.store()?;
    let mut state = store.load()?;
    let network = state.network_mut(network_name)?;
    let mut settings = vxlan_of(network)?.clone();
    let mac: Mac = mac.parse()?;
    let tables = Tables::new(&instance.pins);
    let released = if mac == ALL_ZERO {
        let dst = dst.ok_or_else(|| Error::MissingDst("fdb del 00:00:00:00:00:00".into()))?;
        if !settings.remotes.contains(&dst) {
            return Err(Error::FdbNotFound(format!("{mac} dst {dst}"), network.name.clone()));
        }
        settings.remotes.retain(|ip| *ip != dst);
        tables.put_vteps(network.id, vtep_list(&settings.remotes))?;
        Some(dst)
    } else {
        let key = mac_key(network, mac);
        let entry = tables.fdb_entries(network.id)?.into_iter().find(|(k, _)| *k == key).map(|(_, e)| e);
        let matches = entry.is_some_and(|e| e.ifindex == 0 && dst.is_none_or(|d| e.remote_ip == vxlan::ip_key(d)));
        if !matches {
            let what = dst.map_or(mac.to_string(), |d| format!("{mac} dst {d}"));
            return Err(Error::FdbNotFound(what, network.name.clone()));
        }
        tables.delete_fdb(key)?;
        let static_dst = settings.fdb.iter().find(|e| e.mac == mac).map(|e| e.dst);
        settings.fdb.retain(|e| e.mac != mac);
        static_dst
    };
    if let Some(vtep) = released {
        vxlan::release_neighbour(instance, network.parent_ifindex, &mut settings, vtep).await?;
    }
    network.vxlan = Some(settings);
    store.save(&state)
}

#[derive(Debug, Serialize)]
pub struct FdbRow {
    pub network: String,
    pub mac: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<Ipv4Addr>,
    /// A local endpoint, as ifname@netns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// "static" or "learned".
    pub state: &'static str,
    /// Seconds since a learned entry last saw traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<u64>,
}

/// The FDB of the named VXLAN network (or of every VXLAN network).
pub fn rows(instance: &Instance, network: Option<&str>) -> Result<Vec<FdbRow>> {
    let state = instance.store()?.load()?;
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
        for remote in &settings.remotes {
            rows.push(row(network, ALL_ZERO, Some(*remote), None, "static", None));
        }
        let mut entries = tables.fdb_entries(network.id)?;
        entries.sort_by_key(|(key, _)| key.mac);
        for (key, entry) in entries {
            let mac = Mac(key.mac);
            if entry.ifindex != 0 {
                let endpoint = network.endpoints.iter().find(|e| e.host_ifindex == entry.ifindex);
                let name = endpoint.map(|e| format!("{}@{}", e.ifname, e.netns));
                rows.push(row(network, mac, None, name, "static", None));
                continue;
            }
            let dst = Some(Ipv4Addr::from(entry.remote_ip.to_ne_bytes()));
            if entry.is_static() {
                rows.push(row(network, mac, dst, None, "static", None));
                continue;
            }
            let age_secs = now.saturating_sub(entry.last_seen_ns) / 1_000_000_000;
            // Expired entries are gone for the datapath already (it removes them when it meets them).
            if age_secs <= settings.ageing as u64 {
                rows.push(row(network, mac, dst, None, "learned", Some(age_secs)));
            }
        }
    }
    Ok(rows)
}

fn row(
    network: &Network,
    mac: Mac,
    dst: Option<Ipv4Addr>,
    endpoint: Option<String>,
    state: &'static str,
    age: Option<u64>,
) -> FdbRow {
    FdbRow { network: network.name.clone(), mac: mac.to_string(), dst, endpoint, state, age }
}

/// `bridge fdb show`-like lines.
pub fn rows_text(rows: &[FdbRow]) -> String {
    let mut out = String::new();
    for r in rows {
        out += &format!("{} dev {}", r.mac, r.network);
        if let Some(endpoint) = &r.endpoint {
            out += &format!(" port {endpoint}");
        }
        if let Some(dst) = r.dst {
            out += &format!(" dst {dst}");
        }
        out += if r.state == "static" { " static" } else { " learned" };
        if let Some(age) = r.age {
            out += &format!(" age {age}s");
        }
        out.push('\n');
    }
    out
}

fn vxlan_of(network: &Network) -> Result<&Vxlan> {
    network.vxlan().ok_or_else(|| Error::NotForDriver("fdb", network.driver.to_string()))
}

/// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns().
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the struct.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
