//! The source MACs whose frames a source-mode macvlan network's endpoints receive (the kernel's
//! `ip link set … type macvlan macaddr add|del|flush`).
use crate::{
    datapath::maps::Tables,
    driver::macvlan,
    error::{Error, Result},
    instance::Instance,
    mac::Mac,
    model::{DriverSettings, MacvlanMode},
    session::Session,
};

#[derive(Clone, Copy, Debug)]
pub enum MacaddrChange {
    Add(Mac),
    Del(Mac),
    Flush,
}

/// Applies the change; returns the network's allowed source MACs after it.
pub async fn change(instance: &Instance, network_name: &str, change: MacaddrChange) -> Result<Vec<Mac>> {
    let mut session = Session::open(instance).await?;
    let state = &mut session.state;
    let network = state.network(network_name)?.clone();
    let mode = network.macvlan_mode();
    let DriverSettings::Macvlan(mut settings) = network.driver.clone() else {
        let mode = network.driver_kind().to_string();
        return Err(Error::NotSourceMode { network: network.name, mode });
    };
    if mode != MacvlanMode::Source {
        return Err(Error::NotSourceMode { network: network.name, mode: mode.to_string() });
    }
    let tables = Tables::new(&instance.pins);
    match change {
        MacaddrChange::Add(mac) => {
            let mac = mac.require_unicast()?;
            if !settings.source_macs.contains(&mac) {
                macvlan::allow_source(&tables, &network, mac)?;
                settings.source_macs.push(mac);
            }
        }
        MacaddrChange::Del(mac) => {
            macvlan::forbid_source(&tables, &network, mac)?;
            settings.source_macs.retain(|m| *m != mac);
        }
        MacaddrChange::Flush => {
            for mac in std::mem::take(&mut settings.source_macs) {
                macvlan::forbid_source(&tables, &network, mac)?;
            }
        }
    }
    let allowed = settings.source_macs.clone();
    state.network_mut(network_name)?.driver = DriverSettings::Macvlan(settings);
    session.save()?;
    Ok(allowed)
}
