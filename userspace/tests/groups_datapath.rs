//! Multicast group membership through BPF_PROG_TEST_RUN: crafted IGMP and MLD reports into the endpoints' program
//! (`XLAN_GROUPS` checked after each), and multicast from the wire, whose copies (the per-slot counters) go to the
//! members only. The reports are built as Linux sends them (IPv4 with the router alert option, MLD behind a
//! hop-by-hop header), and some as it does not (truncated, more records claimed than sent).
// Tests state their expectations with unwrap/expect (the product may not: [workspace.lints]).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use datapath_common::{program_names, v4_mapped};
use xlan::model::MacvlanMode;

const ROUTER_ALERT: [u8; 4] = [0x94, 0x04, 0, 0];

/// An IPv4 packet from endpoint `from` (0-2) to `dst`, IGMP with the router alert option as Linux sends it.
fn igmp(from: usize, dst: Ipv4Addr, message: &[u8]) -> Vec<u8> {
    let total = (24 + message.len()) as u16;
    let mut packet = vec![0x46, 0xc0];
    packet.extend(total.to_be_bytes());
    packet.extend([0, 0, 0x40, 0, 1, 2, 0, 0, 10, 0, 0, 1 + from as u8]);
    packet.extend(dst.octets());
    packet.extend(ROUTER_ALERT);
    packet.extend(message);
    with_ethernet(multicast_mac(IpAddr::V4(dst)), ENDPOINT_MACS[from], 0x0800, &packet)
}

/// An MLD message from endpoint `from` to `dst`, behind a hop-by-hop header with the router alert option.
fn mld(from: usize, dst: Ipv6Addr, message: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend(((8 + message.len()) as u16).to_be_bytes());
    packet.extend([0, 1]);
    packet.extend(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1 + from as u16).octets());
    packet.extend(dst.octets());
    // Next header ICMPv6, length 0; router alert (MLD), padding.
    packet.extend([58, 0, 5, 2, 0, 0, 1, 0]);
    packet.extend(message);
    with_ethernet(multicast_mac(IpAddr::V6(dst)), ENDPOINT_MACS[from], 0x86dd, &packet)
}

fn with_ethernet(dst: [u8; 6], src: [u8; 6], ether_type: u16, packet: &[u8]) -> Vec<u8> {
    let mut frame = [&dst[..], &src, &ether_type.to_be_bytes(), packet].concat();
    frame.resize(frame.len().max(60), 0);
    frame
}

fn multicast_mac(group: IpAddr) -> [u8; 6] {
    match group {
        IpAddr::V4(group) => {
            let o = group.octets();
            [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
        }
        IpAddr::V6(group) => {
            let o = group.octets();
            [0x33, 0x33, o[12], o[13], o[14], o[15]]
        }
    }
}

/// IGMPv2 report (0x16) or leave (0x17) of `group`.
fn igmp_v2(kind: u8, group: Ipv4Addr) -> Vec<u8> {
    [&[kind, 0, 0, 0][..], &group.octets()].concat()
}

/// An IGMPv3 report claiming `claimed` records, followed by `records` (type, group, sources).
fn igmp_v3(claimed: u16, records: &[(u8, Ipv4Addr, &[Ipv4Addr])]) -> Vec<u8> {
    let mut message = vec![0x22, 0, 0, 0, 0, 0];
    message.extend(claimed.to_be_bytes());
    for (kind, group, sources) in records {
        message.extend([*kind, 0]);
        message.extend((sources.len() as u16).to_be_bytes());
        message.extend(group.octets());
        for source in *sources {
            message.extend(source.octets());
        }
    }
    message
}

/// An MLDv2 report of `records` (type, group, number of sources; the sources are ::1, ::2, …), with one 4-byte
/// auxiliary word on each, which a walk must skip.
fn mld_v2(records: &[(u8, Ipv6Addr, u16)]) -> Vec<u8> {
    let mut message = vec![143, 0, 0, 0, 0, 0];
    message.extend((records.len() as u16).to_be_bytes());
    for (kind, group, sources) in records {
        message.extend([*kind, 1]);
        message.extend(sources.to_be_bytes());
        message.extend(group.octets());
        for source in 1..=*sources {
            message.extend(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, source).octets());
        }
        message.extend([0xaa; 4]);
    }
    message
}

/// MLDv1 report (131) or done (132) of `group`.
fn mld_v1(kind: u8, group: Ipv6Addr) -> Vec<u8> {
    [&[kind, 0, 0, 0, 0, 0, 0, 0][..], &group.octets()].concat()
}

const ALL_ROUTERS_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
const IGMPV3_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);
const MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
const GROUP_A: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const GROUP_B: Ipv4Addr = Ipv4Addr::new(239, 2, 2, 2);
const GROUP_C: Ipv4Addr = Ipv4Addr::new(239, 3, 3, 3);
const SOLICITED: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 5);

/// The endpoints (0-2) in `group`, as `XLAN_GROUPS` has them.
fn members(f: &Fixture, group: IpAddr) -> Vec<usize> {
    let key = match group {
        IpAddr::V4(group) => v4_mapped(group.octets()),
        IpAddr::V6(group) => group.octets(),
    };
    let groups = f.tables().groups(NETWORK).unwrap();
    let Some((_, group_members)) = groups.iter().find(|(k, _)| k.group == key) else { return Vec::new() };
    (0..3).filter(|&n| group_members.has(f.tables().endpoint(f.ports[n]).unwrap().unwrap().slot)).collect()
}

/// Whether endpoint slot `slot` is in any group (the fixture's network's or the next one's).
fn slot_in_groups(f: &Fixture, slot: u32) -> bool {
    let groups = [NETWORK, NETWORK + 1].map(|network| f.tables().groups(network).unwrap());
    groups.iter().flatten().any(|(_, members)| members.has(slot))
}

/// A report or leave endpoint `from` sends, through its program: out of the parent toward the routers, and to no
/// other endpoint (one in IGMPv2/MLDv1 mode would withhold its own report for the group).
fn report(f: &mut Fixture, from: usize, frame: &[u8]) {
    let port = f.ports[from];
    let before = f.rx();
    let verdict = f.tc(program_names::ENDPOINT_INGRESS, frame, port).verdict;
    assert_eq!(verdict, TC_ACT_REDIRECT, "a report goes out of the parent");
    assert_eq!(f.rx(), before, "a report is copied to no endpoint");
}

/// Copies each endpoint got of a UDP frame endpoint `from` sent to `group`, which goes out of the parent too.
fn copies_from_endpoint(f: &mut Fixture, from: usize, group: Ipv4Addr) -> [u64; 3] {
    let before = f.rx();
    let frame = ipv4_packet(multicast_mac(IpAddr::V4(group)), ENDPOINT_MACS[from], Ipv4Addr::new(10, 0, 0, 1), group);
    let port = f.ports[from];
    assert_eq!(f.tc(program_names::ENDPOINT_INGRESS, &frame, port).verdict, TC_ACT_REDIRECT, "out of the parent");
    let after = f.rx();
    [0, 1, 2].map(|n| after[n] - before[n])
}

/// Copies each endpoint got of a UDP frame from the wire to `group`.
fn copies_from_wire(f: &mut Fixture, group: IpAddr) -> [u64; 3] {
    let before = f.rx();
    let frame = match group {
        IpAddr::V4(group) => {
            ipv4_packet(multicast_mac(IpAddr::V4(group)), OUTSIDE_MAC, Ipv4Addr::new(10, 0, 0, 9), group)
        }
        IpAddr::V6(group) => {
            let mut packet = vec![0x60, 0, 0, 0, 0, 0, 59, 255];
            packet.extend(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9).octets());
            packet.extend(group.octets());
            with_ethernet(multicast_mac(IpAddr::V6(group)), OUTSIDE_MAC, 0x86dd, &packet)
        }
    };
    let parent = f.parent;
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &frame, parent).verdict, TC_ACT_OK, "the host gets it too");
    let after = f.rx();
    [0, 1, 2].map(|n| after[n] - before[n])
}

#[test]
fn igmp_v2_joins_and_leaves_and_the_wire_copies_to_members_only() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let a = IpAddr::V4(GROUP_A);
    assert_eq!(copies_from_wire(&mut f, a), [1, 1, 1], "nobody's group goes to every endpoint");
    report(&mut f, 0, &igmp(0, GROUP_A, &igmp_v2(0x16, GROUP_A)));
    assert_eq!(members(&f, a), [0]);
    assert_eq!(copies_from_wire(&mut f, a), [1, 0, 0]);
    assert_eq!(copies_from_wire(&mut f, IpAddr::V4(GROUP_B)), [1, 1, 1], "another group is still nobody's");
    report(&mut f, 2, &igmp(2, GROUP_A, &igmp_v2(0x16, GROUP_A)));
    assert_eq!(copies_from_wire(&mut f, a), [1, 0, 1]);
    report(&mut f, 0, &igmp(0, ALL_ROUTERS_V4, &igmp_v2(0x17, GROUP_A)));
    assert_eq!(members(&f, a), [2]);
    assert_eq!(copies_from_wire(&mut f, a), [0, 0, 1]);
    report(&mut f, 2, &igmp(2, ALL_ROUTERS_V4, &igmp_v2(0x17, GROUP_A)));
    assert_eq!(copies_from_wire(&mut f, a), [1, 1, 1], "a group whose members all left is nobody's again");
}

#[test]
fn an_endpoints_multicast_goes_to_the_other_members() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    report(&mut f, 1, &igmp(1, GROUP_A, &igmp_v2(0x16, GROUP_A)));
    assert_eq!(copies_from_endpoint(&mut f, 0, GROUP_A), [0, 1, 0]);
}

#[test]
fn igmp_v3_records_join_leave_or_say_nothing() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let source = [Ipv4Addr::new(10, 9, 9, 9)];
    // TO_EX {} joins A; IS_IN {S} joins C (a member for some sources gets the group); TO_IN {} of B and
    // BLOCK_OLD of A say the host is not in B and change nothing of A.
    let records: [(u8, Ipv4Addr, &[Ipv4Addr]); 4] =
        [(4, GROUP_A, &[]), (1, GROUP_C, &source), (3, GROUP_B, &[]), (6, GROUP_A, &source)];
    report(&mut f, 1, &igmp(1, IGMPV3_ROUTERS, &igmp_v3(4, &records)));
    assert_eq!(members(&f, IpAddr::V4(GROUP_A)), [1]);
    assert_eq!(members(&f, IpAddr::V4(GROUP_C)), [1]);
    assert_eq!(members(&f, IpAddr::V4(GROUP_B)), Vec::<usize>::new());
    // TO_IN {} leaves.
    report(&mut f, 1, &igmp(1, IGMPV3_ROUTERS, &igmp_v3(1, &[(3, GROUP_A, &[])])));
    assert_eq!(members(&f, IpAddr::V4(GROUP_A)), Vec::<usize>::new());
    assert_eq!(members(&f, IpAddr::V4(GROUP_C)), [1]);
}

#[test]
fn a_report_claiming_more_records_than_it_holds_records_what_it_holds() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    report(&mut f, 2, &igmp(2, IGMPV3_ROUTERS, &igmp_v3(200, &[(4, GROUP_B, &[])])));
    assert_eq!(members(&f, IpAddr::V4(GROUP_B)), [2]);
    // Cut inside its first record's group: nothing to record, the frame still goes on.
    let mut cut = igmp(0, IGMPV3_ROUTERS, &igmp_v3(1, &[(4, GROUP_C, &[])]));
    cut.truncate(14 + 24 + 8 + 6);
    let port = f.ports[0];
    let verdict = f.try_tc(program_names::ENDPOINT_INGRESS, &cut, port).map(|out| out.verdict);
    assert!(matches!(verdict, Some(TC_ACT_REDIRECT) | None), "a cut report goes on as any multicast: {verdict:?}");
    assert_eq!(members(&f, IpAddr::V4(GROUP_C)), Vec::<usize>::new());
}

#[test]
fn mld_v2_and_v1_reports_behind_the_hop_by_hop_header() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    // CHANGE_TO_EXCLUDE {} of the solicited-node group, and of all-nodes (never filtered, so never recorded);
    // ALLOW of two sources of ff0e::5.
    let global = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 5);
    report(&mut f, 0, &mld(0, MLDV2_ROUTERS, &mld_v2(&[(4, SOLICITED, 0), (4, all_nodes, 0), (5, global, 2)])));
    assert_eq!(members(&f, IpAddr::V6(SOLICITED)), [0]);
    assert_eq!(members(&f, IpAddr::V6(global)), [0]);
    assert!(f.tables().groups(NETWORK).unwrap().iter().all(|(key, _)| key.group != all_nodes.octets()));
    assert_eq!(copies_from_wire(&mut f, IpAddr::V6(SOLICITED)), [1, 0, 0]);
    assert_eq!(copies_from_wire(&mut f, IpAddr::V6(all_nodes)), [1, 1, 1]);
    // MLDv1: endpoint 1 reports, endpoint 0 is done.
    report(&mut f, 1, &mld(1, SOLICITED, &mld_v1(131, SOLICITED)));
    report(&mut f, 0, &mld(0, Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2), &mld_v1(132, SOLICITED)));
    assert_eq!(members(&f, IpAddr::V6(SOLICITED)), [1]);
    assert_eq!(copies_from_wire(&mut f, IpAddr::V6(SOLICITED)), [0, 1, 0]);
}

#[test]
fn link_local_ipv4_groups_are_never_recorded() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let mdns = Ipv4Addr::new(224, 0, 0, 251);
    report(&mut f, 0, &igmp(0, mdns, &igmp_v2(0x16, mdns)));
    assert!(f.tables().groups(NETWORK).unwrap().is_empty());
    assert_eq!(copies_from_wire(&mut f, IpAddr::V4(mdns)), [1, 1, 1]);
}

#[test]
fn forget_clears_a_slot_in_every_group_and_deletes_the_networks_groups_left_empty() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    report(&mut f, 0, &igmp(0, GROUP_A, &igmp_v2(0x16, GROUP_A)));
    report(&mut f, 0, &igmp(0, GROUP_B, &igmp_v2(0x16, GROUP_B)));
    report(&mut f, 1, &igmp(1, GROUP_A, &igmp_v2(0x16, GROUP_A)));
    let slot = f.tables().endpoint(f.ports[0]).unwrap().unwrap().slot;
    assert!(slot_in_groups(&f, slot));
    // Another network's group without members is not this forget's to delete.
    report(&mut f, 2, &igmp(2, GROUP_C, &igmp_v2(0x16, GROUP_C)));
    report(&mut f, 2, &igmp(2, ALL_ROUTERS_V4, &igmp_v2(0x17, GROUP_C)));
    f.datapath.forget_group_member(slot, NETWORK + 1).unwrap();
    assert!(!slot_in_groups(&f, slot));
    assert_eq!(members(&f, IpAddr::V4(GROUP_A)), [1], "the other members stay");
    let groups = |f: &Fixture| f.tables().groups(NETWORK).unwrap().len();
    assert_eq!(groups(&f), 3, "B and C, without members, stay: they are not of network {}", NETWORK + 1);
    f.datapath.forget_group_member(slot, NETWORK).unwrap();
    let left: Vec<[u8; 16]> = f.tables().groups(NETWORK).unwrap().iter().map(|(key, _)| key.group).collect();
    assert_eq!(left, [v4_mapped(GROUP_A.octets())], "only A has a member left");
}

#[test]
fn a_group_every_other_port_joined_reaches_them_all() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    for n in 0..3 {
        report(&mut f, n, &igmp(n, GROUP_A, &igmp_v2(0x16, GROUP_A)));
    }
    assert_eq!(copies_from_wire(&mut f, IpAddr::V4(GROUP_A)), [1, 1, 1]);
    // From a member: every other port is one too (the sender is not counted against it), and the sender gets none.
    assert_eq!(copies_from_endpoint(&mut f, 2, GROUP_A), [1, 1, 0]);
}

#[test]
fn the_only_members_own_multicast_reaches_no_other_endpoint() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    report(&mut f, 0, &igmp(0, GROUP_A, &igmp_v2(0x16, GROUP_A)));
    assert_eq!(copies_from_endpoint(&mut f, 0, GROUP_A), [0, 0, 0], "no other endpoint is in the group");
}

/// `frame` as another sender sent it: the source MAC replaced.
fn sent_by(mac: [u8; 6], frame: &[u8]) -> Vec<u8> {
    let mut frame = frame.to_vec();
    frame[6..12].copy_from_slice(&mac);
    frame
}

#[test]
fn reports_from_the_wire_or_the_host_reach_no_endpoint_and_queries_reach_all() {
    let mut f = Fixture::with_host_access(MacvlanMode::Bridge);
    for from in [0, 1] {
        report(&mut f, from, &igmp(from, GROUP_A, &igmp_v2(0x16, GROUP_A)));
        report(&mut f, from, &mld(from, SOLICITED, &mld_v1(131, SOLICITED)));
    }
    let reports = [
        igmp(2, GROUP_A, &igmp_v2(0x16, GROUP_A)),
        igmp(2, ALL_ROUTERS_V4, &igmp_v2(0x17, GROUP_A)),
        igmp(2, IGMPV3_ROUTERS, &igmp_v3(1, &[(4, GROUP_A, &[])])),
        mld(2, SOLICITED, &mld_v1(131, SOLICITED)),
        mld(2, MLDV2_ROUTERS, &mld_v2(&[(4, SOLICITED, 0)])),
    ];
    let (parent, before) = (f.parent, f.rx());
    for (n, frame) in reports.iter().enumerate() {
        let out = f.tc(program_names::PARENT_INGRESS, &sent_by(OUTSIDE_MAC, frame), parent);
        assert_eq!(out.verdict, TC_ACT_OK, "report {n} from the wire goes on to the host");
        assert_eq!(f.rx(), before, "report {n} from the wire is copied to no endpoint");
        let out = f.tc(program_names::PARENT_EGRESS, &sent_by(PARENT_MAC, frame), parent);
        assert_eq!(out.verdict, TC_ACT_OK, "the host's report {n} goes onto the wire");
        assert_eq!(f.rx(), before, "the host's report {n} is copied to no endpoint");
    }
    assert_eq!(members(&f, IpAddr::V4(GROUP_A)), [0, 1], "reports from outside record nothing");
    assert_eq!(members(&f, IpAddr::V6(SOLICITED)), [0, 1]);
    // What is not a report still goes where it did: the group's traffic to its members, a query to every endpoint.
    assert_eq!(copies_from_wire(&mut f, IpAddr::V4(GROUP_A)), [1, 1, 0]);
    let all_hosts = Ipv4Addr::new(224, 0, 0, 1);
    let query = sent_by(OUTSIDE_MAC, &igmp(2, all_hosts, &[0x11, 100, 0, 0, 0, 0, 0, 0]));
    let before = f.rx();
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &query, parent).verdict, TC_ACT_OK);
    let after = f.rx();
    assert_eq!([0, 1, 2].map(|n| after[n] - before[n]), [1, 1, 1], "a query reaches every endpoint");
}

#[test]
fn an_endpoints_report_with_a_tag_of_its_own_is_recorded_and_reaches_no_other_endpoint() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    // A tag in the frame's bytes (a VLAN device in the endpoint without tx offload), which parse_l2 skips.
    report(&mut f, 0, &with_tag(&igmp(0, GROUP_A, &igmp_v2(0x16, GROUP_A)), 0x8100, 7));
    assert_eq!(members(&f, IpAddr::V4(GROUP_A)), [0]);
    // An MLD report without the hop-by-hop header, from the wire: recorded nowhere, copied to nobody.
    let mut packet = vec![0x60, 0, 0, 0, 0, 24, 58, 1];
    packet.extend(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 9).octets());
    packet.extend(SOLICITED.octets());
    packet.extend(mld_v1(131, SOLICITED));
    let frame = with_ethernet(multicast_mac(IpAddr::V6(SOLICITED)), OUTSIDE_MAC, 0x86dd, &packet);
    let (parent, before) = (f.parent, f.rx());
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &frame, parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), before, "an MLD report from the wire is copied to no endpoint");
}
