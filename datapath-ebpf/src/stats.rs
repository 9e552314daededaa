//! Per-CPU counters: per endpoint (rx delivered to it, tx sent by it, drops of what it sent), by the endpoint's slot
//! in `PORT_STATS`, per drop reason, and of the floods.
use datapath_common::DropReason;

use crate::maps::{DROPS, FLOOD_COUNTS, PORT_STATS};

#[inline(always)]
pub fn count_rx(slot: u32, bytes: u32) {
    if let Some(stats) = PORT_STATS.get_ptr_mut(slot) {
        // SAFETY: per-CPU value, so no other writer; the pointer comes from the map.
        unsafe {
            (*stats).rx_packets += 1;
            (*stats).rx_bytes += bytes as u64;
        }
    }
}

#[inline(always)]
pub fn count_tx(slot: u32, bytes: u32) {
    if let Some(stats) = PORT_STATS.get_ptr_mut(slot) {
        // SAFETY: as in count_rx.
        unsafe {
            (*stats).tx_packets += 1;
            (*stats).tx_bytes += bytes as u64;
        }
    }
}

/// Counts a drop globally and, when the frame came from an endpoint, against that endpoint's slot.
#[inline(always)]
pub fn count_drop(reason: DropReason, from_slot: Option<u32>) {
    let index = reason as u32;
    if let Some(total) = DROPS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot.
        unsafe { *total += 1 };
    }
    if let Some(slot) = from_slot {
        if let Some(stats) = PORT_STATS.get_ptr_mut(slot) {
            if let Some(count) = unsafe { (*stats).drops.get_mut(index as usize) } {
                *count += 1;
            }
        }
    }
}

/// Counts one event of a flood: its spreading, or the copies' way in (`flood_counter`).
#[inline(always)]
pub fn count_flood(counter: u32) {
    if let Some(total) = FLOOD_COUNTS.get_ptr_mut(counter) {
        // SAFETY: per-CPU slot.
        unsafe { *total += 1 };
    }
}
