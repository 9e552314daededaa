//! Per-endpoint counters: what the datapath delivered to each endpoint and what it sent, and its drops by reason.
use std::collections::BTreeMap;

use datapath_common::{flood_counter, DROP_REASONS, DROP_REASON_NAMES};
use serde::Serialize;

use crate::{
    datapath::maps::Tables, error::Result, instance::Instance, mac::Mac, model::EndpointRef, session::Session,
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
    let networks = session.state.networks_named(network)?;
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

/// How broadcast copies were spread over CPUs (datapath-ebpf's `spread`), since the instance's maps were made.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct SpreadCounters {
    /// The CPUs copies are spread over (fewer than 2: none, every copy is made on the CPU the frame arrived on).
    pub cpus: u32,
    /// Shares of a flood handed to another CPU.
    pub handed_off: u64,
    /// Shares made on the receiving CPU after all, because the other CPU's backlog was full or already held
    /// `WHOLE_FLOODS_WAITING` whole floods of this CPU.
    pub made_here: u64,
    /// Copies a CPU's full backlog refused, sent through their endpoints' own rings instead (with that CPU's floods
    /// for the next millisecond). Each is also a drop in /proc/net/softnet_stat that no copy suffered.
    pub backlog_refused: u64,
}

pub async fn spread(instance: &Instance) -> Result<SpreadCounters> {
    let _session = Session::open(instance).await?;
    let tables = Tables::new(&instance.pins);
    if !tables.exist() {
        return Ok(SpreadCounters::default());
    }
    let counts = tables.flood_counts()?;
    Ok(SpreadCounters {
        cpus: tables.spreader()?.cpus,
        handed_off: counts[flood_counter::HANDED_OFF as usize],
        made_here: counts[flood_counter::MADE_HERE as usize],
        backlog_refused: counts[flood_counter::BACKLOG_REFUSED as usize],
    })
}

fn drops_by_name(drops: &[u64; DROP_REASONS]) -> BTreeMap<&'static str, u64> {
    DROP_REASON_NAMES.iter().copied().zip(drops.iter().copied()).collect()
}
