//! General queries, IGMPv3 and MLDv2, sent into an endpoint: its stack answers with a report of every group it is
//! in, from which the datapath learns the memberships it did not see being made (datapath-ebpf's `groups`): those
//! of endpoints that joined before their datapath kept groups (an upgrade from an xlan without), or while their
//! maps were being made again (a repair). Without them, the first endpoint to report a group would be taken for its
//! only member, and the others would stop getting it.
//!
//! The queries go out of the endpoint's host-side veth (an AF_PACKET socket of the calling thread's namespace), so
//! they reach only that endpoint: its program is on the veth's ingress, not its egress.
use std::{
    io,
    mem::size_of,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use datapath_common::csum;

/// How long a host may take to answer (the queries' maximum response time); reports are spread over it.
pub const RESPONSE_TIME: Duration = Duration::from_secs(1);
/// Robustness variable and query interval (the defaults of RFC 3376/3810), which a host adopts from a query.
const ROBUSTNESS: u8 = 2;
const QUERY_INTERVAL_SECS: u8 = 125;

/// Asks the endpoint behind host-side veth `ifindex` (source MAC `mac`) for its IPv4 and IPv6 groups, or only
/// whether it is in `group` (a group-specific query, sent to the group: only members answer).
pub fn query(ifindex: u32, mac: [u8; 6], group: Option<IpAddr>) -> io::Result<()> {
    let frames = match group {
        None => vec![igmp_v3_query(mac, None), mld_v2_query(mac, None)],
        Some(IpAddr::V4(group)) => vec![igmp_v3_query(mac, Some(group))],
        Some(IpAddr::V6(group)) => vec![mld_v2_query(mac, Some(group))],
    };
    let socket = PacketSocket::open()?;
    for frame in frames {
        socket.send(ifindex, &frame)?;
    }
    Ok(())
}

/// IGMPv3 query (RFC 3376 4.1) from 0.0.0.0, TTL 1, with the router alert option: general, to all hosts, or
/// specific to `group`, to the group.
fn igmp_v3_query(src_mac: [u8; 6], group: Option<Ipv4Addr>) -> Vec<u8> {
    const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
    let dst = group.unwrap_or(ALL_HOSTS);
    let mut igmp = [0u8; 12];
    igmp[0] = 0x11;
    igmp[4..8].copy_from_slice(&group.unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
    // Maximum response code: tenths of a second.
    igmp[1] = (RESPONSE_TIME.as_millis() / 100) as u8;
    igmp[8] = ROBUSTNESS;
    igmp[9] = QUERY_INTERVAL_SECS;
    let checksum = csum::finish(csum::add_words(0, &igmp));
    igmp[2..4].copy_from_slice(&checksum);
    let mut ip = [0u8; 24];
    ip[..4].copy_from_slice(&[0x46, 0xc0, 0, (24 + igmp.len()) as u8]);
    ip[8..10].copy_from_slice(&[1, 2]);
    ip[16..20].copy_from_slice(&dst.octets());
    ip[20..24].copy_from_slice(&[0x94, 0x04, 0, 0]);
    let checksum = csum::ipv4_header(&ip);
    ip[10..12].copy_from_slice(&checksum);
    let [_, b, c, d] = dst.octets();
    ethernet([0x01, 0x00, 0x5e, b & 0x7f, c, d], src_mac, 0x0800, &[&ip[..], &igmp].concat())
}

/// MLDv2 query (RFC 3810 5.1) from a link-local address (hosts drop others), hop limit 1, behind a hop-by-hop
/// header with the router alert option: general, to all nodes, or specific to `group`, to the group.
fn mld_v2_query(src_mac: [u8; 6], group: Option<Ipv6Addr>) -> Vec<u8> {
    const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let dst = group.unwrap_or(ALL_NODES).octets();
    let src = link_local(src_mac);
    let mut mld = [0u8; 28];
    mld[0] = 130;
    mld[8..24].copy_from_slice(&group.unwrap_or(Ipv6Addr::UNSPECIFIED).octets());
    // Maximum response code: milliseconds.
    mld[4..6].copy_from_slice(&(RESPONSE_TIME.as_millis() as u16).to_be_bytes());
    mld[24] = ROBUSTNESS;
    mld[25] = QUERY_INTERVAL_SECS;
    let checksum = csum::ipv6_upper_layer(&src, &dst, 58, &mld);
    mld[2..4].copy_from_slice(&checksum);
    // Next header ICMPv6, length 0; router alert (MLD), two bytes of padding.
    let hop_by_hop = [58, 0, 5, 2, 0, 0, 1, 0];
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend(((hop_by_hop.len() + mld.len()) as u16).to_be_bytes());
    ip.extend([0, 1]);
    ip.extend(src);
    ip.extend(dst);
    ethernet([0x33, 0x33, dst[12], dst[13], dst[14], dst[15]], src_mac, 0x86dd, &[&ip[..], &hop_by_hop, &mld].concat())
}

/// The EUI-64 link-local address of `mac` (fe80::/64).
fn link_local(mac: [u8; 6]) -> [u8; 16] {
    let mut address = [0u8; 16];
    address[..2].copy_from_slice(&[0xfe, 0x80]);
    address[8..].copy_from_slice(&[mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]]);
    address
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    [&dst[..], &src, &ether_type.to_be_bytes(), payload].concat()
}

/// A raw AF_PACKET socket: frames sent through it leave the device they are addressed to as they are.
struct PacketSocket(std::os::fd::OwnedFd);

impl PacketSocket {
    fn open() -> io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: a plain system call; the descriptor it returns is owned here.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor just opened, owned by nothing else.
        Ok(Self(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: zeroed sockaddr_ll is valid; the fields set are what AF_PACKET reads for a send.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_ifindex = ifindex as i32;
        address.sll_halen = 6;
        address.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: the frame and the address outlive the call; the lengths are theirs.
        let sent = unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&address as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A correct checksum sums (with the field in place) to 0xffff, which `finish` turns into 0.
    #[test]
    fn queries_carry_valid_checksums_and_the_fields_hosts_check() {
        let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        let igmp_frame = igmp_v3_query(mac, None);
        let ip: [u8; 24] = igmp_frame[14..38].try_into().unwrap();
        assert_eq!(csum::ipv4_header(&ip), [0, 0], "IPv4 header checksum");
        let igmp: [u8; 12] = igmp_frame[38..50].try_into().unwrap();
        assert_eq!(csum::finish(csum::add_words(0, &igmp)), [0, 0], "IGMP checksum");
        assert_eq!((ip[8], ip[9], igmp[0], igmp[1]), (1, 2, 0x11, 10), "TTL 1, IGMP, query, 1 s");

        let mld_frame = mld_v2_query(mac, None);
        let src: [u8; 16] = mld_frame[22..38].try_into().unwrap();
        let dst: [u8; 16] = mld_frame[38..54].try_into().unwrap();
        let mld: [u8; 28] = mld_frame[62..90].try_into().unwrap();
        assert_eq!(csum::ipv6_upper_layer(&src, &dst, 58, &mld), [0, 0], "ICMPv6 checksum");
        assert_eq!(&src[..2], &[0xfe, 0x80], "a link-local source");
        assert_eq!((mld_frame[21], mld[0], u16::from_be_bytes([mld[4], mld[5]])), (1, 130, 1000));
    }

    /// A group-specific query goes to the group (its MAC and address) and names it.
    #[test]
    fn group_specific_queries_go_to_the_group() {
        let mac = [0x02, 0, 0, 0, 0, 1];
        let frame = igmp_v3_query(mac, Some(Ipv4Addr::new(239, 129, 2, 3)));
        assert_eq!(&frame[..6], &[0x01, 0x00, 0x5e, 0x01, 2, 3]);
        assert_eq!((&frame[30..34], &frame[42..46]), (&[239, 129, 2, 3][..], &[239, 129, 2, 3][..]));
        let ip: [u8; 24] = frame[14..38].try_into().unwrap();
        assert_eq!(csum::ipv4_header(&ip), [0, 0]);
        let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 5);
        let frame = mld_v2_query(mac, Some(group));
        assert_eq!(&frame[..6], &[0x33, 0x33, 0xff, 0, 0, 5]);
        assert_eq!((&frame[38..54], &frame[70..86]), (&group.octets()[..], &group.octets()[..]));
        let (src, dst): ([u8; 16], [u8; 16]) = (frame[22..38].try_into().unwrap(), frame[38..54].try_into().unwrap());
        let mld: [u8; 28] = frame[62..90].try_into().unwrap();
        assert_eq!(csum::ipv6_upper_layer(&src, &dst, 58, &mld), [0, 0]);
    }
}
