//! The harness's one link helper: every interface the tests, the lab and the bench make or change goes through here —
//! veth cables (between namespaces or within one), Linux bridges standing in for switches and their ports, the
//! kernel's macvlan and vxlan devices, MACs, addresses, MTUs, up/down, the offload settings a veth "wire" needs — and
//! so do the questions asked about interfaces (names, statistics, carrier, index).
//!
//! Everything is done inside the namespace named, with `ip -n`; a cable's peer is created directly in its own
//! namespace, so no interface ever appears in the default namespace.

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::netns::{self, Netns};

/// How long an interface may take to come up (administratively and with carrier): a veth does in milliseconds.
pub const UP_TIMEOUT: Duration = Duration::from_secs(5);

/// Multicast snooping of a Linux bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snooping {
    /// The bridge floods IPv6 neighbour discovery and multicast instead of depending on MLD/IGMP reports having been
    /// seen, so results depend on what is tested, not on bridge state: the tests' switches and kernel VTEPs.
    Off,
    /// The kernel's default, as a host that bridges would have it: the bench's kernel VTEP, measured as deployed.
    KernelDefault,
}

/// Adds the Linux bridge `name` in `netns`, left down (the caller brings it up once its ports are in place). STP off:
/// ports forward at once.
pub fn add_bridge(netns: &Netns, name: &str, snooping: Snooping) -> Result<()> {
    let mut args = vec!["link", "add", name, "type", "bridge", "stp_state", "0"];
    if snooping == Snooping::Off {
        args.extend(["mcast_snooping", "0"]);
    }
    netns.ip(&args)?;
    Ok(())
}

/// A veth cable: `port` in `netns`, enslaved to `bridge` and up, whose peer is `peer_ifname` in `peer_ns` (left
/// down, for the caller to configure).
pub fn add_bridge_port(netns: &Netns, bridge: &str, port: &str, peer_ifname: &str, peer_ns: &Netns) -> Result<()> {
    add_veth(netns, port, peer_ifname, peer_ns)?;
    set(netns, port, &["master", bridge, "up"])
}

/// A veth cable: `ifname` in `netns` whose peer is `peer_ifname` in `peer_ns`, both left down.
pub fn add_veth(netns: &Netns, ifname: &str, peer_ifname: &str, peer_ns: &Netns) -> Result<()> {
    netns.ip(&["link", "add", ifname, "type", "veth", "peer", "name", peer_ifname, "netns", peer_ns.name()])?;
    Ok(())
}

/// A veth pair with both ends in `netns`, both up: a device to hang things on (a parent nothing else uses, the bench's
/// frame injector).
pub fn add_veth_pair(netns: &Netns, ifname: &str, peer_ifname: &str) -> Result<()> {
    netns.ip(&["link", "add", ifname, "type", "veth", "peer", "name", peer_ifname])?;
    up(netns, ifname)?;
    up(netns, peer_ifname)
}

/// The kernel's macvlan `ifname` in `netns`, on `parent` in `host`, in `mode` (left down). Created from the host
/// with the device placed directly in `netns`: the name need not be free in the host.
pub fn add_macvlan(host: &Netns, parent: &str, mode: &str, netns: &Netns, ifname: &str) -> Result<()> {
    host.ip(&["link", "add", ifname, "link", parent, "netns", netns.name(), "type", "macvlan", "mode", mode])?;
    Ok(())
}

/// The kernel's vxlan device `name` on `dev`, with the VNI, the UDP port and the VTEP's own address, and `extra`
/// options of ip-link's vxlan type (`remote IP`, `group IP`, `nolearning`, `ageing SECS`). Left down.
pub fn add_vxlan(
    netns: &Netns,
    name: &str,
    vni: u32,
    dstport: u16,
    local: Ipv4Addr,
    dev: &str,
    extra: &[String],
) -> Result<()> {
    let (vni, dstport, local) = (vni.to_string(), dstport.to_string(), local.to_string());
    let args = ["link", "add", name, "type", "vxlan", "id", &vni, "dstport", &dstport, "local", &local, "dev", dev];
    netns.ip(&args.into_iter().chain(extra.iter().map(String::as_str)).collect::<Vec<_>>())?;
    Ok(())
}

/// Turns hairpin on for the bridge port `port` in `netns`: the bridge may send a frame back out the port it came
/// in on (what a VEPA-capable switch does).
pub fn hairpin_on(netns: &Netns, port: &str) -> Result<()> {
    set(netns, port, &["type", "bridge_slave", "hairpin", "on"])
}

/// `ip link set dev IFNAME settings...` in `netns` (`up`, `down`, `mtu N`, `master BRIDGE`, `address MAC`, ...).
pub fn set(netns: &Netns, ifname: &str, settings: &[&str]) -> Result<()> {
    netns.ip(&[&["link", "set", "dev", ifname], settings].concat())?;
    Ok(())
}

/// Brings `ifname` in `netns` up.
pub fn up(netns: &Netns, ifname: &str) -> Result<()> {
    set(netns, ifname, &["up"])
}

/// Deletes `ifname` in `netns` (a veth takes its peer along).
pub fn delete(netns: &Netns, ifname: &str) -> Result<()> {
    netns.ip(&["link", "del", "dev", ifname])?;
    Ok(())
}

/// Sets the interface's MAC (if given) and addresses (see [`add_address`]), then brings it up.
pub fn configure(netns: &Netns, ifname: &str, mac: Option<&str>, addresses: &[String]) -> Result<()> {
    if let Some(mac) = mac {
        set(netns, ifname, &["address", mac])?;
    }
    for cidr in addresses {
        add_address(netns, ifname, cidr)?;
    }
    up(netns, ifname)
}

/// Adds the address `cidr` to `ifname`; an IPv6 one with `nodad`, so that it is usable at once and probes do not
/// race duplicate address detection.
pub fn add_address(netns: &Netns, ifname: &str, cidr: &str) -> Result<()> {
    let mut args = vec!["addr", "add", cidr, "dev", ifname];
    if cidr.contains(':') {
        args.push("nodad");
    }
    netns.ip(&args)?;
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

/// The standard settings of a simulated NIC on a veth: GRO on, which gives a veth NAPI like a NIC's (so it can take
/// XDP frames, and segments of one TCP stream are merged as a NIC's driver would).
pub fn nic_like(netns: &Netns, ifname: &str) -> Result<()> {
    netns.exec("ethtool", &["-K", ifname, "gro", "on"])?;
    Ok(())
}

/// Names of all interfaces in `netns`, sorted.
pub fn names(netns: &Netns) -> Result<Vec<String>> {
    let links: Value = serde_json::from_str(&netns.ip(&["-j", "link", "show"])?)
        .with_context(|| format!("parsing `ip -j link show` in {}", netns.name()))?;
    let mut names: Vec<String> =
        links.as_array().into_iter().flatten().filter_map(|link| link["ifname"].as_str().map(str::to_string)).collect();
    names.sort();
    Ok(names)
}

/// `ip -s -j link show dev IFNAME` in `netns` as JSON (with statistics).
pub fn show(netns: &Netns, ifname: &str) -> Result<Value> {
    let text = netns.ip(&["-s", "-j", "link", "show", "dev", ifname])?;
    let mut links: Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing `ip -s -j link show dev {ifname}` in {}", netns.name()))?;
    Ok(links[0].take())
}

/// The interface's MAC address, as ip(8) writes it (`02:00:…`).
pub fn mac_text(netns: &Netns, ifname: &str) -> Result<String> {
    let link = show(netns, ifname)?;
    let mac = link["address"].as_str().with_context(|| format!("{ifname} in {} has no MAC", netns.name()))?;
    Ok(mac.to_string())
}

/// The interface's MAC address.
pub fn mac(netns: &Netns, ifname: &str) -> Result<[u8; 6]> {
    crate::bench::frame::parse_mac(&mac_text(netns, ifname)?)
}

/// Waits (up to [`UP_TIMEOUT`]) until the interface is administratively up and has carrier (LOWER_UP), so that
/// probes that follow measure the datapath rather than link bring-up.
pub fn wait_up(netns: &Netns, ifname: &str) -> Result<()> {
    let deadline = Instant::now() + UP_TIMEOUT;
    loop {
        let link = show(netns, ifname)?;
        let flags: Vec<&str> = link["flags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if flags.contains(&"UP") && flags.contains(&"LOWER_UP") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{ifname} in {} is not up after {UP_TIMEOUT:?} (flags {flags:?})", netns.name());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The index of `ifname` in the calling thread's namespace.
pub fn ifindex(ifname: &str) -> Result<u32> {
    let name = CString::new(ifname).context("interface name")?;
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("no device {ifname}"));
    }
    Ok(index)
}

/// The index of `ifname` in the namespace named `netns` (entered on this thread for the lookup only).
pub fn ifindex_in(netns: &str, ifname: &str) -> Result<u32> {
    let _inside = netns::enter(netns)?;
    ifindex(ifname).with_context(|| format!("in {netns}"))
}
