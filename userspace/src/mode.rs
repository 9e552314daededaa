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
