//! Everything `xlan` prints: ip(8)/bridge(8)/docker-like text, or JSON with `--json`, from the library's typed
//! results.
use std::io::Write as _;

use serde::Serialize;
use serde_json::json;
use xlan::{
    model::{DriverSettings, IpRoute, Network, Pending},
    ops::{
        doctor::Report,
        fdb::{FdbRow, FdbState},
        mdb::MdbRow,
        restore::Restored,
        stats::{EndpointCounters, SpreadCounters},
        upgrade::Upgraded,
    },
};

/// What a command prints on stdout.
pub struct Output {
    pub text: String,
}

impl Output {
    pub fn none() -> Self {
        Output { text: String::new() }
    }

    fn lines(mut text: String) -> Self {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        Output { text }
    }

    fn json(value: &impl Serialize) -> Self {
        // Plain data (strings, numbers, maps with string keys) always serialises.
        Output::lines(serde_json::to_string_pretty(value).unwrap_or_default())
    }
}

/// Writes to stdout; a reader that went away (`xlan … | head`) is normal use, not an error.
pub fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// `network list`.
pub fn network_list(networks: &[Network], as_json: bool) -> Output {
    if as_json {
        let rows: Vec<_> = networks.iter().map(network_summary).collect();
        return Output::json(&rows);
    }
    // A VLAN network's parent reads `eth0.10`, as the user named it: the VLAN needs no column of its own.
    let mut out = format!("{:<16} {:<8} {:<9} {:<12} {}\n", "NAME", "DRIVER", "MODE", "PARENT", "ENDPOINTS");
    for n in networks {
        let mode = match &n.driver {
            DriverSettings::Vxlan(v) => format!("vni {}", v.vni),
            DriverSettings::Ipvlan(i) => format!("{} {}", i.mode, i.flag),
            DriverSettings::Macvlan(m) => m.mode.to_string(),
        };
        let driver = n.driver_kind();
        out += &format!("{:<16} {driver:<8} {mode:<9} {:<12} {}\n", n.name, n.parent, n.endpoints.len());
    }
    Output::lines(out)
}

fn network_summary(network: &Network) -> serde_json::Value {
    let (mode, vni) = match &network.driver {
        DriverSettings::Macvlan(m) => (m.mode.to_string(), None),
        DriverSettings::Ipvlan(i) => (i.mode.to_string(), None),
        DriverSettings::Vxlan(v) => ("bridge".to_string(), Some(v.vni)),
    };
    json!({
        "name": network.name,
        "driver": network.driver_kind(),
        "mode": mode,
        "vni": vni,
        "parent": network.parent.name,
        "vlan": network.parent.vlan,
        "host_access": network.macvlan().is_some_and(|m| m.host_access),
        "endpoints": network.endpoints.len(),
    })
}

/// `network show`.
pub fn network_show(network: &Network, as_json: bool) -> Output {
    if as_json {
        return Output::json(network);
    }
    let kind = match &network.driver {
        DriverSettings::Vxlan(v) => {
            let flood = match v.flood.group() {
                Some(group) => format!(" group {group}"),
                None => v.flood.remotes().iter().map(|r| format!(" remote {r}")).collect(),
            };
            let learning = if v.learning { format!(" learning ageing {}", v.ageing) } else { " nolearning".into() };
            format!("vni {} local {} dstport {}{flood}{learning}", v.vni, v.local, v.dstport)
        }
        DriverSettings::Ipvlan(settings) => format!("mode {} {}", settings.mode, settings.flag),
        DriverSettings::Macvlan(settings) => {
            format!("mode {}{}", settings.mode, if settings.host_access { " host-access" } else { "" })
        }
    };
    let parent = &network.parent;
    let mut out = format!(
        "{}: driver {} {kind} parent {}{} (ifindex {}, {}) hook {}\n",
        network.name,
        network.driver_kind(),
        parent.name,
        parent.vlan.map_or(String::new(), |vlan| format!(" vlan {vlan}")),
        parent.ifindex,
        parent.mac,
        network.hook,
    );
    for subnet in &network.subnets {
        out += &format!("    subnet {}", subnet.subnet);
        if let Some(gateway) = subnet.gateway {
            out += &format!(" gateway {gateway}");
        }
        if let Some(range) = subnet.ip_range {
            out += &format!(" ip-range {range}");
        }
        for aux in &subnet.aux_addresses {
            out += &format!(" aux-address {}={}", aux.name, aux.address);
        }
        out.push('\n');
    }
    for e in &network.endpoints {
        let addresses: String = e.addresses.iter().map(|net| format!(" inet {net}")).collect();
        out += &format!("    endpoint {} link/ether {} host-side {}{addresses}\n", e.at, e.mac, e.host.ifname);
    }
    for route in network.ipvlan().map(|s| s.routes.as_slice()).unwrap_or_default() {
        out += &format!("    route {} dev {}\n", route.prefix, route.endpoint);
    }
    if let Some(macvlan) = network.macvlan().filter(|m| !m.source_macs.is_empty()) {
        let macs: Vec<String> = macvlan.source_macs.iter().map(ToString::to_string).collect();
        out += &format!("    macaddr {}\n", macs.join(" "));
    }
    Output::lines(out)
}

/// `fdb show`, like `bridge fdb show`.
pub fn fdb_show(rows: &[FdbRow], as_json: bool) -> Output {
    if as_json {
        return Output::json(&rows);
    }
    let mut out = String::new();
    for r in rows {
        out += &format!("{} dev {}", r.mac, r.network);
        if let Some(endpoint) = &r.endpoint {
            out += &format!(" port {endpoint}");
        }
        if let Some(dst) = r.dst {
            out += &format!(" dst {dst}");
        }
        out += match r.state {
            FdbState::Static => " static",
            FdbState::Learned => " learned",
        };
        if let Some(age) = r.age {
            out += &format!(" age {age}s");
        }
        out.push('\n');
    }
    Output::lines(out)
}

/// `mdb show`, like `bridge mdb show`.
pub fn mdb_show(rows: &[MdbRow], as_json: bool) -> Output {
    if as_json {
        return Output::json(&rows);
    }
    Output::lines(rows.iter().map(|r| format!("dev {} port {} grp {}\n", r.network, r.endpoint, r.group)).collect())
}

/// `route show`, like `ip route`.
pub fn route_show(routes: &[IpRoute], as_json: bool) -> Output {
    if as_json {
        let rows: Vec<_> =
            routes.iter().map(|r| json!({"cidr": r.prefix, "endpoint": r.endpoint.to_string()})).collect();
        return Output::json(&rows);
    }
    Output::lines(routes.iter().map(|r| format!("{} dev {}\n", r.prefix, r.endpoint)).collect())
}

/// `doctor`: one line per finding, marked with what became of it.
pub fn doctor(report: &Report, repair: bool, as_json: bool) -> Output {
    if as_json {
        return Output::json(report);
    }
    let mut out = String::new();
    for recovered in &report.recovered {
        out += &format!("recovered: {}\n", describe_pending(recovered));
    }
    for finding in &report.findings {
        let state = if report.repaired.contains(finding) {
            "repaired"
        } else if repair {
            "remains"
        } else {
            "found"
        };
        out += &format!("{state}: {finding}\n");
    }
    if report.findings.is_empty() {
        out += "ok: the state, the datapath and the devices agree\n";
    }
    Output::lines(out)
}

fn describe_pending(pending: &Pending) -> String {
    match pending {
        Pending::CreateNetwork { network } => format!("undid the unfinished create of network \"{}\"", network.name),
        Pending::AddEndpoint { network, endpoint, .. } => {
            format!("undid the unfinished add of endpoint {} to network \"{network}\"", endpoint.at)
        }
        Pending::DeleteEndpoint { network, endpoint } => {
            format!("finished the delete of endpoint {} of network \"{}\"", endpoint.at, network.name)
        }
        Pending::DeleteNetwork { network } => format!("finished the delete of network \"{}\"", network.name),
    }
}

/// `restore`.
pub fn restored(restored: &Restored, as_json: bool) -> Output {
    if as_json {
        return Output::json(restored);
    }
    let mut out = String::new();
    for network in &restored.networks {
        out += &format!("restored network {network}\n");
    }
    for endpoint in &restored.endpoints {
        out += &format!("restored endpoint {endpoint}\n");
    }
    for skipped in &restored.skipped {
        out += &format!("skipped endpoint {} of network {}: {}\n", skipped.endpoint, skipped.network, skipped.reason);
    }
    Output::lines(out)
}

/// `upgrade`.
pub fn upgraded(upgraded: &Upgraded, as_json: bool) -> Output {
    if as_json {
        return Output::json(upgraded);
    }
    let mut out = String::new();
    for map in &upgraded.new_maps {
        out += &format!("made map {map} (filled from the state)\n");
    }
    for link in &upgraded.replaced {
        out += &format!("replaced {} with {}\n", link.link, link.program);
    }
    for map in &upgraded.removed_maps {
        out += &format!("removed map {map} (no longer used)\n");
    }
    if upgraded.queried_endpoints > 0 {
        out += &format!("asked {} endpoints for their multicast groups\n", upgraded.queried_endpoints);
    }
    for failed in &upgraded.not_queried {
        out += &format!("warning: could not ask {} for its multicast groups: {}\n", failed.endpoint, failed.error);
    }
    for endpoint in &upgraded.queues_set {
        out += &format!("set the broadcast queues of {endpoint} (made by an older xlan)\n");
    }
    for failed in &upgraded.queues_not_set {
        out += &format!(
            "warning: could not set the broadcast queues of {}: {} (its copies keep taking its ring)\n",
            failed.endpoint, failed.error
        );
    }
    Output::lines(out)
}

/// `stats --spread`.
pub fn spread(counters: &SpreadCounters, as_json: bool) -> Output {
    if as_json {
        return Output::json(counters);
    }
    let backlog = format!(
        "broadcast copies a full backlog refused, sent through the endpoints' rings instead: {} (each also a drop \
         in /proc/net/softnet_stat)\n",
        counters.backlog_refused
    );
    if counters.cpus < 2 {
        return Output::lines(format!(
            "broadcast copies are not spread over CPUs (one CPU, or no networks)\n{backlog}"
        ));
    }
    Output::lines(format!(
        "broadcast copies spread over {} CPUs: {} shares handed off, {} made here (the other CPU busy)\n{backlog}",
        counters.cpus, counters.handed_off, counters.made_here
    ))
}

/// `stats`.
pub fn stats(rows: &[EndpointCounters], as_json: bool) -> Output {
    if as_json {
        return Output::json(&rows);
    }
    let mut out = format!(
        "{:<12} {:<20} {:>10} {:>12} {:>10} {:>12} {:>7}\n",
        "NETWORK", "ENDPOINT", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES", "DROPS"
    );
    for r in rows {
        out += &format!(
            "{:<12} {:<20} {:>10} {:>12} {:>10} {:>12} {:>7}\n",
            r.network,
            r.endpoint.to_string(),
            r.rx_packets,
            r.rx_bytes,
            r.tx_packets,
            r.tx_bytes,
            r.dropped()
        );
    }
    Output::lines(out)
}
