//! Per-endpoint traffic counters: read from `xlan stats --json` (Xlan backend) or from the endpoint interface's own
//! statistics (Kernel backend, so the lab can show the same table for the reference), printed as a table or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::link;
use crate::matrix::Matrix;
use crate::netns::Netns;
use crate::topology::Node;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointCounters {
    pub netns: String,
    pub ifname: String,
    pub mac: String,
    /// Delivered to the endpoint.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Sent by the endpoint.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Drop reason -> count (xlan's reasons; the kernel's rx/tx "dropped" for the Kernel backend).
    pub drops: BTreeMap<String, u64>,
}

impl EndpointCounters {
    /// One element of `xlan stats NET --json`.
    pub fn from_xlan_json(entry: &Value) -> Result<EndpointCounters> {
        let text = |key: &str| {
            entry[key].as_str().map(str::to_string).with_context(|| format!("stats entry without \"{key}\": {entry}"))
        };
        let number =
            |key: &str| entry[key].as_u64().with_context(|| format!("stats entry without numeric \"{key}\": {entry}"));
        let drops = match &entry["drops"] {
            Value::Object(reasons) => reasons
                .iter()
                .map(|(reason, count)| {
                    let count = count.as_u64().with_context(|| format!("non-numeric drop count in {entry}"))?;
                    Ok((reason.clone(), count))
                })
                .collect::<Result<_>>()?,
            Value::Null => BTreeMap::new(),
            other => anyhow::bail!("stats \"drops\" is not an object: {other}"),
        };
        Ok(EndpointCounters {
            netns: text("netns")?,
            ifname: text("ifname")?,
            mac: text("mac")?,
            rx_packets: number("rx_packets")?,
            rx_bytes: number("rx_bytes")?,
            tx_packets: number("tx_packets")?,
            tx_bytes: number("tx_bytes")?,
            drops,
        })
    }

    /// The interface's own statistics (`ip -s link`), whoever implements the endpoint.
    pub fn of_interface(netns: &Netns, ifname: &str) -> Result<EndpointCounters> {
        EndpointCounters::from_ip_link(netns.name(), ifname, &link::show(netns, ifname)?)
    }

    /// An interface's own statistics, from `ip -s -j link show dev IFNAME` in the endpoint namespace.
    pub fn from_ip_link(netns: &str, ifname: &str, link: &Value) -> Result<EndpointCounters> {
        let stats = &link["stats64"];
        let number = |dir: &str, key: &str| {
            stats[dir][key].as_u64().with_context(|| format!("no stats64.{dir}.{key} for {ifname} in {netns}"))
        };
        let drops = [("rx_dropped", number("rx", "dropped")?), ("tx_dropped", number("tx", "dropped")?)]
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(reason, count)| (reason.to_string(), count))
            .collect();
        Ok(EndpointCounters {
            netns: netns.to_string(),
            ifname: ifname.to_string(),
            mac: link["address"].as_str().unwrap_or("?").to_string(),
            rx_packets: number("rx", "packets")?,
            rx_bytes: number("rx", "bytes")?,
            tx_packets: number("tx", "packets")?,
            tx_bytes: number("tx", "bytes")?,
            drops,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "netns": self.netns, "ifname": self.ifname, "mac": self.mac,
            "rx_packets": self.rx_packets, "rx_bytes": self.rx_bytes,
            "tx_packets": self.tx_packets, "tx_bytes": self.tx_bytes,
            "drops": self.drops,
        })
    }
}

/// The counters as a plain-text table, one row per endpoint, labelled with the topology's node names.
pub fn table(rows: &[(Node, EndpointCounters)]) -> String {
    let mut out = format!(
        "{:<6} {:<14} {:<7} {:<17} {:>10} {:>12} {:>10} {:>12}  drops\n",
        "node", "netns", "ifname", "mac", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes"
    );
    for (node, c) in rows {
        // Only the reasons that occurred: xlan reports every reason, mostly with 0.
        let nonzero: Vec<String> = c
            .drops
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(reason, count)| format!("{reason}={count}"))
            .collect();
        let drops = if nonzero.is_empty() { "0".to_string() } else { nonzero.join(",") };
        let _ = writeln!(
            out,
            "{:<6} {:<14} {:<7} {:<17} {:>10} {:>12} {:>10} {:>12}  {}",
            node.to_string(),
            c.netns,
            c.ifname,
            c.mac,
            c.rx_packets,
            c.rx_bytes,
            c.tx_packets,
            c.tx_bytes,
            drops
        );
    }
    out
}

pub fn to_json(rows: &[(Node, EndpointCounters)]) -> Value {
    Value::Array(
        rows.iter()
            .map(|(node, counters)| {
                let mut entry = counters.to_json();
                entry["node"] = json!(node.to_string());
                entry
            })
            .collect(),
    )
}

/// Checks the counters against a measured matrix: an endpoint some probe reached must have received packets, and an
/// endpoint whose probes got through must have sent some. Returns one message per violation.
pub fn check_against_matrix(matrix: &Matrix, rows: &[(Node, EndpointCounters)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (node, counters) in rows {
        let reached = matrix.nodes().iter().any(|&src| matrix.any_probe(src, *node));
        let sent = matrix.nodes().iter().any(|&dst| matrix.any_probe(*node, dst));
        if reached && counters.rx_packets == 0 {
            problems.push(format!("{node} was reached by probes but its rx_packets is 0: {counters:?}"));
        }
        if sent && counters.tx_packets == 0 {
            problems.push(format!("{node}'s probes got through but its tx_packets is 0: {counters:?}"));
        }
    }
    problems
}

/// Fails the calling test unless the counters account for the matrix's traffic ([`check_against_matrix`]); the
/// message names `what` was measured and shows the problems, the matrix and the counters.
pub fn assert_account_for(matrix: &Matrix, rows: &[(Node, EndpointCounters)], what: impl std::fmt::Display) {
    let problems = check_against_matrix(matrix, rows);
    assert!(
        problems.is_empty(),
        "xlan counters do not match the traffic ({what}):\n{}\n{matrix}{}",
        problems.join("\n"),
        table(rows)
    );
}
