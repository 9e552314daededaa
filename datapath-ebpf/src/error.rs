//! Why a program gave up on a frame. `main.rs` is the one place that turns these into a verdict.
use datapath_common::DropReason;

#[derive(Clone, Copy)]
pub enum Error {
    /// Shorter than its headers claim.
    Malformed,
    /// Traffic that the network's isolation forbids.
    Isolation,
    /// An XDP redirect to `port` failed: the ports' devmap has no such entry (its device is gone, the table that
    /// named it is stale).
    NoPort { port: u32 },
    /// A frame on a device the maps do not know (state out of sync).
    UnknownPort,
    /// A VXLAN frame for a VTEP whose next hop is not resolved and cannot be (not IP).
    NoNeighbour,
    /// The frame could not be encapsulated.
    Encap,
    /// An endpoint sent from an address that is not its own.
    Spoofed,
    /// The sender's network has a kind this datapath does not know.
    UnknownKind,
    /// A VLAN network's tag could not be taken off or put on.
    Vlan,
    /// A VTEP's frame for a MAC behind another VTEP.
    SplitHorizon,
    /// An endpoint's frame to its own MAC or address.
    ToItself,
    /// Not IP, from an ipvlan l3 endpoint.
    NotIp,
}

impl Error {
    /// Drops that say something is wrong with xlan's state or the host's, not with the traffic: only these are
    /// reported one by one, since a sender cannot cause them at will.
    pub const fn worth_reporting(self) -> bool {
        matches!(
            self,
            Error::NoPort { .. }
                | Error::UnknownPort
                | Error::NoNeighbour
                | Error::Encap
                | Error::UnknownKind
                | Error::Vlan
        )
    }

    pub const fn drop_reason(self) -> DropReason {
        match self {
            Error::Malformed => DropReason::Malformed,
            Error::Isolation => DropReason::Isolation,
            Error::NoPort { .. } => DropReason::NoPort,
            Error::UnknownPort => DropReason::UnknownPort,
            Error::NoNeighbour => DropReason::NoNeighbour,
            Error::Encap => DropReason::Encap,
            Error::Spoofed => DropReason::Spoofed,
            Error::UnknownKind => DropReason::UnknownKind,
            Error::Vlan => DropReason::Vlan,
            Error::SplitHorizon => DropReason::SplitHorizon,
            Error::ToItself => DropReason::ToItself,
            Error::NotIp => DropReason::NotIp,
        }
    }

    /// The endpoint a drop concerns when that is not the sender: the port a redirect could not reach.
    pub const fn target_port(self) -> Option<u32> {
        match self {
            Error::NoPort { port } => Some(port),
            _ => None,
        }
    }
}
