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
    // SAFETY: a socket this function owns; the request's name is NUL-terminated within IFNAMSIZ and its data points at
    // `value`, alive across the call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(Error::io(what(), std::io::Error::last_os_error()));
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let mut value = EthtoolValue { cmd: feature.set_command(), data: u32::from(on) };
        let mut request: libc::ifreq = std::mem::zeroed();
        if ifname.len() >= request.ifr_name.len() {
            return Err(Error::io(what(), std::io::Error::from_raw_os_error(libc::ENAMETOOLONG)));
        }
        for (slot, byte) in request.ifr_name.iter_mut().zip(ifname.bytes()) {
            *slot = byte as libc::c_char;
        }
        request.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &mut request) != 0 {
            return Err(Error::io(what(), std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
