//! Per-interface sysctls. /proc/sys/net belongs to the network namespace of the thread that opens the file, so
//! callers write them from inside the namespace the interface lives in.
use std::path::Path;

use crate::error::{Error, Result};

/// Turns IPv6 off on an interface of the current namespace; nothing to do when the host has no IPv6 at all.
pub fn disable_ipv6(ifname: &str) -> Result<()> {
    write_if_present(&format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"), "1")
}

/// Stops the kernel from giving an interface a link-local IPv6 address (addr_gen_mode 1, "none"); must run before
/// the interface comes up.
pub fn no_link_local(ifname: &str) -> Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/addr_gen_mode");
    std::fs::write(&path, "1").map_err(|e| Error::io(format!("write {path}"), e))
}

/// Has the kernel announce an interface of the current namespace when it comes up or changes its MAC: gratuitous
/// ARP (arp_notify) and unsolicited neighbour advertisements (ndisc_notify), so that neighbours that knew its address
/// learn its MAC at once (as Docker and the CNI macvlan plugin set up the kernel's macvlan).
pub fn announce(ifname: &str) -> Result<()> {
    write_if_present(&format!("/proc/sys/net/ipv4/conf/{ifname}/arp_notify"), "1")?;
    write_if_present(&format!("/proc/sys/net/ipv6/conf/{ifname}/ndisc_notify"), "1")
}

fn write_if_present(path: &str, value: &str) -> Result<()> {
    if !Path::new(path).exists() {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|e| Error::io(format!("write {path}"), e))
}
