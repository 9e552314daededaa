//! Why a program gave up on a frame. `main.rs` is the one place that turns these into a verdict.
use datapath_common::DropReason;

#[derive(Clone, Copy)]
pub enum Error {
    /// Shorter than its headers claim.
    Malformed,
    /// Traffic that the network's isolation forbids.
    Isolation,
    /// A frame on a device the maps do not know (state out of sync).
    UnknownPort,
}

impl Error {
    pub const fn drop_reason(self) -> DropReason {
        match self {
            Error::Malformed => DropReason::Malformed,
            Error::Isolation => DropReason::Isolation,
            Error::UnknownPort => DropReason::UnknownPort,
        }
    }
}
