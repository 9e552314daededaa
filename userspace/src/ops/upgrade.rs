//! Replacing a running datapath's programs with this binary's, without losing a frame: every pinned link is updated
//! in place (BPF_LINK_UPDATE), so each hook switches from the old program to the new one atomically, and the pinned
//! maps — FDB, counters, learned entries — stay as they are. A newer xlan whose maps differ in layout (a map of a new
//! name) has its new maps filled from the state first, so the new programs find everything on their first frame;
//! the pins of maps no program of this binary uses any more are removed afterwards.
use datapath_common::map_names;
use serde::Serialize;

use crate::{
    datapath::{loader::Datapath, pins::unpin},
    driver::port,
    error::Result,
    instance::Instance,
    ops::doctor,
    session::Session,
};

/// What an upgrade did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Upgraded {
    /// Every pinned link, with the program of this binary it runs now.
    pub replaced: Vec<ReplacedLink>,
    /// Maps this binary has that the running datapath had not: made and filled from the state before the switch.
    pub new_maps: Vec<String>,
    /// Pins of maps of an older layout that no program uses any more, removed.
    pub removed_maps: Vec<String>,
    /// Endpoints asked to report their multicast groups (the new programs learn the memberships made before).
    pub queried_endpoints: usize,
    /// Endpoints the queries could not be sent to, with why: their groups stay unknown until they report again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_queried: Vec<EndpointFailure>,
    /// Endpoints an older xlan made whose host-side veth now has the transmit queues this binary's broadcast copies
    /// pick from (`port::queue_copies_per_endpoint`), as ip(8) names them: ifname@netns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queues_set: Vec<String>,
    /// Endpoints whose queues could not be set, with why: their copies all take the endpoint's ring, as before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queues_not_set: Vec<EndpointFailure>,
}

/// What could not be done for one endpoint.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointFailure {
    /// The endpoint, as ip(8) names it: ifname@netns.
    pub endpoint: String,
    pub error: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplacedLink {
    pub link: String,
    pub program: &'static str,
}

pub async fn upgrade(instance: &Instance) -> Result<Upgraded> {
    // Unchecked: the point may be to bring an older datapath's layout up to this binary's, which the check would
    // call missing maps.
    let session = Session::open_unchecked(instance).await?;
    if session.state.networks.is_empty() {
        return Ok(Upgraded::default());
    }
    let new_maps: Vec<String> =
        map_names::ALL.iter().filter(|name| !instance.pins.map(name).exists()).map(|name| name.to_string()).collect();
    // Every program is verified anew, not taken from the instance's shared pins: an upgrade gives every link a
    // program of its own load, also when the binary is the same (a reload).
    instance.pins.unpin_programs()?;
    let mut datapath = Datapath::load(&instance.pins)?;
    if !new_maps.is_empty() {
        doctor::rebuild(instance, &session.state).await?;
    }
    let mut replaced = Vec::new();
    for path in instance.pins.link_pins()? {
        let Some(link) = path.file_name().and_then(|name| name.to_str()).map(str::to_string) else { continue };
        let program = datapath.replace(&link)?;
        replaced.push(ReplacedLink { link, program });
    }
    replaced.sort_by(|a, b| a.link.cmp(&b.link));
    let removed_maps = remove_stale_maps(instance)?;
    // The running datapath may not have kept the endpoints' groups (or not all of them): their answers, within
    // `querier::RESPONSE_TIME`, tell the new programs.
    // Each one's failure is reported, not fatal: the programs are replaced already.
    let (mut queried_endpoints, mut not_queried) = (0, Vec::new());
    let (mut queues_set, mut queues_not_set) = (Vec::new(), Vec::new());
    for network in &session.state.networks {
        for endpoint in &network.endpoints {
            let failure =
                |error: crate::Error| EndpointFailure { endpoint: endpoint.at.to_string(), error: error.to_string() };
            // Set after the switch (until then the old programs' copies take whichever queue, and both deliver) and
            // before the query: the change turns the veth's carrier off and on, which must not meet the answer.
            match port::set_host_end(&endpoint.host.ifname, network.hook) {
                Ok(true) => queues_set.push(endpoint.at.to_string()),
                Ok(false) => {}
                Err(error) => queues_not_set.push(failure(error)),
            }
            match port::query_groups(instance, endpoint, None).await {
                Ok(()) => queried_endpoints += 1,
                Err(error) => not_queried.push(failure(error)),
            }
        }
    }
    Ok(Upgraded { replaced, new_maps, removed_maps, queried_endpoints, not_queried, queues_set, queues_not_set })
}

/// Removes the pins of xlan maps (`XLAN_*`) in the instance's root that this binary does not have.
fn remove_stale_maps(instance: &Instance) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for (name, path) in instance.pins.map_pins()? {
        if !map_names::ALL.contains(&name.as_str()) {
            unpin(&path)?;
            removed.push(name);
        }
    }
    Ok(removed)
}
