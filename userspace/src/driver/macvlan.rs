//! The macvlan side of a network: the allowed source MACs of a source-mode network (the kernel's
//! `ip link set … type macvlan macaddr add|del|flush`) in the datapath's map.
use datapath_common::MacKey;

use crate::{
    datapath::maps::Tables,
    error::Result,
    mac::Mac,
    model::{Macvlan, Network},
};

pub fn allow_source(tables: &Tables<'_>, network: &Network, mac: Mac) -> Result<()> {
    tables.put_source_mac(MacKey::new(network.id, mac.0))
}

pub fn forbid_source(tables: &Tables<'_>, network: &Network, mac: Mac) -> Result<()> {
    tables.delete_source_mac(MacKey::new(network.id, mac.0))
}

/// Removes the network's allowed source MACs.
pub fn teardown(tables: &Tables<'_>, network: &Network, settings: &Macvlan) -> Result<()> {
    for mac in &settings.source_macs {
        forbid_source(tables, network, *mac)?;
    }
    Ok(())
}
