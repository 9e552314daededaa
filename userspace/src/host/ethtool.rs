//! Device features through the ethtool ioctl (SIOCETHTOOL), on an interface of the calling thread's namespace.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

/// A feature switched by one of ethtool's legacy commands (include/uapi/linux/ethtool.h), which the kernel maps to
/// its feature bits (`ethtool_set_one_feature`).
#[derive(Clone, Copy, Debug)]
pub enum Feature {
    /// ETHTOOL_STSO: every TSO flavour (NETIF_F_ALL_TSO).
    Tso,
    /// ETHTOOL_SGRO: NETIF_F_GRO.
    Gro,
}

impl Feature {
    const fn set_command(self) -> u32 {
        match self {
            Feature::Tso => 0x1f,
            Feature::Gro => 0x2c,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Feature::Tso => "tso",
            Feature::Gro => "gro",
        }
    }
}

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `ethtool -K IFNAME FEATURE on|off`.
pub fn set(ifname: &str, feature: Feature, on: bool) -> Result<()> {
    let what = || format!("ethtool -K {ifname} {} {}", feature.name(), if on { "on" } else { "off" });
    let mut value = EthtoolValue { cmd: feature.set_command(), data: u32::from(on) };
    request(ifname, (&mut value as *mut EthtoolValue).cast()).map_err(|e| Error::io(what(), e))
}

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;
const ETHTOOL_SCHANNELS: u32 = 0x3d;

/// `ethtool -L IFNAME tx COUNT`, or as many as the device has if fewer (a veth has one a possible CPU). Returns
/// whether it had another count.
pub fn set_tx_queues(ifname: &str, count: u32) -> Result<bool> {
    let mut channels = EthtoolChannels { cmd: ETHTOOL_GCHANNELS, ..Default::default() };
    request(ifname, (&mut channels as *mut EthtoolChannels).cast())
        .map_err(|e| Error::io(format!("ethtool -l {ifname}"), e))?;
    let possible = count.min(channels.max_tx).max(1);
    if channels.tx_count != possible {
        channels.cmd = ETHTOOL_SCHANNELS;
        channels.tx_count = possible;
        request(ifname, (&mut channels as *mut EthtoolChannels).cast())
            .map_err(|e| Error::io(format!("ethtool -L {ifname} tx {possible}"), e))?;
        return Ok(true);
    }
    Ok(false)
}

/// One SIOCETHTOOL request on `ifname` with `data` (an ethtool command struct, alive across the call).
fn request(ifname: &str, data: *mut libc::c_void) -> std::io::Result<()> {
    // SAFETY: a socket this function owns; the request's name is NUL-terminated within IFNAMSIZ and its data points at
    // the caller's command struct.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let mut request: libc::ifreq = std::mem::zeroed();
        if ifname.len() >= request.ifr_name.len() {
            return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        for (slot, byte) in request.ifr_name.iter_mut().zip(ifname.bytes()) {
            *slot = byte as libc::c_char;
        }
        request.ifr_ifru.ifru_data = data.cast();
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &mut request) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
