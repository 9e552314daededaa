//! The scenarios: a path through one kind of virtual LAN, the backends it is measured on and what it measures.
//! A new datapath (vxlan, ipvlan) adds a `LanKind` with its topology and its entries to `catalog`.

use crate::topology::{Family, Node};

use super::metrics::Measurement;
use super::topology::{Backend, LanKind};

#[derive(Debug, Clone)]
pub struct Scenario {
    /// Stable id, the key in report.json and what `--scenario` matches: `<lan>/<path>`.
    pub id: String,
    pub title: String,
    pub lan: LanKind,
    /// Where the generator's frames (and the TCP client, the pings, the UDP requests) come from, and go to.
    pub src: Node,
    pub dst: Node,
    pub backends: Vec<Backend>,
    pub measurements: Vec<Measurement>,
    /// FDB scale: xlan's FDB is filled to this many entries before the scenario runs.
    pub fdb_entries: Option<u32>,
    /// What "limit" means on this path.
    pub limit: &'static str,
}

/// Every scenario, in the order they run (FDB scale last, growing, as filling only adds entries).
pub fn catalog(fdb_sizes: &[u32]) -> Vec<Scenario> {
    let lan = LanKind::MacvlanBridge;
    let path = |path: &str, title: &str, src, dst, limit| Scenario {
        id: format!("{}/{path}", lan.name()),
        title: format!("macvlan bridge: {title}"),
        lan,
        src,
        dst,
        backends: Backend::ALL.to_vec(),
        measurements: Measurement::ALL.to_vec(),
        fdb_entries: None,
        limit,
    };
    let mut scenarios = vec![
        path(
            "outside-endpoint",
            "outside → endpoint",
            Node::Outside,
            Node::Endpoint(1),
            "bare XDP redirect on the parent into the endpoint's veth",
        ),
        path(
            "endpoint-endpoint",
            "endpoint → endpoint",
            Node::Endpoint(1),
            Node::Endpoint(2),
            "bare tcx bpf_redirect_peer from the sender's veth into the receiver",
        ),
    ];
    let wire_path = scenarios[0].clone();
    let mut sizes = fdb_sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    scenarios.extend(sizes.into_iter().map(|entries| Scenario {
        id: format!("{}/fdb-{entries}", lan.name()),
        title: format!("macvlan bridge: outside → endpoint, {entries} FDB entries"),
        backends: vec![Backend::Xlan],
        measurements: vec![Measurement::Pps { flows: 1, family: Family::V4 }],
        fdb_entries: Some(entries),
        limit: "",
        ..wire_path.clone()
    }));
    scenarios
}

/// The scenarios whose id contains one of `filters` (all when there is none).
pub fn select(scenarios: Vec<Scenario>, filters: &[String]) -> Vec<Scenario> {
    scenarios
        .into_iter()
        .filter(|scenario| filters.is_empty() || filters.iter().any(|filter| scenario.id.contains(filter.as_str())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_the_paths_then_growing_fdb_sizes() {
        let ids: Vec<String> = catalog(&[1_000_000, 10, 10]).into_iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            [
                "macvlan-bridge/outside-endpoint",
                "macvlan-bridge/endpoint-endpoint",
                "macvlan-bridge/fdb-10",
                "macvlan-bridge/fdb-1000000"
            ]
        );
        let picked = select(catalog(&[10]), &["fdb".to_string()]);
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].backends, [Backend::Xlan]);
    }
}
