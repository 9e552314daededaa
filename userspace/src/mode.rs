//! macvlan modes, with the names ip-link(8) uses.
use std::fmt;

use datapath_common::macvlan_mode;
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
    pub const fn datapath_value(self) -> u32 {
        match self {
            Mode::Bridge => macvlan_mode::BRIDGE,
            Mode::Private => macvlan_mode::PRIVATE,
            Mode::Vepa => macvlan_mode::VEPA,
            Mode::Passthru => macvlan_mode::PASSTHRU,
            Mode::Source => macvlan_mode::SOURCE,
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
    pub const fn datapath_value(self) -> u32 {
        match self {
            IpvlanMode::L2 => datapath_common::ipvlan_mode::L2,
            IpvlanMode::L3 => datapath_common::ipvlan_mode::L3,
        }
    }
}

impl IpvlanFlag {
    pub const fn datapath_flags(self) -> u32 {
        match self {
            IpvlanFlag::Bridge => 0,
            IpvlanFlag::Private => datapath_common::network_flags::PRIVATE,
            IpvlanFlag::Vepa => datapath_common::network_flags::VEPA,
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
