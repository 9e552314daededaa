//! The generator's frame template: one Ethernet + IPv4/IPv6 + UDP frame of a fixed size with valid IP and UDP
//! checksums, so the receiving stack accepts it like any other datagram. The generator only rewrites the UDP source
//! port (and patches the checksum) per frame.

use std::net::IpAddr;

use anyhow::{bail, Context, Result};

/// 64 bytes: the classic minimum-size benchmark frame (without the FCS, which a veth does not carry). IPv6's headers
/// take 62 of them. The generator restores exactly this many bytes of template into every frame.
pub const FRAME_LEN: usize = datapath_common::bench::FRAME_LEN;

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const PROTO_UDP: u8 = 17;
const TTL: u8 = 64;

/// Who sends to whom.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
}

/// A `FRAME_LEN`-byte UDP frame for `flow`; the addresses' family picks IPv4 or IPv6.
pub fn udp_frame(flow: &Flow) -> Result<Vec<u8>> {
    let mut frame = Vec::with_capacity(FRAME_LEN);
    frame.extend_from_slice(&flow.dst_mac);
    frame.extend_from_slice(&flow.src_mac);
    match (flow.src, flow.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let udp_len = FRAME_LEN - ETH_LEN - IPV4_LEN;
            frame.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut ip = [0u8; IPV4_LEN];
            ip[0] = 0x45; // version 4, 5 words
            ip[2..4].copy_from_slice(&((IPV4_LEN + udp_len) as u16).to_be_bytes());
            ip[6] = 0x40; // don't fragment
            ip[8] = TTL;
            ip[9] = PROTO_UDP;
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let check = !ones_complement_sum(&ip, 0);
            ip[10..12].copy_from_slice(&check.to_be_bytes());
            frame.extend_from_slice(&ip);
            let pseudo = [&src.octets()[..], &dst.octets()[..], &[0, PROTO_UDP], &(udp_len as u16).to_be_bytes()];
            frame.extend_from_slice(&udp_datagram(flow, udp_len, &pseudo.concat()));
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let udp_len = FRAME_LEN - ETH_LEN - IPV6_LEN;
            frame.extend_from_slice(&0x86ddu16.to_be_bytes());
            let mut ip = [0u8; IPV6_LEN];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            ip[6] = PROTO_UDP;
            ip[7] = TTL;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
            frame.extend_from_slice(&ip);
            let pseudo = [&src.octets()[..], &dst.octets()[..], &(udp_len as u32).to_be_bytes(), &[0, 0, 0, PROTO_UDP]];
            frame.extend_from_slice(&udp_datagram(flow, udp_len, &pseudo.concat()));
        }
        _ => bail!("flow {} -> {} mixes address families", flow.src, flow.dst),
    }
    debug_assert_eq!(frame.len(), FRAME_LEN);
    Ok(frame)
}

/// Bytes as "02:77:00:00:00:01".
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(":")
}

/// "02:77:00:00:00:01" as bytes.
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bytes = text
        .split(':')
        .map(|part| u8::from_str_radix(part, 16))
        .collect::<Result<Vec<u8>, _>>()
        .with_context(|| format!("bad MAC {text:?}"))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("bad MAC {text:?}: not six bytes"))
}

/// The UDP header and a zero payload, checksummed over `pseudo_header`.
fn udp_datagram(flow: &Flow, udp_len: usize, pseudo_header: &[u8]) -> Vec<u8> {
    let mut udp = vec![0u8; udp_len];
    udp[0..2].copy_from_slice(&flow.src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&flow.dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let check = match !ones_complement_sum(&udp, ones_complement_sum(pseudo_header, 0)) {
        // 0 would mean "no checksum" (and is not allowed at all over IPv6).
        0 => 0xffff,
        check => check,
    };
    udp[6..8].copy_from_slice(&check.to_be_bytes());
    udp
}

/// RFC 1071 one's-complement sum of big-endian 16-bit words (an odd last byte is padded with zero), folded.
pub(crate) fn ones_complement_sum(bytes: &[u8], start: u16) -> u16 {
    let mut sum = u32::from(start);
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(src: &str, dst: &str) -> Flow {
        Flow {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: 40000,
            dst_port: 9,
        }
    }

    /// A correct checksum makes the sum over the checksummed bytes (with the pseudo header) 0xffff.
    #[test]
    fn frames_have_the_size_and_valid_checksums() {
        let v4 = udp_frame(&flow("10.0.0.1", "10.0.0.2")).unwrap();
        assert_eq!(v4.len(), FRAME_LEN);
        assert_eq!(ones_complement_sum(&v4[ETH_LEN..ETH_LEN + IPV4_LEN], 0), 0xffff);
        let udp = &v4[ETH_LEN + IPV4_LEN..];
        let pseudo = [&v4[26..34], &[0, PROTO_UDP], &(udp.len() as u16).to_be_bytes()].concat();
        assert_eq!(ones_complement_sum(udp, ones_complement_sum(&pseudo, 0)), 0xffff);

        let v6 = udp_frame(&flow("fd00::1", "fd00::2")).unwrap();
        assert_eq!(v6.len(), FRAME_LEN);
        let udp = &v6[ETH_LEN + IPV6_LEN..];
        let pseudo = [&v6[22..54], &(udp.len() as u32).to_be_bytes()[..], &[0, 0, 0, PROTO_UDP]].concat();
        assert_eq!(ones_complement_sum(udp, ones_complement_sum(&pseudo, 0)), 0xffff);
    }

    #[test]
    fn mixed_families_and_bad_macs_are_refused() {
        assert!(udp_frame(&flow("10.0.0.1", "fd00::2")).is_err());
        assert_eq!(parse_mac("02:77:00:00:00:1f").unwrap(), [2, 0x77, 0, 0, 0, 0x1f]);
        assert!(parse_mac("02:77:00").is_err());
    }
}
