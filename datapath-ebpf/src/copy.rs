//! How a copy of a frame goes into an endpoint: through the CPU's backlog or through the endpoint's own receive
//! ring (`datapath_common::QUEUE_MAPPING_TO_BACKLOG` says why there are two ways and how the queue picks one).
use aya_ebpf::{bindings::__sk_buff, helpers::bpf_ktime_get_ns, macros::map, maps::PerCpuArray, programs::TcContext};
use datapath_common::{flood_counter, BACKLOG_PORTS_PER_SHARE, QUEUE_MAPPING_TO_BACKLOG, QUEUE_MAPPING_TO_RING};

use crate::stats::count_flood;

/// After a refusal, this CPU's floods take only the rings for this long: a full backlog holds 1000 frames, about
/// half a millisecond of this CPU's work, and every copy it refuses would cost a clone and a drop in the kernel's
/// counters for nothing.
const BACKLOG_BACKOFF_NS: u64 = 1_000_000;

/// When this CPU's backlog last refused a copy (ns, CLOCK_MONOTONIC). Not pinned: a hint, per load.
#[map(name = "XLAN_BACKLOG_REFUSED")]
static BACKLOG_REFUSED_AT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The two ways into an endpoint.
#[derive(Clone, Copy)]
pub enum WayIn {
    Backlog,
    Ring,
}

/// Makes the frame's next transmit through a host-side veth take `way` into the endpoint: the queue the veth's
/// transmit picks (the only lever eBPF has on `veth_xmit`). Returns the frame's own queue, for putting back.
#[inline(always)]
pub fn set_way(skb: *mut __sk_buff, way: WayIn) -> u32 {
    let queue_mapping = match way {
        WayIn::Backlog => QUEUE_MAPPING_TO_BACKLOG,
        WayIn::Ring => QUEUE_MAPPING_TO_RING,
    };
    // SAFETY: a context field tc programs may read and write.
    unsafe { core::mem::replace(&mut (*skb).queue_mapping, queue_mapping) }
}

/// A clone of the frame into `port` (its host-side veth) by `way`. The frame keeps its own queue (its transmit
/// out of the parent picks a queue by it). Returns whether the veth took the clone.
#[inline(always)]
pub fn clone_into(skb: *mut __sk_buff, port: u32, way: WayIn) -> bool {
    let own = set_way(skb, way);
    let taken = TcContext::new(skb).clone_redirect(port, 0).is_ok();
    // SAFETY: as in `set_way`.
    unsafe { (*skb).queue_mapping = own };
    taken
}

/// The ways one flood's copies take: the ports at the front of the list (`BACKLOG_PORTS_PER_SHARE` of each share)
/// the backlog, the others the rings. A port's way is its place in the list, not its place among the copies of a
/// flood (which the group's members and the sender move), so its copies keep one order; only a refusal changes it.
pub struct FloodCopies {
    /// Ports of the list before this index take the backlog.
    backlog_ports: u32,
}

impl FloodCopies {
    /// For a list split into `shares` shares; none through the backlog while this CPU backs off.
    #[inline(always)]
    pub fn new(shares: u32) -> Self {
        // SAFETY: a plain helper call; the pointer comes from the map (this CPU's slot).
        let backing_off = unsafe {
            BACKLOG_REFUSED_AT
                .get_ptr(0)
                .is_some_and(|refused_at| bpf_ktime_get_ns().wrapping_sub(*refused_at) < BACKLOG_BACKOFF_NS)
        };
        let backlog_ports = if backing_off { 0 } else { BACKLOG_PORTS_PER_SHARE * shares };
        FloodCopies { backlog_ports }
    }

    /// Every copy through the rings: a whole flood another CPU handed this one (`WHOLE_FLOOD_MAX_COPIES`), whose
    /// waiting floods are in this CPU's backlog already.
    #[inline(always)]
    pub fn through_rings() -> Self {
        FloodCopies { backlog_ports: 0 }
    }

    /// The copy for port `index` of the list (ifindex `port`). Returns whether it was taken.
    #[inline(always)]
    pub fn copy(&mut self, skb: *mut __sk_buff, index: u32, port: u32) -> bool {
        if index >= self.backlog_ports {
            return clone_into(skb, port, WayIn::Ring);
        }
        if clone_into(skb, port, WayIn::Backlog) {
            return true;
        }
        // Refused: the backlog is full, or the endpoint takes nothing (down, too big a frame), which its ring
        // tells apart.
        if !clone_into(skb, port, WayIn::Ring) {
            return false;
        }
        self.backlog_ports = 0;
        count_flood(flood_counter::BACKLOG_REFUSED);
        if let Some(refused_at) = BACKLOG_REFUSED_AT.get_ptr_mut(0) {
            // SAFETY: this CPU's slot; a plain helper call.
            unsafe { *refused_at = bpf_ktime_get_ns() };
        }
        true
    }
}
