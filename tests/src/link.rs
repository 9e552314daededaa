//! Building blocks shared by the test topologies (macvlan's and VXLAN's): Linux bridges standing in for switches,
//! veth cables from a bridge port to an interface in another namespace, interface addressing, and the tx checksum
//! setting every sender on a veth "wire" needs.

use anyhow::Result;

use crate::netns::Netns;

/// Adds the Linux bridge `name` in `netns`, left down (the caller brings it up once its ports are in place).
/// STP off: ports forward at once. Multicast snooping off: the bridge floods IPv6 neighbour discovery and multicast
/// instead of depending on MLD/IGMP reports having been seen, so results depend on what is tested, not on bridge
/// state.
pub fn add_bridge(netns: &Netns, name: &str) -> Result<()> {
    netns.ip(&["link", "add", name, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"])?;
    Ok(())
}

/// A veth cable: `port` in `netns`, enslaved to `bridge` and up, whose peer is `peer_ifname` in `peer_ns` (left
/// down, for the caller to configure). Created inside `netns` with the peer placed directly in `peer_ns`, so no
/// interface ever appears in the default namespace.
pub fn add_bridge_port(netns: &Netns, bridge: &str, port: &str, peer_ifname: &str, peer_ns: &Netns) -> Result<()> {
    add_veth(netns, port, peer_ifname, peer_ns)?;
    netns.ip(&["link", "set", port, "master", bridge, "up"])?;
    Ok(())
}

/// A veth cable: `ifname` in `netns` whose peer is `peer_ifname` in `peer_ns`, both left down. Created inside
/// `netns` with the peer placed directly in `peer_ns`, so no interface ever appears in the default namespace.
pub fn add_veth(netns: &Netns, ifname: &str, peer_ifname: &str, peer_ns: &Netns) -> Result<()> {
    netns.ip(&["link", "add", ifname, "type", "veth", "peer", "name", peer_ifname, "netns", peer_ns.name()])?;
    Ok(())
}

/// Turns hairpin on for the bridge port `port` in `netns`: the bridge may send a frame back out the port it came
/// in on (what a VEPA-capable switch does).
pub fn hairpin_on(netns: &Netns, port: &str) -> Result<()> {
    netns.ip(&["link", "set", port, "type", "bridge_slave", "hairpin", "on"])?;
    Ok(())
}

/// Sets the interface's MAC (if given) and addresses (CIDR; IPv6 ones with `nodad`, so that they are usable at once
/// and probes do not race duplicate address detection), then brings it up.
pub fn configure(netns: &Netns, ifname: &str, mac: Option<&str>, addresses: &[String]) -> Result<()> {
    if let Some(mac) = mac {
        netns.ip(&["link", "set", ifname, "address", mac])?;
    }
    for cidr in addresses {
        let mut args = vec!["addr", "add", cidr.as_str(), "dev", ifname];
        if cidr.contains(':') {
            args.push("nodad");
        }
        netns.ip(&args)?;
    }
    netns.ip(&["link", "set", ifname, "up"])?;
    Ok(())
}

/// Turns tx checksum offload off on `ifname`. A real wire never carries CHECKSUM_PARTIAL skbs (a NIC finishes the
/// checksum before sending), but a veth passes the sender's unfinished checksum state along, and an XDP redirect on
/// the receiving side drops that state (a known veth/XDP quirk), so L4 checksums would arrive wrong. Checksumming in
/// software on every sender onto a veth wire models a real one, for the kernel's drivers and xlan alike.
pub fn tx_checksum_offload_off(netns: &Netns, ifname: &str) -> Result<()> {
    netns.exec("ethtool", &["-K", ifname, "tx", "off"])?;
    Ok(())
}
