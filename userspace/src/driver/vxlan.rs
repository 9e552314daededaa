//! The VXLAN side of a network: its VNI in the datapath's maps, its flood list, static FDB entries, and what
//! it asks of the host: neighbour entries the kernel keeps resolved for the configured VTEPs, and membership
//! of the multicast group.
use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use datapath_common::{FdbEntry, MacKey, VniKey, VtepList, MAX_VTEPS};

use crate::{
    datapath::maps::Tables,
    error::{Error, Result},
    instance::Instance,
    mac::Mac,
    model::{Network, Vxlan},
};

/// A VTEP address must be a unicast IPv4 address.
pub fn validate_vtep(ip: Ipv4Addr) -> Result<()> {
    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback() {
        return Err(Error::InvalidVtep(ip));
    }
    Ok(())
}

pub fn ip_key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

pub fn vni_key(network: &Network, settings: &Vxlan) -> VniKey {
    VniKey { parent_ifindex: network.parent.ifindex, vni: settings.vni, dstport: settings.dstport, _pad: 0 }
}

pub fn vtep_list(remotes: &[Ipv4Addr]) -> VtepList {
    let mut list = VtepList::default();
    for (slot, ip) in list.ips.iter_mut().zip(remotes) {
        *slot = ip_key(*ip);
    }
    list.count = remotes.len().min(MAX_VTEPS) as u32;
    list
}

/// A static FDB entry: the MAC lives behind `dst`.
pub fn remote_entry(dst: Ipv4Addr) -> FdbEntry {
    FdbEntry { ifindex: 0, remote_ip: ip_key(dst), ..FdbEntry::local(0) }
}

/// The maps' entries of a new VXLAN network: its VNI and its flood list.
pub fn fill_maps(tables: &Tables<'_>, network: &Network, settings: &Vxlan) -> Result<()> {
    tables.put_vteps(network.id, vtep_list(settings.flood.remotes()))?;
    tables.put_vni(vni_key(network, settings), network.id)
}

/// Joins the network's multicast group on the parent, if it floods to one.
pub async fn join_group(instance: &Instance, network: &Network, settings: &Vxlan) -> Result<()> {
    match settings.flood.group() {
        Some(group) => instance.netlink.join_group(network.parent.ifindex, group).await,
        None => Ok(()),
    }
}

/// Removes everything of the network: map entries (static and learned), its neighbour entries, its group.
pub async fn teardown(instance: &Instance, tables: &Tables<'_>, network: &Network, settings: &Vxlan) -> Result<()> {
    if tables.exist() {
        tables.delete_vni(vni_key(network, settings))?;
        tables.delete_vteps(network.id)?;
        tables.delete_network_fdb(network.id)?;
    }
    for ip in &settings.managed_neighbours {
        instance.netlink.delete_neighbour(network.parent.ifindex, *ip).await?;
    }
    for ip in settings.flood.remotes().iter().chain(settings.fdb.iter().map(|e| &e.dst)) {
        tables.delete_vtep_mac(ip_key(*ip))?;
    }
    if let Some(group) = settings.flood.group() {
        instance.netlink.leave_group(network.parent.ifindex, group).await?;
    }
    Ok(())
}

/// How long `manage_neighbour` waits for a VTEP's MAC.
const RESOLVE_WAIT: Duration = Duration::from_secs(1);

/// Makes sure the host keeps the next hop of `vtep` resolved (recording the entry if xlan made it), and
/// hands its MAC to the datapath: bpf_fib_lookup answers nothing on a host that does not forward, and the
/// kernel resolves neighbours for IP frames only, so an ARP request for a VTEP nobody talked to yet needs it.
/// A VTEP that does not answer within a second is learned from its first frame instead.
pub async fn manage_neighbour(
    instance: &Instance,
    parent_ifindex: u32,
    settings: &mut Vxlan,
    vtep: Ipv4Addr,
) -> Result<()> {
    if !settings.managed_neighbours.contains(&vtep)
        && instance.netlink.add_managed_neighbour(parent_ifindex, vtep).await?
    {
        settings.managed_neighbours.push(vtep);
    }
    let deadline = Instant::now() + RESOLVE_WAIT;
    while Instant::now() < deadline {
        if let Some(mac) = instance.netlink.neighbour_mac(parent_ifindex, vtep).await? {
            return Tables::new(&instance.pins).put_vtep_mac(ip_key(vtep), mac.0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Not resolved yet (the VTEP may come up later): an all-zero placeholder, which the datapath fills in from
    // the ARP reply the kernel gets for the managed entry (or from the VTEP's first frame).
    let tables = Tables::new(&instance.pins);
    if tables.vtep_mac(ip_key(vtep))?.is_none() {
        tables.put_vtep_mac(ip_key(vtep), [0; 6])?;
    }
    Ok(())
}

/// Stops managing `vtep`'s neighbour entry once nothing of the network names it any more.
pub async fn release_neighbour(
    instance: &Instance,
    parent_ifindex: u32,
    settings: &mut Vxlan,
    vtep: Ipv4Addr,
) -> Result<()> {
    let still_used = settings.flood.remotes().contains(&vtep) || settings.fdb.iter().any(|e| e.dst == vtep);
    if still_used || !settings.managed_neighbours.contains(&vtep) {
        return Ok(());
    }
    instance.netlink.delete_neighbour(parent_ifindex, vtep).await?;
    Tables::new(&instance.pins).delete_vtep_mac(ip_key(vtep))?;
    settings.managed_neighbours.retain(|ip| *ip != vtep);
    Ok(())
}

/// `MacKey` of a MAC in the network.
pub fn mac_key(network: &Network, mac: Mac) -> MacKey {
    MacKey::new(network.id, mac.0)
}
