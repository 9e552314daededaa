//! Header parsing, written once for XDP and TC: every read is bounds-checked against the packet's end so the
//! verifier accepts it and a short frame becomes `Error::Malformed`, never an out-of-bounds read.
use aya_ebpf::programs::{TcContext, XdpContext};
use core::mem::size_of;
use datapath_common::{v4_mapped, FOREIGN_TAG};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{Ipv4Hdr, Ipv6Hdr},
    vlan::VlanHdr,
};

use crate::error::Error;

/// The frame a program runs on, XDP or TC alike: the linear data it may read directly, the device it is on and its
/// whole length.
pub trait Packet {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
    /// The device the program runs on: the frame's ingress device in XDP, the skb's device in TC.
    fn device(&self) -> u32;
    /// Bytes in the frame (in TC also what lies beyond the linear part).
    fn frame_len(&self) -> u32;
    /// The tag (TPID in network byte order, TCI) that is no longer in the frame's bytes, if any: in TC, the receive
    /// path has moved the outer 802.1Q/802.1ad tag into the skb (skb_vlan_untag) before tcx runs, and a sender's
    /// device may have put it there (VLAN tx offload). XDP reads none (`ParentConfig::vlan_networks` says why that
    /// matters).
    fn offloaded_tag(&self) -> Option<(u16, u16)>;
}

impl Packet for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }
    #[inline(always)]
    fn device(&self) -> u32 {
        // SAFETY: ctx points at a valid xdp_md.
        unsafe { (*self.ctx).ingress_ifindex }
    }
    #[inline(always)]
    fn frame_len(&self) -> u32 {
        (self.data_end() - self.data()) as u32
    }
    #[inline(always)]
    fn offloaded_tag(&self) -> Option<(u16, u16)> {
        None
    }
}

impl Packet for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }
    #[inline(always)]
    fn device(&self) -> u32 {
        // SAFETY: skb points at a valid __sk_buff.
        unsafe { (*self.skb.skb).ifindex }
    }
    #[inline(always)]
    fn frame_len(&self) -> u32 {
        self.len()
    }
    #[inline(always)]
    fn offloaded_tag(&self) -> Option<(u16, u16)> {
        // SAFETY: skb points at a valid __sk_buff.
        unsafe {
            let skb = &*self.skb.skb;
            (skb.vlan_present != 0).then_some((skb.vlan_proto as u16, skb.vlan_tci as u16))
        }
    }
}

/// Offsets of headers read in place: the verifier accepts a packet pointer's variable offset only while it stays
/// under its MAX_PACKET_OFF (0xffff) with the header's size added; no header xlan reads lies this far in.
const MAX_HEADER_OFFSET: usize = 0x7fff;

/// A pointer to a `T` at `offset`, if the whole `T` lies inside the packet.
#[inline(always)]
pub fn ptr_at<T>(packet: &impl Packet, offset: usize) -> Result<*const T, Error> {
    let start = packet.data();
    let end = packet.data_end();
    // The verifier adds an offset to a packet pointer only when it knows the offset's bounds, and it forgets them
    // when LLVM keeps the offset in a stack slot it wrote in parts (a header struct passed by reference): bound it
    // here, where it is used.
    if offset > MAX_HEADER_OFFSET || start + offset + size_of::<T>() > end {
        return Err(Error::Malformed);
    }
    Ok((start + offset) as *const T)
}

/// Writes `value` at `offset` of the frame by direct packet access, which costs no helper call: only where the
/// program owns the frame's head, as right after `bpf_skb_adjust_room` or `bpf_skb_change_head` (both make a cloned
/// head private). After `bpf_clone_redirect` the head is shared with the copies: `bpf_skb_store_bytes` then, which
/// unclones first. The write may be unaligned (x86's JIT and the verifier allow it for packet data).
/// A program with any direct write gets a prologue from the verifier (`bpf_unclone_prologue`) that unclones an skb
/// which arrives cloned before the program runs: a frame a packet tap cloned has its head copied once; TCP's clones,
/// whose headers are their own, are not.
#[inline(always)]
pub fn write_owned<T: Copy>(ctx: &TcContext, offset: usize, value: &T) -> Result<(), Error> {
    let at = ptr_at::<T>(ctx, offset)? as *mut T;
    // SAFETY: ptr_at checked the range lies inside the packet.
    unsafe { at.write(*value) };
    Ok(())
}

/// The layer-2 header: Ethernet plus at most one 802.1Q/802.1ad tag in the frame, and the outer tag wherever it is
/// (in the frame, or taken off into the skb). macvlan forwards by MAC alone; the tag picks the network on the parent,
/// and the payload's type and offset are what the L3 paths (ipvlan, vxlan) read.
#[derive(Clone, Copy)]
pub struct L2Header {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// The outer tag's VLAN ID if it is 802.1Q's, `FOREIGN_TAG` for another TPID (802.1ad), 0 when untagged (or
    /// priority-tagged).
    pub vlan_id: u32,
    /// The outer tag's TCI (priority, DEI, VLAN ID), host byte order; 0 when untagged.
    pub vlan_tci: u16,
    /// EtherType of the payload, network byte order.
    pub ether_type: u16,
    /// Where the layer-3 header starts.
    pub l3_offset: usize,
}

/// The VLAN a tag puts a frame in: its VLAN ID for an 802.1Q tag; `FOREIGN_TAG` for any other TPID.
#[inline(always)]
fn vlan_of(tpid: u16, tci: u16) -> u32 {
    if tpid == EtherType::Ieee8021q as u16 {
        (tci & 0x0fff) as u32
    } else {
        FOREIGN_TAG
    }
}

#[inline(always)]
pub fn parse_l2(packet: &impl Packet) -> Result<L2Header, Error> {
    let eth: *const EthHdr = ptr_at(packet, 0)?;
    // SAFETY: ptr_at checked that the header lies inside the packet.
    let (dst, src, outer_type) = unsafe { ((*eth).dst_addr, (*eth).src_addr, (*eth).ether_type) };
    // A tag the kernel took off the frame was outside whatever tag the frame still carries.
    let offloaded = packet.offloaded_tag();
    let (mut vlan_id, mut vlan_tci) = match offloaded {
        Some((tpid, tci)) => (vlan_of(tpid, tci), tci),
        None => (0, 0),
    };
    if outer_type == EtherType::Ieee8021q as u16 || outer_type == EtherType::Ieee8021ad as u16 {
        let tag: *const VlanHdr = ptr_at(packet, EthHdr::LEN)?;
        // SAFETY: as above.
        let (tci, ether_type) = unsafe { (u16::from_be_bytes((*tag).tci), (*tag).ether_type) };
        if offloaded.is_none() {
            vlan_id = vlan_of(outer_type, tci);
            vlan_tci = tci;
        }
        return Ok(L2Header { dst, src, vlan_id, vlan_tci, ether_type, l3_offset: EthHdr::LEN + VlanHdr::LEN });
    }
    Ok(L2Header { dst, src, vlan_id, vlan_tci, ether_type: outer_type, l3_offset: EthHdr::LEN })
}

/// What kind of layer-3 packet `L3Addrs` describes.
pub mod l3_kind {
    /// Anything else (no addresses to go by).
    pub const OTHER: u32 = 0;
    pub const IP: u32 = 1;
    /// ARP for IPv4 over Ethernet: src/dst are the sender and target protocol addresses.
    pub const ARP: u32 = 2;
}

/// An IP address, IPv4 mapped into IPv6 (::ffff:a.b.c.d) so one lookup serves both, as two words holding its 16
/// bytes in order. The BPF target may not assume a byte array is aligned, so it reads, copies and compares one byte
/// by byte: as `[u8; 16]`, the owner lookups' key compares and copies were about 60 instructions each, and the
/// source check 14 ns a frame (BPF_PROG_TEST_RUN of the endpoint program, ipvlan endpoint to endpoint); as words
/// they are a few.
#[repr(C)]
#[derive(Clone, Copy, PartialEq)]
pub struct IpAddress([u64; 2]);

impl IpAddress {
    /// ::, a DAD probe's source, and what an `L3Addrs` of kind OTHER holds.
    pub const UNSPECIFIED: Self = Self([0, 0]);
    /// ::ffff:0.0.0.0, an IPv4 ARP probe's sender.
    const V4_UNSPECIFIED: Self = Self::v4_mapped([0; 4]);

    #[inline(always)]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = bytes;
        Self([u64::from_ne_bytes([a, b, c, d, e, f, g, h]), u64::from_ne_bytes([i, j, k, l, m, n, o, p])])
    }

    #[inline(always)]
    pub const fn v4_mapped(v4: [u8; 4]) -> Self {
        Self::from_bytes(v4_mapped(v4))
    }

    #[inline(always)]
    pub const fn bytes(&self) -> [u8; 16] {
        let [a, b, c, d, e, f, g, h] = self.0[0].to_ne_bytes();
        let [i, j, k, l, m, n, o, p] = self.0[1].to_ne_bytes();
        [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p]
    }

    /// Unspecified, exactly :: or ::ffff:0.0.0.0: DAD probes and ARP probes carry no address to check.
    #[inline(always)]
    pub fn is_unspecified(&self) -> bool {
        *self == Self::UNSPECIFIED || *self == Self::V4_UNSPECIFIED
    }

    /// The last four bytes, where addresses differ most (IPv4's are there, mapped), as a number to hash: in network
    /// order, so the last byte is in its low bits.
    #[inline(always)]
    pub const fn low_bits(&self) -> u32 {
        u64::from_be(self.0[1]) as u32
    }
}

/// The addresses of a layer-3 packet. A plain struct filled in place, not an enum: the verifier rejects how LLVM
/// packs enums of arrays into registers together with pointers.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct L3Addrs {
    pub src: IpAddress,
    pub dst: IpAddress,
    pub kind: u32,
    /// ARP operation (1 request, 2 reply).
    pub arp_operation: u32,
}

/// The fixed part of an ARP packet for IPv4 over Ethernet.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ArpHdr {
    pub htype: [u8; 2],
    pub ptype: [u8; 2],
    pub hlen: u8,
    pub plen: u8,
    pub operation: [u8; 2],
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

#[inline(always)]
pub fn parse_l3(packet: &impl Packet, l2: &L2Header) -> Result<L3Addrs, Error> {
    let mut addrs =
        L3Addrs { src: IpAddress::UNSPECIFIED, dst: IpAddress::UNSPECIFIED, kind: l3_kind::OTHER, arp_operation: 0 };
    if l2.ether_type == EtherType::Ipv4 as u16 {
        let ip: *const Ipv4Hdr = ptr_at(packet, l2.l3_offset)?;
        // SAFETY: ptr_at checked the header lies inside the packet (likewise below).
        unsafe {
            addrs.src = IpAddress::v4_mapped((*ip).src_addr);
            addrs.dst = IpAddress::v4_mapped((*ip).dst_addr);
        }
        addrs.kind = l3_kind::IP;
    } else if l2.ether_type == EtherType::Ipv6 as u16 {
        let ip: *const Ipv6Hdr = ptr_at(packet, l2.l3_offset)?;
        unsafe {
            addrs.src = IpAddress::from_bytes((*ip).src_addr);
            addrs.dst = IpAddress::from_bytes((*ip).dst_addr);
        }
        addrs.kind = l3_kind::IP;
    } else if l2.ether_type == EtherType::Arp as u16 {
        let arp: *const ArpHdr = ptr_at(packet, l2.l3_offset)?;
        unsafe {
            if (*arp).plen == 4 {
                addrs.src = IpAddress::v4_mapped((*arp).spa);
                addrs.dst = IpAddress::v4_mapped((*arp).tpa);
                addrs.arp_operation = u16::from_be_bytes((*arp).operation) as u32;
                addrs.kind = l3_kind::ARP;
            }
        }
    }
    Ok(addrs)
}
