//! The multicast groups endpoints joined, in the words of `bridge mdb`: which port (endpoint) is in which group.
//! The datapath learns them from the endpoints' IGMP and MLD reports; multicast to a group goes only to its
//! members, and to every endpoint while none of the network's endpoints is one.
use std::net::IpAddr;

use datapath_common::map_names;

use serde::Serialize;

use crate::{datapath::maps::Tables, error::Result, instance::Instance, session::Session};

/// One endpoint's membership of one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MdbRow {
    pub network: String,
    pub group: IpAddr,
    /// The member, as ip(8) names it: ifname@netns.
    pub endpoint: String,
}

/// The memberships of the named network's endpoints (or of every network's), by network, group and endpoint.
pub async fn show(instance: &Instance, network: Option<&str>) -> Result<Vec<MdbRow>> {
    let session = Session::open(instance).await?;
    let networks = session.state.networks_named(network)?;
    let tables = Tables::new(&instance.pins);
    let mut rows = Vec::new();
    // No network, or a datapath from before groups were kept (until `xlan upgrade`): no memberships.
    if networks.is_empty() || !instance.pins.map(map_names::GROUPS).exists() {
        return Ok(rows);
    }
    let groups = tables.all_groups()?;
    for network in networks {
        // Only the network's endpoints of now: a removed endpoint's slot may still be marked (`GroupMembers`).
        let ports: Vec<u32> = network.endpoints.iter().map(|endpoint| endpoint.host.ifindex).collect();
        let members: Vec<(u32, String)> = tables
            .slots(&ports)?
            .into_iter()
            .zip(&network.endpoints)
            .map(|(slot, e)| (slot, e.at.to_string()))
            .collect();
        for (key, group_members) in groups.iter().filter(|(key, _)| key.network_id == network.id) {
            let group = key.address();
            for (_, endpoint) in members.iter().filter(|(slot, _)| *slot != 0 && group_members.has(*slot)) {
                rows.push(MdbRow { network: network.name.clone(), group, endpoint: endpoint.clone() });
            }
        }
    }
    rows.sort_by(|a, b| (&a.network, a.group, &a.endpoint).cmp(&(&b.network, b.group, &b.endpoint)));
    Ok(rows)
}
