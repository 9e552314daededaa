//! 802.1Q VLANs done here instead of by the 8021q module (which this kind of host may not have): a network on
//! VLAN N of a parent gets the frames of the parent tagged N, untagged, and what its endpoints send leaves the parent
//! tagged N. The tag is taken off only once a frame is known to be for the network's endpoints; everything else goes
//! on to the host as it came.
use aya_ebpf::{
    bindings::TC_ACT_OK,
    helpers::{bpf_skb_vlan_pop, bpf_skb_vlan_push, bpf_xdp_adjust_head},
    programs::{TcContext, XdpContext},
};
use datapath_common::NetworkConfig;
use network_types::{eth::EtherType, vlan::VlanHdr};

use crate::{
    error::Error,
    parse::{parse_l2, ptr_at, L2Header},
};

/// Both MACs: what stays in front when a tag is taken out of the frame.
const MACS_LEN: usize = 12;

/// Takes the outer tag out of a frame in XDP (which sees every tag in the frame's bytes): the MACs move over it and
/// the frame then starts `VlanHdr::LEN` bytes later.
#[inline(always)]
pub fn pop_xdp(ctx: &XdpContext) -> Result<(), Error> {
    // The whole tag must be there, not only the MACs.
    let _tag: *const VlanHdr = ptr_at(ctx, MACS_LEN + 2)?;
    let macs: *const [u8; MACS_LEN] = ptr_at(ctx, 0)?;
    let moved: *const [u8; MACS_LEN] = ptr_at(ctx, VlanHdr::LEN)?;
    // SAFETY: both ranges lie inside the frame (checked above); the MACs are read out before being written over
    // their overlap.
    unsafe {
        let copy = *macs;
        *(moved as *mut [u8; MACS_LEN]) = copy;
        if bpf_xdp_adjust_head(ctx.ctx, VlanHdr::LEN as i32) != 0 {
            return Err(Error::Vlan);
        }
    }
    Ok(())
}

/// Runs `deliver` on a tagged frame of a VLAN network in TC with the outer tag taken off (from the skb's metadata
/// or the frame's bytes, wherever it is) and the frame parsed anew. When `deliver` lets the frame go on to the host,
/// its tag is put back as it was, priority bits included: the host sees VLAN traffic as it came.
#[inline(always)]
pub fn untagged_tc(
    ctx: &TcContext,
    l2: &L2Header,
    deliver: impl FnOnce(&L2Header) -> Result<i32, Error>,
) -> Result<i32, Error> {
    // SAFETY: plain helper calls on the program's own skb.
    if unsafe { bpf_skb_vlan_pop(ctx.skb.skb) } != 0 {
        return Err(Error::Vlan);
    }
    let verdict = deliver(&parse_l2(ctx)?)?;
    if verdict == TC_ACT_OK as i32 {
        // SAFETY: as above.
        if unsafe { bpf_skb_vlan_push(ctx.skb.skb, EtherType::Ieee8021q as u16, l2.vlan_tci) } != 0 {
            return Err(Error::Vlan);
        }
    }
    Ok(verdict)
}

/// Tags what an endpoint of a VLAN network sends before it leaves the parent (the tag goes into the skb's metadata,
/// and the parent's driver, or the stack for a device without VLAN offload, puts it into the frame). The priority
/// bits come from the skb's priority (SO_PRIORITY, 0-7; higher values carry none), as a VLAN device with the
/// identity egress-qos-map would set them.
#[inline(always)]
pub fn tag_tc(ctx: &TcContext, network: &NetworkConfig) -> Result<(), Error> {
    if network.vlan_id == 0 {
        return Ok(());
    }
    // SAFETY: plain reads of the program's own skb and helper calls on it.
    unsafe {
        let priority = (*ctx.skb.skb).priority;
        let pcp = if priority <= 7 { (priority as u16) << 13 } else { 0 };
        if bpf_skb_vlan_push(ctx.skb.skb, EtherType::Ieee8021q as u16, pcp | network.vlan_id) != 0 {
            return Err(Error::Vlan);
        }
    }
    Ok(())
}
