//! An 802.1Q node that is not xlan: frames tagged by hand (the tag in the bytes, as a switch's trunk port carries
//! them) and sent from an AF_PACKET socket, and a tap that reads each frame's outer tag wherever the kernel kept it
//! (in the bytes, or beside them: `sniff::Seen::dot1q`). Independent of xlan's own parsing, so tests can hold the
//! datapath's VLAN handling against it.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::bench::frame::ones_complement_sum;
use crate::link;
use crate::netns::Netns;
use crate::sniff::Capture;

pub const BROADCAST: [u8; 6] = [0xff; 6];
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_8021Q: u16 = 0x8100;

/// An Ethernet frame carrying `payload`, tagged with (VLAN ID, priority) if `tag` is given.
pub fn frame(dst: [u8; 6], src: [u8; 6], tag: Option<(u16, u8)>, ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = [dst, src].concat();
    if let Some((vid, pcp)) = tag {
        frame.extend(ETH_P_8021Q.to_be_bytes());
        frame.extend((u16::from(pcp) << 13 | vid).to_be_bytes());
    }
    frame.extend(ether_type.to_be_bytes());
    frame.extend(payload);
    // The minimum frame (without FCS): shorter ones are padded on a real wire too.
    let min = if tag.is_some() { 64 } else { 60 };
    frame.resize(frame.len().max(min), 0);
    frame
}

/// An ARP request from (`mac`, `ip`) for `target`, tagged as `tag` says.
pub fn arp_request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr, tag: Option<(u16, u8)>) -> Vec<u8> {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend(mac);
    arp.extend(ip.octets());
    arp.extend([0; 6]);
    arp.extend(target.octets());
    frame(BROADCAST, mac, tag, ETH_P_ARP, &arp)
}

/// An ICMP echo request (id, sequence 1) in IPv4 from (`mac`, `ip`) to (`dst_mac`, `dst`), tagged as `tag` says.
pub fn echo_request(
    mac: [u8; 6],
    ip: Ipv4Addr,
    dst_mac: [u8; 6],
    dst: Ipv4Addr,
    id: u16,
    tag: Option<(u16, u8)>,
) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend(id.to_be_bytes());
    icmp.extend(1u16.to_be_bytes());
    icmp.extend(b"xlan 802.1q probe");
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip_header = vec![0x45, 0];
    ip_header.extend(total.to_be_bytes());
    ip_header.extend([0, 0, 0x40, 0, 64, 1, 0, 0]);
    ip_header.extend(ip.octets());
    ip_header.extend(dst.octets());
    let sum = checksum(&ip_header);
    ip_header[10..12].copy_from_slice(&sum.to_be_bytes());
    frame(dst_mac, mac, tag, ETH_P_IPV4, &[ip_header, icmp].concat())
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    !ones_complement_sum(bytes, 0)
}

/// Sends `frame` as it is out of `ifname` in `netns`.
pub fn send(netns: &Netns, ifname: &str, frame: Vec<u8>) -> Result<()> {
    send_paced(netns, ifname, frame, 1, None).map(|_| ())
}

/// Sends `frame` `count` times out of `ifname` in `netns`, at `rate` frames per second (as fast as the socket takes
/// them without one); returns how long it took.
pub fn send_paced(netns: &Netns, ifname: &str, frame: Vec<u8>, count: u64, rate: Option<u64>) -> Result<Duration> {
    send_numbered(netns, ifname, frame, count, rate, None)
}

/// `send_paced`, with the frame's number (0, 1, …; u32, big-endian) written at byte `number_at` of each frame when
/// given: receivers can tell which frames they got, how often and in which order.
pub fn send_numbered(
    netns: &Netns,
    ifname: &str,
    mut frame: Vec<u8>,
    count: u64,
    rate: Option<u64>,
    number_at: Option<usize>,
) -> Result<Duration> {
    if let Some(at) = number_at {
        anyhow::ensure!(at + 4 <= frame.len(), "frame number at byte {at} is past the frame's {} bytes", frame.len());
    }
    let ifname = ifname.to_string();
    netns.run(move || -> Result<Duration> {
        let socket = crate::sniff::packet_socket()?;
        let mut addr = crate::sniff::link_address(link::ifindex(&ifname)?);
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        let start = Instant::now();
        for sent_so_far in 0..count {
            if let Some(rate) = rate {
                // Ahead of the schedule: wait for it (in steps of a millisecond's frames, not per frame).
                let due = Duration::from_secs_f64(sent_so_far as f64 / rate as f64);
                if let Some(early) = due.checked_sub(start.elapsed()).filter(|early| *early > Duration::from_millis(1))
                {
                    std::thread::sleep(early);
                }
            }
            if let Some(at) = number_at {
                frame[at..at + 4].copy_from_slice(&(sent_so_far as u32).to_be_bytes());
            }
            let sent = unsafe {
                libc::sendto(
                    socket.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if sent != frame.len() as isize {
                return Err(std::io::Error::last_os_error()).with_context(|| format!("sending on {ifname}"));
            }
        }
        Ok(start.elapsed())
    })?
}

/// One frame a [`Tap`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    pub src: [u8; 6],
    pub dst: [u8; 6],
    /// The outer 802.1Q tag: (VLAN ID, priority).
    pub dot1q: Option<(u16, u8)>,
    /// The EtherType behind the tag (or of the untagged frame).
    pub ether_type: u16,
    /// What follows the EtherType (up to the snap length).
    pub payload: Vec<u8>,
    pub outgoing: bool,
}

/// Every frame an interface sends and receives, with its outer 802.1Q tag wherever the kernel kept it.
pub struct Tap(Capture<Vec<Tagged>>);

impl Tap {
    pub fn start(netns: &Netns, ifname: &str) -> Result<Tap> {
        let capture = Capture::start(netns, ifname, 256, Vec::new(), |frames, seen| {
            if seen.bytes.len() < 14 {
                return;
            }
            let in_bytes = seen.offloaded_tci.is_none() && seen.bytes[12..14] == ETH_P_8021Q.to_be_bytes();
            let at = if in_bytes { 16 } else { 12 };
            let Some(ether_type) = seen.bytes.get(at..at + 2) else { return };
            frames.push(Tagged {
                dst: seen.bytes[..6].try_into().expect("6 bytes"),
                src: seen.bytes[6..12].try_into().expect("6 bytes"),
                dot1q: seen.dot1q(),
                ether_type: u16::from_be_bytes([ether_type[0], ether_type[1]]),
                payload: seen.bytes[at + 2..].to_vec(),
                outgoing: seen.outgoing,
            });
        })?;
        Ok(Tap(capture))
    }

    pub fn finish(self) -> Result<Vec<Tagged>> {
        self.0.finish()
    }
}

impl Tagged {
    /// An ARP reply saying `ip` is at this frame's sender.
    pub fn is_arp_reply_for(&self, ip: Ipv4Addr) -> bool {
        self.ether_type == ETH_P_ARP
            && self.payload.get(6..8) == Some(&[0, 2])
            && self.payload.get(14..18) == Some(&ip.octets())
    }

    /// An ICMP echo reply from `ip` with this id.
    pub fn is_echo_reply(&self, ip: Ipv4Addr, id: u16) -> bool {
        self.ether_type == ETH_P_IPV4
            && self.payload.get(9) == Some(&1)
            && self.payload.get(12..16) == Some(&ip.octets())
            && self.payload.get(20) == Some(&0)
            && self.payload.get(24..26) == Some(&id.to_be_bytes())
    }
}
