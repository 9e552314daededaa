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

/// Takes the outer tag off a tagged frame of a VLAN network in TC (from the skb's metadata or the frame's bytes,
/// wherever it is) and parses the frame anew. `retag_passed` undoes it for what goes on to the host. Two calls, not
/// one taking the delivery as a closure: LLVM may leave a closure out of line, and its stack frame then adds to the
/// program's, over the verifier's 512 bytes.
#[inline(always)]
pub fn untag_tc(ctx: &TcContext) -> Result<L2Header, Error> {
    // SAFETY: a plain helper call on the program's own skb.
    if unsafe { bpf_skb_vlan_pop(ctx.skb.skb) } != 0 {
        return Err(Error::Vlan);
    }
    parse_l2(ctx)
}

/// After `untag_tc` and the delivery's `verdict`: a frame let go on to the host gets its tag (`tagged`'s) back as
/// it was, priority bits included: the host sees VLAN traffic as it came.
#[inline(always)]
pub fn retag_passed(ctx: &TcContext, tagged: &L2Header, verdict: i32) -> Result<i32, Error> {
    if verdict == TC_ACT_OK as i32 {
        // SAFETY: a plain helper call on the program's own skb.
        if unsafe { bpf_skb_vlan_push(ctx.skb.skb, EtherType::Ieee8021q as u16, tagged.vlan_tci) } != 0 {
            return Err(Error::Vlan);
        }
    }
    Ok(verdict)
}

/// Tags what an endpoint of a VLAN network sends before it leaves the parent (the tag goes into the skb's metadata,
/// and the parent's driver, or the stack for a device without VLAN offload, puts it into the frame). The priority
/// bits are the IP precedence (the top three bits of the IPv4 TOS or IPv6 traffic class), as switches map DSCP to
/// PCP: the sender's socket priority does not survive the veth (the kernel zeroes it when a frame crosses namespaces).
#[inline(always)]
pub fn tag_tc(ctx: &TcContext, l2: &L2Header, network: &NetworkConfig) -> Result<(), Error> {
    if network.vlan_id == 0 {
        return Ok(());
    }
    let pcp = ip_precedence(ctx, l2) << 13;
    // SAFETY: a plain helper call on the program's own skb.
    if unsafe { bpf_skb_vlan_push(ctx.skb.skb, EtherType::Ieee8021q as u16, pcp | network.vlan_id) } != 0 {
        return Err(Error::Vlan);
    }
    Ok(())
}

/// The IP precedence of an IPv4 or IPv6 packet (0-7), 0 for anything else or a header cut short.
#[inline(always)]
fn ip_precedence(ctx: &TcContext, l2: &L2Header) -> u16 {
    let Ok(first) = ptr_at::<[u8; 2]>(ctx, l2.l3_offset) else { return 0 };
    // SAFETY: ptr_at checked both bytes lie inside the packet.
    let [version_and_more, next] = unsafe { *first };
    if l2.ether_type == EtherType::Ipv4 as u16 {
        // The TOS byte follows the version/IHL byte.
        (next >> 5) as u16
    } else if l2.ether_type == EtherType::Ipv6 as u16 {
        // The traffic class straddles the first two bytes: its top three bits are bits 3-1 of the first.
        ((version_and_more & 0x0f) >> 1) as u16
    } else {
        0
    }
}
