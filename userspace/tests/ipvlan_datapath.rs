//! ipvlan datapath tests through BPF_PROG_TEST_RUN: demultiplexing by destination IP (hit, miss, IPv6 with
//! extension headers, routes), broadcast in l2 and l3, ARP/ND answers in l3 checked byte for byte, truncated
//! headers, isolation flags, and spoofed sources (dropped and counted).
// Tests state their expectations with unwrap/expect (the product may not: [workspace.lints]).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use datapath_common::{program_names, DropReason, IpEndpoint};
use ipnet::IpNet;
use xlan::{
    driver::ipvlan::prefix_key,
    model::{DriverSettings, Ipvlan, IpvlanFlag, IpvlanMode},
};

const HOST_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const OUTSIDE_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const OUTSIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// Endpoint addresses: ports 1 and 2 on the wire's subnet, port 3 on a subnet of its own (l3 routing).
const ENDPOINT_V4: [Ipv4Addr; 3] =
    [Ipv4Addr::new(10, 0, 0, 11), Ipv4Addr::new(10, 0, 0, 12), Ipv4Addr::new(10, 9, 0, 13)];
const ENDPOINT_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x11),
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x12),
    Ipv6Addr::new(0xfd09, 0, 0, 0, 0, 0, 0, 0x13),
];

/// One ipvlan network whose endpoints are the three ports, each owning its ENDPOINT_V4 and ENDPOINT_V6 address.
fn ipvlan_fixture(mode: IpvlanMode, flag: IpvlanFlag) -> Fixture {
    let f = Fixture::bare();
    let endpoints = (0..3)
        .map(|slot| {
            let addresses = vec![
                IpNet::new(IpAddr::V4(ENDPOINT_V4[slot]), 24).unwrap(),
                IpNet::new(IpAddr::V6(ENDPOINT_V6[slot]), 64).unwrap(),
            ];
            f.endpoint(slot, PARENT_MAC, addresses)
        })
        .collect();
    let settings = Ipvlan { mode, flag, routes: Vec::new(), host_addresses: Vec::new() };
    f.install(&[f.network(NETWORK, DriverSettings::Ipvlan(settings), endpoints)]);
    f
}

/// IPv6 with `hop_by_hop` extension headers (8 bytes each, PadN) in front of an ICMPv6 payload.
fn ipv6_packet(
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_by_hop: usize,
    icmp: &[u8],
    hop_limit: u8,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&dst_mac);
    bytes.extend_from_slice(&OUTSIDE_MAC);
    bytes.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    bytes.extend_from_slice(&((hop_by_hop * 8 + icmp.len()) as u16).to_be_bytes());
    bytes.push(if hop_by_hop > 0 { 0 } else { 58 });
    bytes.push(hop_limit);
    bytes.extend_from_slice(&src.octets());
    bytes.extend_from_slice(&dst.octets());
    for header in 0..hop_by_hop {
        let next = if header + 1 < hop_by_hop { 0 } else { 58 };
        bytes.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    bytes.extend_from_slice(icmp);
    bytes
}

const ECHO_REQUEST: [u8; 16] = [128, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8];

fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&BROADCAST);
    bytes.extend_from_slice(&OUTSIDE_MAC);
    bytes.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    bytes.extend_from_slice(&OUTSIDE_MAC);
    bytes.extend_from_slice(&sender.octets());
    bytes.extend_from_slice(&[0; 6]);
    bytes.extend_from_slice(&target.octets());
    bytes
}

fn solicited_node(target: Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let t = target.octets();
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | t[13] as u16, u16::from_be_bytes([t[14], t[15]]));
    (group, [0x33, 0x33, 0xff, t[13], t[14], t[15]])
}

fn neighbour_solicitation(target: Ipv6Addr) -> Vec<u8> {
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&OUTSIDE_MAC);
    let (group, group_mac) = solicited_node(target);
    // The checksum is not checked on the way in; the answer's is.
    ipv6_packet(group_mac, OUTSIDE_V6, group, 0, &icmp, 255)
}

fn icmpv6_checksum_ok(packet: &[u8]) -> bool {
    let ip = &packet[14..54];
    let icmp = &packet[54..];
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            sum += u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]) as u32;
        }
    };
    add(&ip[8..40]);
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

#[test]
fn unicast_is_demultiplexed_by_destination_address() {
    let mut f = ipvlan_fixture(IpvlanMode::L2, IpvlanFlag::Bridge);
    let to_second = ipv4_packet(PARENT_MAC, OUTSIDE_MAC, OUTSIDE_V4, ENDPOINT_V4[1]);
    let out = f.xdp(&to_second);
    assert_eq!(out.verdict, XDP_REDIRECT);
    assert_eq!(out.frame, to_second);
    assert_eq!(f.rx(), [0, 1, 0]);
    let to_third = ipv6_packet(PARENT_MAC, OUTSIDE_V6, ENDPOINT_V6[2], 0, &ECHO_REQUEST, 64);
    assert_eq!(f.xdp(&to_third).verdict, XDP_REDIRECT);
    assert_eq!(f.rx(), [0, 1, 1]);
}

#[test]
fn the_parents_own_addresses_and_other_macs_stay_the_hosts() {
    let mut f = ipvlan_fixture(IpvlanMode::L2, IpvlanFlag::Bridge);
    let to_host = ipv4_packet(PARENT_MAC, OUTSIDE_MAC, OUTSIDE_V4, HOST_V4);
    assert_eq!(f.xdp(&to_host).verdict, XDP_PASS);
    let other_mac = ipv4_packet(ENDPOINT_MACS[0], OUTSIDE_MAC, OUTSIDE_V4, ENDPOINT_V4[0]);
    assert_eq!(f.xdp(&other_mac).verdict, XDP_PASS, "only frames to the parent's MAC are demultiplexed");
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn ipv6_with_extension_headers_is_demultiplexed_too() {
    let mut f = ipvlan_fixture(IpvlanMode::L3, IpvlanFlag::Bridge);
    for headers in [1, 3] {
        let packet = ipv6_packet(PARENT_MAC, OUTSIDE_V6, ENDPOINT_V6[0], headers, &ECHO_REQUEST, 64);
        assert_eq!(f.xdp(&packet).verdict, XDP_REDIRECT, "{headers} extension headers");
    }
    assert_eq!(f.rx(), [2, 0, 0]);
}

#[test]
fn routes_behind_an_endpoint_are_longest_prefix_matched() {
    let mut f = ipvlan_fixture(IpvlanMode::L3, IpvlanFlag::Bridge);
    let route = IpNet::new(IpAddr::V4(Ipv4Addr::new(10, 123, 0, 0)), 24).unwrap();
    let owner = IpEndpoint { port: f.ports[1], network_id: NETWORK };
    f.tables().put_ip(prefix_key(NETWORK, &route), owner).unwrap();
    let packet = ipv4_packet(PARENT_MAC, OUTSIDE_MAC, OUTSIDE_V4, Ipv4Addr::new(10, 123, 0, 77));
    assert_eq!(f.xdp(&packet).verdict, XDP_REDIRECT);
    assert_eq!(f.rx(), [0, 1, 0]);
    let outside_route = ipv4_packet(PARENT_MAC, OUTSIDE_MAC, OUTSIDE_V4, Ipv4Addr::new(10, 124, 0, 77));
    assert_eq!(f.xdp(&outside_route).verdict, XDP_PASS);
}

#[test]
fn truncated_headers_are_never_forwarded() {
    let mut f = ipvlan_fixture(IpvlanMode::L2, IpvlanFlag::Bridge);
    let v4 = ipv4_packet(PARENT_MAC, OUTSIDE_MAC, OUTSIDE_V4, ENDPOINT_V4[0]);
    let v6 = ipv6_packet(PARENT_MAC, OUTSIDE_V6, ENDPOINT_V6[0], 0, &ECHO_REQUEST, 64);
    let cuts = (14..34).map(|n| v4[..n].to_vec()).chain((14..54).map(|n| v6[..n].to_vec()));
    let port = f.ports[0];
    for cut in cuts {
        let verdict = f.xdp(&cut).verdict;
        assert!(verdict == XDP_DROP || verdict == XDP_PASS, "{} bytes: {verdict}", cut.len());
        if let Some(out) = f.try_tc(program_names::ENDPOINT_INGRESS, &cut, port) {
            assert_eq!(out.verdict, TC_ACT_SHOT, "{} bytes from an endpoint", cut.len());
        }
    }
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn broadcast_reaches_endpoints_in_l2_never_in_l3() {
    let broadcast = ipv4_packet(BROADCAST, OUTSIDE_MAC, OUTSIDE_V4, Ipv4Addr::new(10, 0, 0, 255));
    let mut l2 = ipvlan_fixture(IpvlanMode::L2, IpvlanFlag::Bridge);
    let parent = l2.parent;
    assert_eq!(l2.xdp(&broadcast).verdict, XDP_PASS);
    assert_eq!(l2.tc(program_names::PARENT_INGRESS, &broadcast, parent).verdict, TC_ACT_OK);
    assert_eq!(l2.rx(), [1, 1, 1]);
    let mut l3 = ipvlan_fixture(IpvlanMode::L3, IpvlanFlag::Bridge);
    let parent = l3.parent;
    assert_eq!(l3.tc(program_names::PARENT_INGRESS, &broadcast, parent).verdict, TC_ACT_OK);
    let (group, group_mac) = solicited_node(ENDPOINT_V6[0]);
    let multicast = ipv6_packet(group_mac, OUTSIDE_V6, group, 0, &ECHO_REQUEST, 64);
    assert_eq!(l3.tc(program_names::PARENT_INGRESS, &multicast, parent).verdict, TC_ACT_OK);
    assert_eq!(l3.rx(), [0, 0, 0]);
}

#[test]
fn a_hairpinned_multicast_from_an_endpoint_reaches_the_others_only_in_vepa() {
    // An endpoint's broadcast that the switch sent back (source: the parent's MAC and the endpoint's address). Bridge
    // endpoints had it on the way out, private ones never get it, vepa ones only this way. (Found by the fuzzer:
    // every flag flooded it to all but the sender, so private endpoints reached each other through a hairpin.)
    let hairpinned = ipv4_packet(BROADCAST, PARENT_MAC, ENDPOINT_V4[0], Ipv4Addr::new(10, 0, 0, 255));
    for (flag, expected) in
        [(IpvlanFlag::Bridge, [0, 0, 0]), (IpvlanFlag::Private, [0, 0, 0]), (IpvlanFlag::Vepa, [0, 1, 1])]
    {
        let mut f = ipvlan_fixture(IpvlanMode::L2, flag);
        let parent = f.parent;
        assert_eq!(f.tc(program_names::PARENT_INGRESS, &hairpinned, parent).verdict, TC_ACT_OK, "{flag:?}");
        assert_eq!(f.rx(), expected, "{flag:?}");
        // The same broadcast from outside reaches every endpoint.
        let outside = ipv4_packet(BROADCAST, OUTSIDE_MAC, OUTSIDE_V4, Ipv4Addr::new(10, 0, 0, 255));
        f.tc(program_names::PARENT_INGRESS, &outside, parent);
        assert_eq!(f.rx(), expected.map(|n| n + 1), "{flag:?}");
    }
}

#[test]
fn l3_answers_arp_for_endpoint_addresses_with_the_parents_mac() {
    let mut f = ipvlan_fixture(IpvlanMode::L3, IpvlanFlag::Bridge);
    let parent = f.parent;
    let out = f.tc(program_names::PARENT_INGRESS, &arp_request(OUTSIDE_V4, ENDPOINT_V4[2]), parent);
    assert_eq!(out.verdict, TC_ACT_REDIRECT, "answered out of the parent");
    let mut expected = Vec::new();
    expected.extend_from_slice(&OUTSIDE_MAC);
    expected.extend_from_slice(&PARENT_MAC);
    expected.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    expected.extend_from_slice(&PARENT_MAC);
    expected.extend_from_slice(&ENDPOINT_V4[2].octets());
    expected.extend_from_slice(&OUTSIDE_MAC);
    expected.extend_from_slice(&OUTSIDE_V4.octets());
    assert_eq!(out.frame, expected);
    // Not an endpoint's address: the host's business.
    let out = f.tc(program_names::PARENT_INGRESS, &arp_request(OUTSIDE_V4, HOST_V4), parent);
    assert_eq!(out.verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn l3_answers_neighbour_solicitations_with_a_valid_advertisement() {
    let mut f = ipvlan_fixture(IpvlanMode::L3, IpvlanFlag::Bridge);
    let parent = f.parent;
    let out = f.tc(program_names::PARENT_INGRESS, &neighbour_solicitation(ENDPOINT_V6[1]), parent);
    assert_eq!(out.verdict, TC_ACT_REDIRECT);
    let na = &out.frame;
    assert_eq!(na.len(), 14 + 40 + 32);
    assert_eq!(&na[0..6], &OUTSIDE_MAC);
    assert_eq!(&na[6..12], &PARENT_MAC);
    assert_eq!(na[20], 58, "ICMPv6");
    assert_eq!(na[21], 255, "hop limit");
    assert_eq!(&na[22..38], &ENDPOINT_V6[1].octets(), "from the target");
    assert_eq!(&na[38..54], &OUTSIDE_V6.octets(), "to the solicitor");
    assert_eq!(na[54], 136, "neighbour advertisement");
    assert_eq!(na[58], 0x60, "solicited, override");
    assert_eq!(&na[62..78], &ENDPOINT_V6[1].octets());
    assert_eq!(&na[78..80], &[2, 1], "target link-layer address option");
    assert_eq!(&na[80..86], &PARENT_MAC);
    assert!(icmpv6_checksum_ok(na), "ICMPv6 checksum");
}

#[test]
fn l2_leaves_arp_to_the_endpoints() {
    let mut f = ipvlan_fixture(IpvlanMode::L2, IpvlanFlag::Bridge);
    let parent = f.parent;
    let out = f.tc(program_names::PARENT_INGRESS, &arp_request(OUTSIDE_V4, ENDPOINT_V4[0]), parent);
    assert_eq!(out.verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [1, 1, 1], "the request is copied to every endpoint");
}

#[test]
fn a_spoofed_source_is_dropped_and_counted() {
    let mut f = ipvlan_fixture(IpvlanMode::L2, IpvlanFlag::Bridge);
    let port = f.ports[0];
    let spoofed = ipv4_packet(OUTSIDE_MAC, PARENT_MAC, ENDPOINT_V4[1], OUTSIDE_V4);
    assert_eq!(f.tc(program_names::ENDPOINT_INGRESS, &spoofed, port).verdict, TC_ACT_SHOT);
    let mut spoofed_arp = arp_request(ENDPOINT_V4[1], OUTSIDE_V4);
    spoofed_arp[6..12].copy_from_slice(&PARENT_MAC);
    assert_eq!(f.tc(program_names::ENDPOINT_INGRESS, &spoofed_arp, port).verdict, TC_ACT_SHOT);
    assert_eq!(f.tables().stats(port).unwrap().drops[DropReason::Spoofed as usize], 2);
    let own = ipv4_packet(OUTSIDE_MAC, PARENT_MAC, ENDPOINT_V4[0], OUTSIDE_V4);
    assert_eq!(f.tc(program_names::ENDPOINT_INGRESS, &own, port).verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn flags_decide_endpoint_to_endpoint() {
    let packet = ipv4_packet(PARENT_MAC, PARENT_MAC, ENDPOINT_V4[0], ENDPOINT_V4[1]);
    let mut bridge = ipvlan_fixture(IpvlanMode::L2, IpvlanFlag::Bridge);
    let port = bridge.ports[0];
    assert_eq!(bridge.tc(program_names::ENDPOINT_INGRESS, &packet, port).verdict, TC_ACT_REDIRECT);
    assert_eq!(bridge.rx(), [0, 1, 0], "bridge: straight to the peer");

    let mut private = ipvlan_fixture(IpvlanMode::L2, IpvlanFlag::Private);
    let port = private.ports[0];
    assert_eq!(private.tc(program_names::ENDPOINT_INGRESS, &packet, port).verdict, TC_ACT_SHOT);
    assert_eq!(private.drops(DropReason::Isolation), 1);
    let parent = private.parent;
    // Hairpinned back by a switch: still never delivered.
    assert_eq!(private.tc(program_names::PARENT_INGRESS, &packet, parent).verdict, TC_ACT_SHOT);
    assert_eq!(private.rx(), [0, 0, 0]);

    let mut vepa = ipvlan_fixture(IpvlanMode::L2, IpvlanFlag::Vepa);
    let port = vepa.ports[0];
    assert_eq!(vepa.tc(program_names::ENDPOINT_INGRESS, &packet, port).verdict, TC_ACT_REDIRECT);
    assert_eq!(vepa.rx(), [0, 0, 0], "vepa: out to the switch first");
    assert_eq!(vepa.xdp(&packet).verdict, XDP_PASS, "the hairpinned copy is TC's");
    let parent = vepa.parent;
    assert_eq!(vepa.tc(program_names::PARENT_INGRESS, &packet, parent).verdict, TC_ACT_REDIRECT);
    assert_eq!(vepa.rx(), [0, 1, 0]);
}

#[test]
fn l3_routes_between_endpoint_subnets() {
    let mut f = ipvlan_fixture(IpvlanMode::L3, IpvlanFlag::Bridge);
    let port = f.ports[0];
    let across = ipv4_packet(PARENT_MAC, PARENT_MAC, ENDPOINT_V4[0], ENDPOINT_V4[2]);
    assert_eq!(f.tc(program_names::ENDPOINT_INGRESS, &across, port).verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [0, 0, 1]);
    let v6 = ipv6_packet(PARENT_MAC, ENDPOINT_V6[0], ENDPOINT_V6[2], 0, &ECHO_REQUEST, 64);
    let mut from_first = v6.clone();
    from_first[6..12].copy_from_slice(&PARENT_MAC);
    assert_eq!(f.tc(program_names::ENDPOINT_INGRESS, &from_first, port).verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [0, 0, 2]);
}
