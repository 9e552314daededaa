//! Drop events from the datapath: the `DropRecord`s the programs put in the instance's `XLAN_EVENTS` ring buffer
//! (only drops that say something is wrong with xlan's state or the host's), read as typed events. The reader
//! waits on the ring's readiness (epoll through tokio), so an idle monitor costs nothing and an event is seen when
//! it is written.
use aya::maps::{Map, MapData, RingBuf};
use datapath_common::{map_names, DropReason, DropRecord};
use serde::{Serialize, Serializer};
use tokio::io::{unix::AsyncFd, Interest};

use crate::{
    datapath::pins::PinDir,
    error::{Error, Result},
};

/// One frame the datapath dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DropEvent {
    /// Why, by the name `xlan stats` uses.
    #[serde(serialize_with = "reason_name")]
    pub reason: DropReason,
    /// The device the program ran on (the frame's ingress device for XDP, the skb's device for TC).
    pub ifindex: u32,
    /// The endpoint concerned (its host-side veth): the sender, or for `no_port` the port the frame was for; 0 if
    /// none.
    pub port: u32,
    /// That endpoint's network, 0 if not known.
    pub network_id: u32,
    /// Length of the frame, bytes.
    pub len: u32,
    /// When: CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
    pub monotonic_ns: u64,
}

fn reason_name<S: Serializer>(reason: &DropReason, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(reason.name())
}

impl DropEvent {
    /// The event a ring-buffer record holds. A record of another size or with a reason this build does not know
    /// means the datapath and this binary disagree on the format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != size_of::<DropRecord>() {
            return Err(Error::BpfObject(format!(
                "datapath event of {} bytes, expected {}: the datapath and xlan are different versions",
                bytes.len(),
                size_of::<DropRecord>()
            )));
        }
        // SAFETY: the length is checked; DropRecord is plain data (any bytes are a value), read unaligned.
        let record: DropRecord = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        Self::from_record(&record)
    }

    pub fn from_record(record: &DropRecord) -> Result<Self> {
        let reason = DropReason::from_index(record.reason).ok_or_else(|| {
            Error::BpfObject(format!("datapath event with unknown drop reason {}: a newer datapath?", record.reason))
        })?;
        Ok(DropEvent {
            reason,
            ifindex: record.ifindex,
            port: record.port,
            network_id: record.network_id,
            len: record.len,
            monotonic_ns: record.timestamp_ns,
        })
    }
}

/// A reader of an instance's drop events. Every program of the instance writes to the one ring (it is pinned with
/// the other maps); two readers at once would share the events between them, each seeing only some.
pub struct DropEvents {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl DropEvents {
    /// The instance's ring, or None while the instance has no datapath (no network yet). Must be called within a
    /// tokio runtime with I/O enabled.
    pub fn open(pins: &PinDir) -> Result<Option<Self>> {
        let name = map_names::EVENTS;
        let path = pins.map(name);
        if !path.exists() {
            return Ok(None);
        }
        let data = MapData::from_pin(&path).map_err(|e| Error::bpf(format!("map {name}"), e))?;
        let ring = RingBuf::try_from(Map::RingBuf(data)).map_err(|e| Error::bpf(format!("map {name}"), e))?;
        Self::new(ring).map(Some)
    }

    /// A reader of `ring` (a ring of `DropRecord`s). Must be called within a tokio runtime with I/O enabled.
    pub fn new(ring: RingBuf<MapData>) -> Result<Self> {
        // SAFETY: the RingBuf owns its map's fd, open and the same for as long as the RingBuf lives, which is as
        // long as the AsyncFd that owns it.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| Error::io("poll drop events", e.into()))?;
        Ok(Self { ring })
    }

    /// The next event: one already in the ring, else the first the datapath writes. Cancel-safe: an event is taken
    /// out of the ring only when it is returned.
    pub async fn next(&mut self) -> Result<DropEvent> {
        loop {
            let mut ready = self.ring.readable_mut().await.map_err(|e| Error::io("poll drop events", e))?;
            if let Some(record) = ready.get_inner_mut().next() {
                return DropEvent::from_bytes(&record);
            }
            // Empty: wait for the next wake-up. tokio keeps readiness that arrived since `readable_mut` returned.
            ready.clear_ready();
        }
    }
}
