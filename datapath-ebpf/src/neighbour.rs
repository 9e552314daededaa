//! ARP and IPv6 neighbour discovery answered for ipvlan l3 endpoints: they are NOARP and get no broadcast or
//! multicast, so the outside resolves their addresses to the parent's MAC through these answers. Done in TC
//! (parent ingress): an answer is a transmitted skb, which works on every device (XDP_TX into a veth does not
//! without a program on its peer), and ARP/ND is not the fast path.
use aya_ebpf::{
    bindings::TC_ACT_SHOT,
    helpers::{bpf_redirect, bpf_skb_change_tail},
    programs::TcContext,
};
use core::mem::size_of;
use datapath_common::{csum, NetworkConfig};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::Ipv6Hdr,
};

use crate::{
    error::Error,
    ipvlan::endpoint_owner,
    parse::{l3_kind, ptr_at, ArpHdr, IpAddress, L2Header, L3Addrs},
};

const ICMPV6: u8 = 58;
const NEIGHBOUR_SOLICITATION: u8 = 135;
const NEIGHBOUR_ADVERTISEMENT: u8 = 136;
/// ICMPv6 NS/NA: type, code, checksum, flags/reserved, target.
const ND_LEN: usize = 24;
/// The target link-layer address option of the answer.
const ND_OPTION_LEN: usize = 8;

/// The answer's verdict if the frame is an ARP request or a neighbour solicitation for an endpoint's address.
#[inline(always)]
pub fn answer(
    ctx: &TcContext,
    l2: &L2Header,
    l3: &L3Addrs,
    network_id: u32,
    network: &NetworkConfig,
) -> Result<Option<i32>, Error> {
    if l2.vlan_id != 0 {
        return Ok(None);
    }
    if l3.kind == l3_kind::ARP {
        if l3.arp_operation == 1 && l3.src != l3.dst && endpoint_owner(network_id, l3.dst).is_some() {
            return answer_arp(ctx, l2, network).map(Some);
        }
        return Ok(None);
    }
    if l3.kind == l3_kind::IP && l2.ether_type == EtherType::Ipv6 as u16 && l3.src != IpAddress::UNSPECIFIED {
        return answer_solicitation(ctx, l2, network_id, network, l3.src.bytes());
    }
    Ok(None)
}

/// ARP reply packet for IPv4 over Ethernet.
#[repr(C)]
struct ArpFrame {
    eth: EthHdr,
    arp: ArpHdr,
}

#[inline(always)]
fn answer_arp(ctx: &TcContext, l2: &L2Header, network: &NetworkConfig) -> Result<i32, Error> {
    let request: ArpHdr = ctx.load(l2.l3_offset).map_err(|_| Error::Malformed)?;
    let reply = ArpFrame {
        eth: EthHdr { dst_addr: l2.src, src_addr: network.parent_mac, ether_type: EtherType::Arp as u16 },
        arp: ArpHdr {
            operation: 2u16.to_be_bytes(),
            sha: network.parent_mac,
            spa: request.tpa,
            tha: request.sha,
            tpa: request.spa,
            ..request
        },
    };
    ctx.store(0, &reply, 0).map_err(|_| Error::Malformed)?;
    send_back(network)
}

/// Neighbour advertisement, as the answer is laid out.
#[repr(C)]
struct AdvertisementFrame {
    eth: EthHdr,
    ip: Ipv6Hdr,
    icmp: [u8; ND_LEN + ND_OPTION_LEN],
}

#[inline(always)]
fn answer_solicitation(
    ctx: &TcContext,
    l2: &L2Header,
    network_id: u32,
    network: &NetworkConfig,
    solicitor: [u8; 16],
) -> Result<Option<i32>, Error> {
    let ip: *const Ipv6Hdr = ptr_at(ctx, l2.l3_offset)?;
    // SAFETY: ptr_at checked the header lies inside the packet.
    let (next_header, hop_limit) = unsafe { ((*ip).next_hdr, (*ip).hop_limit) };
    // Only a plain NS (no extension headers, hop limit 255 as RFC 4861 requires).
    if next_header != ICMPV6 || hop_limit != 255 {
        return Ok(None);
    }
    let solicitation: [u8; ND_LEN] = match ctx.load(l2.l3_offset + Ipv6Hdr::LEN) {
        Ok(bytes) => bytes,
        Err(_) => return Ok(None),
    };
    if solicitation[0] != NEIGHBOUR_SOLICITATION || solicitation[1] != 0 {
        return Ok(None);
    }
    let mut target = [0u8; 16];
    target.copy_from_slice(&solicitation[8..24]);
    if endpoint_owner(network_id, IpAddress::from_bytes(target)).is_none() {
        return Ok(None);
    }
    let mut icmp = [0u8; ND_LEN + ND_OPTION_LEN];
    icmp[0] = NEIGHBOUR_ADVERTISEMENT;
    // Solicited, override.
    icmp[4] = 0x60;
    icmp[8..24].copy_from_slice(&target);
    icmp[24] = 2; // target link-layer address
    icmp[25] = 1; // in units of 8 bytes
    icmp[26..32].copy_from_slice(&network.parent_mac);
    let checksum = csum::ipv6_upper_layer(&target, &solicitor, ICMPV6, &icmp);
    icmp[2..4].copy_from_slice(&checksum);
    let answer = AdvertisementFrame {
        eth: EthHdr { dst_addr: l2.src, src_addr: network.parent_mac, ether_type: EtherType::Ipv6 as u16 },
        ip: Ipv6Hdr {
            vcf: [0x60, 0, 0, 0],
            payload_len: ((ND_LEN + ND_OPTION_LEN) as u16).to_be_bytes(),
            next_hdr: ICMPV6,
            hop_limit: 255,
            src_addr: target,
            dst_addr: solicitor,
        },
        icmp,
    };
    // SAFETY: a plain helper call on the program's own skb.
    if unsafe { bpf_skb_change_tail(ctx.skb.skb, size_of::<AdvertisementFrame>() as u32, 0) } != 0 {
        return Err(Error::Malformed);
    }
    ctx.store(0, &answer, 0).map_err(|_| Error::Malformed)?;
    send_back(network).map(Some)
}

/// Out of the parent, toward the asker.
#[inline(always)]
fn send_back(network: &NetworkConfig) -> Result<i32, Error> {
    // SAFETY: a plain helper call.
    let verdict = unsafe { bpf_redirect(network.parent_ifindex, 0) } as i32;
    Ok(if verdict < 0 { TC_ACT_SHOT as i32 } else { verdict })
}
