//! The scenarios: a path through one kind of virtual LAN, the backends it is measured on and what it measures.

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
    /// FDB scale: xlan's FDB (on the sending side's host) is filled to this many entries before the scenario runs.
    pub fdb_entries: Option<u32>,
    /// What "limit" means on this path.
    pub limit: &'static str,
}

/// Every scenario, in the order they run (FDB scale last, growing per LAN, as filling only adds entries).
pub fn catalog(fdb_sizes: &[u32]) -> Vec<Scenario> {
    use Backend::*;
    let path = |lan: LanKind, path: &str, title: &str, src, dst, backends: &[Backend], limit| Scenario {
        id: format!("{}/{path}", lan.name()),
        title: title.to_string(),
        lan,
        src,
        dst,
        backends: backends.to_vec(),
        measurements: Measurement::ALL.to_vec(),
        fdb_entries: None,
        limit,
    };
    let (e1, e2) = (Node::Endpoint(1), Node::Endpoint(2));
    let macvlan_wire = path(
        LanKind::MacvlanBridge,
        "outside-endpoint",
        "macvlan bridge: outside → endpoint",
        Node::Outside,
        e1,
        // The parent hook decides this path, so both of xlan's are measured, each with its own limit.
        &[Kernel, Xlan, XlanXdp, Limit, LimitXdp],
        "limit: bare tcx bpf_redirect_peer on the parent into the endpoint; limit-xdp: bare XDP redirect on the \
         parent into the endpoint's veth",
    );
    let vxlan_path = path(
        LanKind::Vxlan,
        "endpoint-endpoint",
        "vxlan: endpoint on host A → endpoint on host B",
        e1,
        e2,
        &[Kernel, Xlan, Mixed, Limit],
        "bare tcx redirects along the same hops (e1's veth → A's underlay → B's underlay → e2), no encapsulation",
    );
    let mut scenarios = vec![
        macvlan_wire.clone(),
        path(
            LanKind::MacvlanBridge,
            "endpoint-endpoint",
            "macvlan bridge: endpoint → endpoint",
            e1,
            e2,
            // Endpoint to endpoint does not touch the parent: the hooks are the same path.
            &[Kernel, Xlan, Limit],
            "bare tcx bpf_redirect_peer from the sender's veth into the receiver",
        ),
        vxlan_path.clone(),
        path(
            LanKind::IpvlanL3,
            "outside-endpoint",
            "ipvlan l3: outside → endpoint (kernel: routing through the host)",
            Node::Outside,
            e1,
            &[Kernel, Xlan, Limit],
            "bare tcx bpf_redirect_peer on the parent into the endpoint",
        ),
        path(
            LanKind::IpvlanL3,
            "endpoint-endpoint",
            "ipvlan l3: endpoint → endpoint on another subnet (kernel: routing through the host)",
            e1,
            e2,
            &[Kernel, Xlan, Limit],
            "bare tcx bpf_redirect_peer from the sender's veth into the receiver",
        ),
    ];
    let mut sizes = fdb_sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    for (base, what) in [(&macvlan_wire, "outside → endpoint"), (&vxlan_path, "endpoint on A → endpoint on B")] {
        let lan = base.lan.name();
        let mut measurements = vec![Measurement::Pps { flows: 1, family: Family::V4 }];
        if base.lan == LanKind::Vxlan {
            // Learned entries are what a VXLAN network accumulates, and what deleting it must remove.
            measurements.push(Measurement::NetworkDelete);
        }
        scenarios.extend(sizes.iter().map(|&entries| Scenario {
            id: format!("{lan}/fdb-{entries}"),
            title: format!("{}: {what}, {entries} FDB entries", base.title.split(':').next().unwrap_or(lan)),
            backends: vec![Xlan],
            measurements: measurements.clone(),
            fdb_entries: Some(entries),
            limit: "",
            ..base.clone()
        }));
    }
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
                "vxlan/endpoint-endpoint",
                "ipvlan-l3/outside-endpoint",
                "ipvlan-l3/endpoint-endpoint",
                "macvlan-bridge/fdb-10",
                "macvlan-bridge/fdb-1000000",
                "vxlan/fdb-10",
                "vxlan/fdb-1000000",
            ]
        );
        let picked = select(catalog(&[10]), &["macvlan-bridge/fdb".to_string()]);
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].backends, [Backend::Xlan]);
        assert!(catalog(&[]).iter().all(|s| s.backends[0] == Backend::Kernel));
    }
}
