//! What `network list|show` and `stats` print: ip(8)/docker-like text, or JSON with `--json`.
use datapath_common::{DROP_REASONS, DROP_REASON_NAMES};
use serde::Serialize;
use serde_json::json;

use crate::{
    error::Result,
    instance::Instance,
    maps::Tables,
    state::{Network, State},
};

pub fn network_list(state: &State, as_json: bool) -> String {
    if as_json {
        let rows: Vec<_> = state.networks.iter().map(network_summary).collect();
        return serde_json::to_string_pretty(&rows).expect("plain data serialises");
    }
    let mut out = format!("{:<16} {:<8} {:<9} {:<12} {}\n", "NAME", "DRIVER", "MODE", "PARENT", "ENDPOINTS");
    for n in &state.networks {
        let mode = match (n.vxlan(), n.ipvlan()) {
            (Some(v), _) => format!("vni {}", v.vni),
            (_, Some(i)) => format!("{} {}", i.mode, i.flag),
            _ => n.mode.to_string(),
        };
        out += &format!("{:<16} {:<8} {:<9} {:<12} {}\n", n.name, n.driver, mode, n.parent, n.endpoints.len());
    }
    out
}

fn network_summary(network: &Network) -> serde_json::Value {
    json!({
        "name": network.name,
        "driver": network.driver,
        "mode": network.mode,
        "vni": network.vxlan().map(|v| v.vni),
        "parent": network.parent,
        "host_access": network.host_access,
        "endpoints": network.endpoints.len(),
    })
}

pub fn network_show(network: &Network, as_json: bool) -> String {
    if as_json {
        return serde_json::to_string_pretty(network).expect("plain data serialises");
    }
    let kind = match network.vxlan() {
        Some(v) => {
            let flood = match v.group {
                Some(group) => format!(" group {group}"),
                None => v.remotes.iter().map(|r| format!(" remote {r}")).collect(),
            };
            let learning = if v.learning { format!(" learning ageing {}", v.ageing) } else { " nolearning".into() };
            format!("vni {} local {} dstport {}{flood}{learning}", v.vni, v.local, v.dstport)
        }
        None => match network.ipvlan() {
            Some(settings) => format!("mode {} {}", settings.mode, settings.flag),
            None => format!("mode {}{}", network.mode, if network.host_access { " host-access" } else { "" }),
        },
    };
    let mut out = format!(
        "{}: driver {} {kind} parent {} (ifindex {}, {}) hook {}\n",
        network.name, network.driver, network.parent, network.parent_ifindex, network.parent_mac, network.parent_hook,
    );
    for e in &network.endpoints {
        out += &format!(
            "    endpoint {}@{} link/ether {} host-side {}{}\n",
            e.ifname,
            e.netns,
            e.mac,
            e.host_ifname,
            e.ips.iter().map(|ip| format!(" inet {ip}")).collect::<String>()
        );
    }
    for route in network.ipvlan().map(|s| s.routes.as_slice()).unwrap_or_default() {
        out += &format!("    route {} dev {}@{}\n", route.cidr, route.ifname, route.netns);
    }
    if !network.source_macs.is_empty() {
        let macs: Vec<String> = network.source_macs.iter().map(ToString::to_string).collect();
        out += &format!("    macaddr {}\n", macs.join(" "));
    }
    out
}

#[derive(Serialize)]
pub struct EndpointCounters {
    pub network: String,
    pub netns: String,
    pub ifname: String,
    pub host_ifname: String,
    pub mac: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: serde_json::Map<String, serde_json::Value>,
}

/// Counters of every endpoint of the named network (or of all networks).
pub fn counters(instance: &Instance, state: &State, network: Option<&str>) -> Result<Vec<EndpointCounters>> {
    let networks: Vec<&Network> = match network {
        Some(name) => vec![state.network(name)?],
        None => state.networks.iter().collect(),
    };
    let tables = Tables::new(&instance.pins);
    let mut rows = Vec::new();
    for network in networks {
        for e in &network.endpoints {
            let stats = tables.stats(e.host_ifindex)?;
            rows.push(EndpointCounters {
                network: network.name.clone(),
                netns: e.netns.clone(),
                ifname: e.ifname.clone(),
                host_ifname: e.host_ifname.clone(),
                mac: e.mac.to_string(),
                rx_packets: stats.rx_packets,
                rx_bytes: stats.rx_bytes,
                tx_packets: stats.tx_packets,
                tx_bytes: stats.tx_bytes,
                drops: drops_by_name(&stats.drops),
            });
        }
    }
    Ok(rows)
}

fn drops_by_name(drops: &[u64; DROP_REASONS]) -> serde_json::Map<String, serde_json::Value> {
    DROP_REASON_NAMES.iter().zip(drops).map(|(name, count)| (name.to_string(), json!(count))).collect()
}

pub fn counters_text(rows: &[EndpointCounters]) -> String {
    let mut out = format!(
        "{:<12} {:<20} {:>10} {:>12} {:>10} {:>12} {:>7}\n",
        "NETWORK", "ENDPOINT", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES", "DROPS"
    );
    for r in rows {
        let dropped: u64 = r.drops.values().filter_map(|v| v.as_u64()).sum();
        out += &format!(
            "{:<12} {:<20} {:>10} {:>12} {:>10} {:>12} {:>7}\n",
            r.network,
            format!("{}@{}", r.ifname, r.netns),
            r.rx_packets,
            r.rx_bytes,
            r.tx_packets,
            r.tx_bytes,
            dropped
        );
    }
    out
}
