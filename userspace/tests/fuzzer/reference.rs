//! The test's own reading of a frame, written from the protocols and the README's rules, not from the datapath's
//! code: which headers are whole, the addresses ipvlan demultiplexes by, and whether a frame is VXLAN as RFC 7348
//! and the README define it. The oracle decides what may be delivered from this reading; where it and the datapath
//! disagree, the fuzzer reports it.
use super::frames::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6};

pub fn is_multicast(mac: &[u8]) -> bool {
    mac[0] & 1 == 1
}

/// Ethernet and the first 802.1Q/802.1ad tag, if any: the datapath reads one tag (VID 0 is a priority tag, no VLAN);
/// the rest of a stack is payload to it.
#[derive(Clone, Copy, Debug)]
pub struct L2 {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// The first tag's TPID, 0 when untagged.
    pub tpid: u16,
    pub vid: u16,
    pub ether_type: u16,
    /// Where the payload (the L3 header) starts.
    pub l3: usize,
}

/// A frame whose Ethernet header or first tag is cut short: nothing may be done with it but drop it.
#[derive(Debug)]
pub struct Cut;

fn be16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

/// `frame` is at least an Ethernet header long (the kernel runs no program on less).
pub fn l2(frame: &[u8]) -> Result<L2, Cut> {
    if frame.len() < 14 {
        return Err(Cut);
    }
    let mut l2 = L2 {
        dst: frame[0..6].try_into().unwrap(),
        src: frame[6..12].try_into().unwrap(),
        tpid: 0,
        vid: 0,
        ether_type: be16(frame, 12),
        l3: 14,
    };
    if is_vlan_tpid(l2.ether_type) {
        if frame.len() < 18 {
            return Err(Cut);
        }
        l2.tpid = l2.ether_type;
        l2.vid = be16(frame, 14) & 0x0fff;
        l2.ether_type = be16(frame, 16);
        l2.l3 = 18;
    }
    Ok(l2)
}

impl L2 {
    /// The VLAN the frame is on, as IEEE 802.1Q reads its outer tag: 0 untagged or priority-tagged, an 802.1Q tag's
    /// VID; None for an outer tag of another TPID (802.1ad's S-tag), which puts it on no VLAN of ours.
    pub fn vlan(&self) -> Option<u16> {
        match self.tpid {
            0 => Some(0),
            ETH_P_8021Q => Some(self.vid),
            _ => None,
        }
    }

    /// `l2` of a frame whose EtherType is read as it is, tag or not: what XDP knows of a frame behind the tag it
    /// has taken off.
    pub fn untagged(frame: &[u8]) -> Result<L2, Cut> {
        if frame.len() < 14 {
            return Err(Cut);
        }
        let (dst, src) = (frame[0..6].try_into().unwrap(), frame[6..12].try_into().unwrap());
        Ok(L2 { dst, src, tpid: 0, vid: 0, ether_type: be16(frame, 12), l3: 14 })
    }
}

/// The TPIDs the kernel takes for VLAN tags (eth_type_vlan): 802.1Q's and 802.1ad's.
pub fn is_vlan_tpid(ether_type: u16) -> bool {
    ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD
}

/// The frame without its first tag (the 4 bytes behind the MACs); `frame` has a whole one.
pub fn without_tag(frame: &[u8]) -> Vec<u8> {
    let mut untagged = frame[..12].to_vec();
    untagged.extend_from_slice(&frame[16..]);
    untagged
}

/// The addresses of the L3 header, IPv4 ones as IPv4-mapped IPv6 (::ffff:a.b.c.d), as ipvlan's table keys them.
#[derive(Clone, Copy, Debug)]
pub enum L3 {
    Ip {
        src: [u8; 16],
        dst: [u8; 16],
    },
    /// ARP for IPv4 (protocol address length 4): sender and target protocol addresses.
    Arp {
        src: [u8; 16],
        dst: [u8; 16],
        operation: u16,
    },
    /// No addresses to go by.
    Other,
}

impl L3 {
    pub fn src(&self) -> Option<[u8; 16]> {
        match self {
            L3::Ip { src, .. } | L3::Arp { src, .. } => Some(*src),
            L3::Other => None,
        }
    }

    pub fn dst(&self) -> Option<[u8; 16]> {
        match self {
            L3::Ip { dst, .. } | L3::Arp { dst, .. } => Some(*dst),
            L3::Other => None,
        }
    }

    pub fn is_ip(&self) -> bool {
        matches!(self, L3::Ip { .. })
    }
}

pub fn v4_mapped(v4: &[u8]) -> [u8; 16] {
    let mut addr = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
    addr[12..].copy_from_slice(&v4[..4]);
    addr
}

/// The L3 addresses, or `Cut` when the IPv4 (20 bytes), IPv6 (40) or ARP (28) header is not whole.
pub fn l3(frame: &[u8], l2: &L2) -> Result<L3, Cut> {
    let at = l2.l3;
    let whole = |len: usize| if frame.len() >= at + len { Ok(()) } else { Err(Cut) };
    match l2.ether_type {
        ETH_P_IPV4 => {
            whole(20)?;
            Ok(L3::Ip { src: v4_mapped(&frame[at + 12..]), dst: v4_mapped(&frame[at + 16..]) })
        }
        ETH_P_IPV6 => {
            whole(40)?;
            Ok(L3::Ip {
                src: frame[at + 8..at + 24].try_into().unwrap(),
                dst: frame[at + 24..at + 40].try_into().unwrap(),
            })
        }
        ETH_P_ARP => {
            whole(28)?;
            if frame[at + 5] != 4 {
                return Ok(L3::Other);
            }
            Ok(L3::Arp {
                src: v4_mapped(&frame[at + 14..]),
                dst: v4_mapped(&frame[at + 24..]),
                operation: be16(frame, at + 6),
            })
        }
        _ => Ok(L3::Other),
    }
}

/// :: and ::ffff:0.0.0.0, the sources of DAD and ARP probes: no address to check.
pub fn unspecified(addr: &[u8; 16]) -> bool {
    addr[..10].iter().all(|b| *b == 0)
        && addr[12..].iter().all(|b| *b == 0)
        && matches!(addr[10..12], [0, 0] | [0xff, 0xff])
}

/// What the README calls VXLAN for this host: untagged (or priority-tagged) IPv4 without options and not a
/// fragment, UDP, a VXLAN header with the I flag, and the inner Ethernet header whole. Whether a network of this
/// host takes it (parent, VNI, port, outer destination) is the world's to say.
#[derive(Clone, Copy, Debug)]
pub struct Vxlan {
    pub outer_src: [u8; 4],
    pub outer_dst: [u8; 4],
    pub dst_port: u16,
    pub vni: u32,
    /// Where the inner Ethernet header starts.
    pub inner: usize,
}

pub fn vxlan(frame: &[u8], l2: &L2) -> Option<Vxlan> {
    let at = l2.l3;
    let inner = at + 20 + 8 + 8;
    if l2.vlan() != Some(0) || l2.ether_type != ETH_P_IPV4 || frame.len() < inner + 14 {
        return None;
    }
    let ip = &frame[at..];
    let fragment = be16(ip, 6) & 0x3fff != 0;
    if ip[0] != 0x45 || ip[9] != 17 || fragment {
        return None;
    }
    let vxlan = &frame[at + 28..];
    if vxlan[0] & 0x08 == 0 {
        return None;
    }
    Some(Vxlan {
        outer_src: ip[12..16].try_into().unwrap(),
        outer_dst: ip[16..20].try_into().unwrap(),
        dst_port: be16(frame, at + 22),
        vni: u32::from_be_bytes([0, vxlan[4], vxlan[5], vxlan[6]]),
        inner,
    })
}

/// Where an inner Ethernet header would start if the frame were VXLAN over untagged IPv4 without options, for the
/// checks that nothing is learned from frames that are not.
pub fn would_be_inner(l2: &L2) -> usize {
    l2.l3 + 36
}

/// A VTEP address `xlan` would accept from a user (validate_vtep): unicast, not unspecified, not loopback, not
/// broadcast.
pub fn unicast_vtep(ip: [u8; 4]) -> bool {
    ip != [0; 4] && ip != [255; 4] && ip[0] != 127 && !(224..=239).contains(&ip[0])
}

pub fn ipv4_header_ok(header: &[u8]) -> bool {
    let mut sum: u32 = header.chunks(2).map(|w| u16::from_be_bytes([w[0], w[1]]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}
