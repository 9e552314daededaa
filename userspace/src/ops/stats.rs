//! Per-endpoint counters: what the datapath delivered to each endpoint and what it sent, and its drops by reason.
use std::collections::BTreeMap;

use datapath_common::{DROP_REASONS, DROP_REASON_NAMES};
use serde::Serialize;

use crate::{
    datapath::maps::Tables,
    error::Result,
    instance::Instance,
    mac::Mac,
    model::{EndpointRef, Network},
    session::Session,
};

#[derive(Clone, Debug, Serialize)]
pub struct EndpointCounters {
    pub network: String,
    #[serde(flatten)]
    pub endpoint: EndpointRef,
    pub host_ifname: String,
    pub mac: Mac,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Drops of frames the endpoint sent or was sent, by reason name.
    pub drops: BTreeMap<&'static str, u64>,
}

impl EndpointCounters {
    /// Drops of every reason.
    pub fn dropped(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// Counters of every endpoint of the named network (or of all networks).
pub async fn endpoints(instance: &Instance, network: Option<&str>) -> Result<Vec<EndpointCounters>> {
    let session = Session::open(instance).await?;
    let state = &session.state;
    let networks: Vec<&Network> = match network {
        Some(name) => vec![state.network(name)?],
        None => state.networks.iter().collect(),
    };
    let tables = Tables::new(&instance.pins);
    let mut rows = Vec::new();
    for network in networks {
        for endpoint in &network.endpoints {
            let stats = tables.stats(endpoint.host.ifindex)?;
            rows.push(EndpointCounters {
                network: network.name.clone(),
                endpoint: endpoint.at.clone(),
                host_ifname: endpoint.host.ifname.clone(),
                mac: endpoint.mac,
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

fn drops_by_name(drops: &[u64; DROP_REASONS]) -> BTreeMap<&'static str, u64> {
    DROP_REASON_NAMES.iter().copied().zip(drops.iter().copied()).collect()
}
