//! `xlan macaddr add|del|flush`: the source MACs whose frames a source-mode network's endpoints receive
//! (the kernel's `ip link set … type macvlan macaddr add|del|flush`).
use datapath_common::MacKey;

use crate::{
    error::{Error, Result},
    instance::Instance,
    mac::Mac,
    maps::Tables,
    mode::Mode,
    state::Network,
};

#[derive(Clone, Copy, Debug)]
pub enum Change {
    Add,
    Del,
    Flush,
}

pub fn change(instance: &Instance, network_name: &str, change: Change, mac: Option<&str>) -> Result<()> {
    let store = instance.store()?;
    let mut state = store.load()?;
    let network = state.network_mut(network_name)?;
    if network.mode != Mode::Source {
        return Err(Error::NotSourceMode(network.name.clone(), network.mode.to_string()));
    }
    let tables = Tables::new(&instance.pins);
    match (change, mac) {
        (Change::Add, Some(text)) => {
            let mac = Mac::parse_unicast(text)?;
            if !network.source_macs.contains(&mac) {
                tables.put_source_mac(key(network, mac))?;
                network.source_macs.push(mac);
            }
        }
        (Change::Del, Some(text)) => {
            let mac: Mac = text.parse()?;
            tables.delete_source_mac(key(network, mac))?;
            network.source_macs.retain(|m| *m != mac);
        }
        (Change::Flush, _) => {
            for mac in std::mem::take(&mut network.source_macs) {
                tables.delete_source_mac(key(network, mac))?;
            }
        }
        (_, None) => return Err(Error::InvalidMac(String::new(), "a MAC address is required")),
    }
    store.save(&state)
}

fn key(network: &Network, mac: Mac) -> MacKey {
    MacKey::new(network.id, mac.0)
}
