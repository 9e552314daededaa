//! The plugin's words for the library's errors: the spec's well-known codes where one fits — 7 for settings no
//! network can have or that clash with the host's networks, 4 for a CNI_NETNS or CNI_IFNAME that cannot be used —
//! xlan's own 100 for a state that disagrees with the datapath (`xlan doctor` says how), and 999 for the rest. The
//! message names the CNI key (`master`, `mode`, `mac`), never a CLI flag; the underlying causes go to `details`.
use std::error::Error as _;

use xlan::error::{Error, Setting};

use crate::spec::{Code, Failure};

/// The configuration key that sets `setting`.
fn key(setting: Setting) -> &'static str {
    match setting {
        Setting::Mode => "mode",
        Setting::HostAccess => "hostAccess",
        Setting::IpvlanFlag => "flag",
        Setting::ParentHook => "parentHook",
        Setting::Vni => "vni",
        Setting::Local => "local",
        Setting::Remote => "remotes",
        Setting::Group => "group",
        Setting::Dstport => "dstport",
        Setting::Learning => "learning",
        Setting::Ageing => "ageing",
        Setting::Mac => "mac",
        Setting::Address => "ipam",
        Setting::Vtep => "remotes",
    }
}

pub fn from_library(error: Error) -> Failure {
    let code = match &error {
        Error::InvalidMac { .. }
        | Error::InvalidAddress { .. }
        | Error::InvalidName(_)
        | Error::UnknownWord { .. }
        | Error::ParentInUse { .. }
        | Error::ParentTaken { .. }
        | Error::NoSuchDevice { .. }
        | Error::UnsuitableParent { .. }
        | Error::InvalidPort
        | Error::ParentMac { .. }
        | Error::NoMac(_)
        | Error::MacInUse { .. }
        | Error::PassthruFull(_)
        | Error::HostAccessMode(_)
        | Error::NetworkFull { .. }
        | Error::TooManyNetworks(_)
        | Error::InvalidVni(_)
        | Error::RemoteWithGroup
        | Error::GroupNotMulticast(_)
        | Error::InvalidVtep(_)
        | Error::NoLocalAddress(_)
        | Error::VniInUse { .. }
        | Error::NotForDriver { .. }
        | Error::Missing { .. }
        | Error::MacNotForIpvlan
        | Error::AddressInUse { .. }
        | Error::HookInUse { .. }
        | Error::SubnetsOverlap { .. }
        | Error::InvalidVlan { .. }
        | Error::VlanMismatch { .. }
        | Error::NotOnVlan { .. } => Code::InvalidConfig,
        // An endpoint of another container at the same namespace and interface name.
        Error::NoSuchNetns(_) | Error::NoSuchNetnsPath(_) | Error::InvalidIfname(_) | Error::EndpointExists { .. } => {
            Code::InvalidEnvironment
        }
        // The container's interface name taken in the container (CNI_NETNS is a path); not one of xlan's veth names
        // in the host.
        Error::DeviceExists { netns, .. } if netns.starts_with('/') => Code::InvalidEnvironment,
        Error::Inconsistent { .. } | Error::State { .. } => Code::Inconsistent,
        _ => Code::Internal,
    };
    let msg = match &error {
        Error::NotForDriver { setting, driver } => {
            format!("\"{}\" does not apply to a {driver} network", key(*setting))
        }
        Error::Missing { setting: Setting::Address, driver } => {
            format!("{driver} endpoints need an address: an \"ipam\" that gives one")
        }
        Error::Missing { setting, driver } => format!("a {driver} network needs \"{}\"", key(*setting)),
        Error::MacNotForIpvlan => "ipvlan endpoints have the master's MAC: a MAC does not apply".into(),
        Error::NoSuchNetns(name) | Error::NoSuchNetnsPath(name) => {
            format!("CNI_NETNS: network namespace {name} not found")
        }
        Error::InvalidIfname(_) => format!("CNI_IFNAME: {error}"),
        Error::EndpointExists { .. } => format!("CNI_NETNS/CNI_IFNAME: {error}"),
        Error::DeviceExists { netns, .. } if netns.starts_with('/') => format!("CNI_IFNAME: {error}"),
        Error::Inconsistent { .. } | Error::State { .. } => {
            format!("{error}: run `xlan doctor` in the host namespace, `xlan doctor --repair` to fix it")
        }
        other => other.to_string(),
    };
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let failure = Failure::new(code, msg);
    if causes.is_empty() {
        failure
    } else {
        failure.details(causes.join(": "))
    }
}
