//! Internal networks (`--internal`, or no `-o parent`), as Docker's own macvlan and ipvlan make them: a LAN of the
//! host's containers with no uplink. Docker hangs such a network off a dummy link it makes; this kernel has no dummy,
//! so the daemon makes a veth pair in the host namespace, named after the network (`dk<id>`, its peer `dk<id>x`), up
//! and without IPv6 (the host's own multicast must not reach the LAN), and removes it with the network. Frames that
//! leave the LAN through it end at its peer, which forwards nothing.
use xlan::{host::sysctl, instance::Instance, model::Network, store, Error};

/// The parent of the internal network `network`.
pub fn parent_name(network: &str) -> String {
    network.to_owned()
}

fn peer_name(network: &str) -> String {
    format!("{network}x")
}

/// True for a network made on its own internal parent: no gateway, no way out.
pub fn is_internal(network: &Network) -> bool {
    network.parent.name == parent_name(&network.name)
}

/// Makes the internal parent of `network`; a device of that name already there is refused, not adopted.
pub async fn make_parent(instance: &Instance, network: &str) -> Result<(), Error> {
    let (parent, peer) = (parent_name(network), peer_name(network));
    for name in [&parent, &peer] {
        if instance.netlink.device(name).await?.is_some() {
            return Err(Error::DeviceExists { device: name.clone(), netns: instance.name.clone() });
        }
    }
    instance.netlink.create_veth(&parent, &peer).await?;
    let made = async {
        for name in [&parent, &peer] {
            sysctl::disable_ipv6(name)?;
            let device = instance.netlink.require_device(name).await?;
            instance.netlink.set_up(device.index).await?;
        }
        Ok::<_, Error>(())
    }
    .await;
    if made.is_err() {
        remove_parent(instance, network).await?;
    }
    made
}

/// Removes the internal parent of `network` (both ends of the pair go together), if it is there.
pub async fn remove_parent(instance: &Instance, network: &str) -> Result<(), Error> {
    if let Some(device) = instance.netlink.device(&parent_name(network)).await? {
        instance.netlink.delete(device.index).await?;
    }
    Ok(())
}

/// Makes the parents of the internal networks the kept configuration lists that are missing: after a reboot, before
/// `xlan restore` makes the networks again (xlan-restore.service runs `xlan serve --internal-parents` first).
/// Returns the networks whose parents it made.
pub async fn make_kept_parents(instance: &Instance) -> Result<Vec<String>, Error> {
    let Some(kept) = store::load_config(&instance.config_path())? else { return Ok(Vec::new()) };
    let mut made = Vec::new();
    for network in kept.networks.iter().filter(|n| is_internal(n)) {
        if instance.netlink.device(&network.parent.name).await?.is_none() {
            make_parent(instance, &network.name).await?;
            made.push(network.name.clone());
        }
    }
    Ok(made)
}
