//! macvlan modes, with the names ip-link(8) uses.
use std::fmt;

use datapath_common::{IpvlanMode as DatapathIpvlanMode, MacvlanMode, NetworkFlags};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Endpoints reach each other directly (the kernel's and Docker's default).
    #[default]
    Bridge,
    /// Endpoints never reach each other.
    Private,
    /// Endpoint-to-endpoint goes out of the parent and back only if the switch hairpins it.
    Vepa,
    /// One endpoint that receives all of the parent's traffic.
    Passthru,
    /// Endpoints receive only frames from allowed source MACs (`xlan macaddr`).
    Source,
}

impl Mode {
    /// The kernel's MACVLAN_MODE_* value, which the datapath uses too.
    pub const fn datapath_value(self) -> MacvlanMode {
        match self {
            Mode::Bridge => MacvlanMode::BRIDGE,
            Mode::Private => MacvlanMode::PRIVATE,
            Mode::Vepa => MacvlanMode::VEPA,
            Mode::Passthru => MacvlanMode::PASSTHRU,
            Mode::Source => MacvlanMode::SOURCE,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Mode::Bridge => "bridge",
            Mode::Private => "private",
            Mode::Vepa => "vepa",
            Mode::Passthru => "passthru",
            Mode::Source => "source",
        };
        f.pad(name)
    }
}

/// ipvlan modes, as `ip link add … type ipvlan mode l2|l3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanMode {
    /// Broadcast and multicast reach the endpoints, which answer ARP/ND themselves (Docker's and the CNI
    /// plugin's default; the kernel's own default is l3).
    #[default]
    L2,
    /// The parent routes for the endpoints; no broadcast or multicast reaches them; xlan answers ARP/ND for
    /// their addresses with the parent's MAC.
    L3,
}

/// ipvlan flags, as `ip link add … type ipvlan mode MODE bridge|private|vepa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanFlag {
    #[default]
    Bridge,
    Private,
    Vepa,
}

impl IpvlanMode {
    pub const fn datapath_value(self) -> DatapathIpvlanMode {
        match self {
            IpvlanMode::L2 => DatapathIpvlanMode::L2,
            IpvlanMode::L3 => DatapathIpvlanMode::L3,
        }
    }
}

impl IpvlanFlag {
    pub const fn datapath_flags(self) -> NetworkFlags {
        match self {
            IpvlanFlag::Bridge => NetworkFlags::empty(),
            IpvlanFlag::Private => NetworkFlags::PRIVATE,
            IpvlanFlag::Vepa => NetworkFlags::VEPA,
        }
    }
}

impl fmt::Display for IpvlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            IpvlanMode::L2 => "l2",
            IpvlanMode::L3 => "l3",
        })
    }
}

impl fmt::Display for IpvlanFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            IpvlanFlag::Bridge => "bridge",
            IpvlanFlag::Private => "private",
            IpvlanFlag::Vepa => "vepa",
        })
    }
}

/// The `--mode` of `network create`, whose words depend on the driver.
pub fn parse_macvlan_mode(text: &str) -> Option<Mode> {
    <Mode as clap::ValueEnum>::from_str(text, true).ok()
}

pub fn parse_ipvlan_mode(text: &str) -> Option<IpvlanMode> {
    <IpvlanMode as clap::ValueEnum>::from_str(text, true).ok()
}
