//! `/metrics` in Prometheus' text exposition format: what `xlan stats`, `xlan fdb show` and `xlan doctor` tell,
//! read afresh from the pinned maps and the state at every scrape (a registry per scrape: the datapath's per-CPU
//! counters are the source of truth, nothing is kept in between).
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use xlan::{
    check::Finding,
    instance::Instance,
    model::{DriverSettings, Endpoint, Network},
    ops::{doctor, fdb, network, stats},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    network: String,
    /// Docker's endpoint id for Docker's endpoints; ifname@netns for the others.
    endpoint: String,
    driver: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    network: String,
    endpoint: String,
    driver: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NetworkLabels {
    network: String,
    driver: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FdbLabels {
    network: String,
    driver: String,
    state: String,
}

/// The exposition text, or the one line saying why there is none.
pub async fn render(instance: &Instance) -> Result<String, String> {
    let report = doctor::examine(instance).await.map_err(|e| e.to_string())?;
    let mut registry = Registry::default();
    let findings = Gauge::<i64>::default();
    findings.set(report.findings.len() as i64);
    registry.register(
        "xlan_state_findings",
        "Disagreements between the state and the datapath or the host's devices (xlan doctor lists them)",
        findings,
    );
    let loaded = Gauge::<i64>::default();
    let maps_missing =
        report.findings.iter().any(|f| matches!(f, Finding::MapsMissing | Finding::StateUnreadable { .. }));
    loaded.set(i64::from(!maps_missing));
    registry.register(
        "xlan_datapath_loaded",
        "1 when the datapath's maps are pinned and the state is readable",
        loaded,
    );
    if maps_missing {
        return encoded(&registry);
    }

    let networks = match network::list(instance).await {
        Ok(networks) => networks,
        // The operations refuse an instance whose state and datapath disagree: the findings above say so.
        Err(xlan::Error::Inconsistent { .. }) => return encoded(&registry),
        Err(error) => return Err(error.to_string()),
    };
    let driver_of = |name: &str| {
        networks.iter().find(|n| n.name == name).map_or_else(String::new, |n| n.driver_kind().word().to_string())
    };
    let attached = Family::<NetworkLabels, Gauge>::default();
    registry.register(
        "xlan_network_attached",
        "1 when the network's parent programs are attached and its entries are in the datapath",
        attached.clone(),
    );
    for network in &networks {
        let broken = report.findings.iter().any(|finding| names_network(finding, &network.name));
        attached.get_or_create(&network_labels(network)).set(i64::from(!broken));
    }

    let fdb_entries = Family::<FdbLabels, Gauge>::default();
    registry.register(
        "xlan_network_fdb_entries",
        "Forwarding entries by state: endpoints' MACs (ipvlan: addresses and routes); on VXLAN as `xlan fdb show`",
        fdb_entries.clone(),
    );
    for network in networks.iter().filter(|n| n.vxlan().is_none()) {
        let entries = match &network.driver {
            DriverSettings::Ipvlan(settings) => {
                network.endpoints.iter().map(|e| e.addresses.len()).sum::<usize>() + settings.routes.len()
            }
            _ => network.endpoints.len(),
        };
        let labels =
            FdbLabels { network: network.name.clone(), driver: driver_of(&network.name), state: "static".into() };
        fdb_entries.get_or_create(&labels).set(entries as i64);
    }
    if networks.iter().any(|n| n.vxlan().is_some()) {
        for row in fdb::show(instance, None).await.map_err(|e| e.to_string())? {
            let state =
                serde_json::to_value(row.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let labels = FdbLabels { network: row.network.clone(), driver: driver_of(&row.network), state };
            fdb_entries.get_or_create(&labels).inc();
        }
    }

    let counter = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<EndpointLabels, Counter>::default();
        registry.register(name, help, family.clone());
        family
    };
    let rx_packets =
        counter(&mut registry, "xlan_endpoint_rx_packets", "Packets the datapath delivered to the endpoint");
    let rx_bytes = counter(&mut registry, "xlan_endpoint_rx_bytes", "Bytes the datapath delivered to the endpoint");
    let tx_packets = counter(&mut registry, "xlan_endpoint_tx_packets", "Packets the endpoint sent into the datapath");
    let tx_bytes = counter(&mut registry, "xlan_endpoint_tx_bytes", "Bytes the endpoint sent into the datapath");
    let drops = Family::<DropLabels, Counter>::default();
    registry.register(
        "xlan_endpoint_drops",
        "Frames of or to the endpoint the datapath dropped, by reason",
        drops.clone(),
    );
    for row in stats::endpoints(instance, None).await.map_err(|e| e.to_string())? {
        let endpoint = networks
            .iter()
            .find(|n| n.name == row.network)
            .and_then(|n| n.endpoint(&row.endpoint))
            .map_or_else(|| row.endpoint.to_string(), endpoint_label);
        let labels = EndpointLabels { network: row.network.clone(), endpoint, driver: driver_of(&row.network) };
        rx_packets.get_or_create(&labels).inc_by(row.rx_packets);
        rx_bytes.get_or_create(&labels).inc_by(row.rx_bytes);
        tx_packets.get_or_create(&labels).inc_by(row.tx_packets);
        tx_bytes.get_or_create(&labels).inc_by(row.tx_bytes);
        for (reason, count) in &row.drops {
            let labels = DropLabels {
                network: labels.network.clone(),
                endpoint: labels.endpoint.clone(),
                driver: labels.driver.clone(),
                reason: (*reason).to_string(),
            };
            drops.get_or_create(&labels).inc_by(*count);
        }
    }
    let spread = stats::spread(instance).await.map_err(|e| e.to_string())?;
    for (name, help, count) in [
        ("xlan_broadcast_shares_handed_off", "Shares of a broadcast's copies handed to another CPU", spread.handed_off),
        (
            "xlan_broadcast_shares_made_here",
            "Shares of a broadcast's copies made on the receiving CPU because the other CPU's backlog was full",
            spread.made_here,
        ),
        (
            "xlan_broadcast_backlog_refused",
            "Broadcast copies a full backlog refused, sent through the endpoints' own rings instead",
            spread.backlog_refused,
        ),
    ] {
        let counter = Counter::<u64>::default();
        counter.inc_by(count);
        registry.register(name, help, counter);
    }
    encoded(&registry)
}

fn encoded(registry: &Registry) -> Result<String, String> {
    let mut text = String::new();
    encode(&mut text, registry).map_err(|e| format!("encoding the metrics: {e}"))?;
    Ok(text)
}

fn network_labels(network: &Network) -> NetworkLabels {
    NetworkLabels { network: network.name.clone(), driver: network.driver_kind().word().to_string() }
}

/// Docker's endpoint id for an endpoint handed over to Docker (its `at.netns`), ifname@netns for the others.
fn endpoint_label(endpoint: &Endpoint) -> String {
    match endpoint.placement.handed_over() {
        Some(_) => endpoint.at.netns.clone(),
        None => endpoint.at.to_string(),
    }
}

/// True for a finding that says the network does not forward as its state says.
fn names_network(finding: &Finding, name: &str) -> bool {
    match finding {
        Finding::NetworkNotInDatapath { network }
        | Finding::NetworkConfigDiffers { network }
        | Finding::EntriesMissing { network, .. }
        | Finding::ParentMissing { network, .. }
        | Finding::ParentReplaced { network, .. }
        | Finding::ParentProgramsMissing { network, .. } => network == name,
        _ => false,
    }
}
