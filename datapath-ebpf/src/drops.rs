//! What becomes of a frame the datapath gives up on, besides its verdict: every drop is counted, and one that says
//! something is wrong with xlan's state or the host's is also reported as a `DropRecord` in `XLAN_EVENTS`, which
//! `xlan monitor` reads. The ones a sender can cause at will (malformed, isolation, spoofed) are only counted: a
//! record each would flood the ring on the fast path.
use aya_ebpf::helpers::bpf_ktime_get_ns;
use datapath_common::DropRecord;

use crate::{
    error::Error,
    maps::{ENDPOINTS, EVENTS},
    parse::Packet,
    port::Port,
    stats::count_drop,
};

/// Counts the drop (against `from_port` too, when an endpoint sent the frame) and reports it if it is worth it.
#[inline(always)]
pub fn note_drop(frame: &impl Packet, error: Error, from_port: Option<Port>) {
    let reason = error.drop_reason();
    count_drop(reason, from_port.map(|port| port.slot));
    if !error.worth_reporting() {
        return;
    }
    let port = match error.target_port() {
        Some(port) => port,
        None => from_port.map_or(0, |port| port.ifindex),
    };
    // SAFETY: plain data copied out of the map.
    let network_id =
        if port == 0 { 0 } else { unsafe { ENDPOINTS.get(&port) }.map_or(0, |endpoint| endpoint.network_id) };
    let record = DropRecord {
        // SAFETY: a plain helper call.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        reason: reason as u32,
        ifindex: frame.device(),
        port,
        network_id,
        len: frame.frame_len(),
        _pad: 0,
    };
    // A full ring (nobody has read it for a while) loses the record; the counters above still have the drop.
    let _ = EVENTS.output::<DropRecord>(&record, 0);
}
