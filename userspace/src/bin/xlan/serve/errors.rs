//! The daemon's words for the library's errors, as `docker` shows them (`Error response from daemon: …`): one line,
//! settings named by their `-o` option or `docker run` flag, the fix where there is one.
use xlan::error::{Error, Setting};

use crate::errors::{one_line, with_sources};

/// One line for Docker's user; `driver` is Docker's driver name (xlan-macvlan).
pub fn phrase(error: &Error, driver: &str) -> String {
    let line = match error {
        // Bad `-o` options are this front end's to refuse (`options`); the library asks only for an address.
        Error::Missing { setting: Setting::Address, .. } => {
            format!("{driver} endpoints need an IPv4 or IPv6 address: create the network with --subnet")
        }
        Error::InvalidVni(vni) => format!("-o vni={vni} is out of range: 1-16777215"),
        Error::InvalidPort => "-o dstport=0 is no UDP port: 1-65535".into(),
        Error::GroupNotMulticast(group) => format!("-o group={group} is not an IPv4 multicast address"),
        Error::NoLocalAddress(parent) => format!("parent {parent} has no IPv4 address: give -o local=IP"),
        Error::HostAccessMode(mode) => {
            format!("-o host_access=true works with macvlan_mode bridge and private, not {mode}")
        }
        Error::MacNotForIpvlan => "ipvlan endpoints have the parent's MAC: --mac-address does not apply".into(),
        Error::NoSuchDevice { .. } => format!("{error}: -o parent must name an existing interface"),
        Error::Inconsistent { .. } | Error::State { .. } => {
            format!("{error}: run `xlan doctor` on the host, `xlan doctor --repair` to fix what can be fixed")
        }
        other => other.to_string(),
    };
    one_line(&with_sources(line, error))
}
