//! macvlan datapath tests through BPF_PROG_TEST_RUN: crafted frames into the real programs, the verdict, the
//! bytes and the counters (which name the port a frame went to) checked; and the drops the datapath reports
//! (`XLAN_EVENTS`, read by `xlan monitor`).
// Tests state their expectations with unwrap/expect (the product may not: [workspace.lints]).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::time::Duration;

use common::*;
use datapath_common::{map_names, program_names, DropReason, MacKey, NetworkConfig, NetworkKind};
use xlan::{
    datapath::events::{DropEvent, DropEvents},
    driver,
    model::{DriverSettings, Macvlan, MacvlanMode},
};

#[test]
fn xdp_unicast_hit_redirects_to_the_owner_unchanged() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let sent = frame(ENDPOINT_MACS[1], OUTSIDE_MAC, None);
    let out = f.xdp(&sent);
    assert_eq!(out.verdict, XDP_REDIRECT);
    assert_eq!(out.frame, sent, "macvlan forwarding must not touch the frame");
    assert_eq!(f.rx(), [0, 1, 0]);
}

#[test]
fn xdp_unknown_unicast_and_group_frames_go_to_the_stack() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    for dst in [PARENT_MAC, [0x02, 0x99, 0, 0, 0, 9], BROADCAST, IPV6_ALL_NODES] {
        assert_eq!(f.xdp(&frame(dst, OUTSIDE_MAC, None)).verdict, XDP_PASS, "dst {dst:02x?}");
    }
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn xdp_frame_of_a_vlan_no_network_is_on_goes_to_the_stack_untouched() {
    // The network is untagged: VLAN 42's frames are not its own, even for an endpoint's MAC.
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let sent = frame(ENDPOINT_MACS[2], OUTSIDE_MAC, Some(42));
    let out = f.xdp(&sent);
    assert_eq!((out.verdict, &out.frame), (XDP_PASS, &sent));
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn xdp_hairpinned_frame_is_left_to_tc() {
    // A frame from a local endpoint came back from the switch: TC handles it, keeping the skb's state.
    let mut f = Fixture::new(MacvlanMode::Vepa);
    assert_eq!(f.xdp(&frame(ENDPOINT_MACS[0], ENDPOINT_MACS[1], None)).verdict, XDP_PASS);
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn truncated_frames_are_dropped_and_counted_never_forwarded() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let tagged = frame(ENDPOINT_MACS[0], OUTSIDE_MAC, Some(5));
    // Cut inside the 802.1Q tag (the Ethernet header itself is whole from 14 bytes on).
    for len in 14..18 {
        let before = f.drops(DropReason::Malformed);
        assert_eq!(f.xdp(&tagged[..len]).verdict, XDP_DROP, "xdp, {len} bytes");
        assert_eq!(f.drops(DropReason::Malformed), before + 1);
        let port = f.ports[0];
        let out = f.tc(program_names::ENDPOINT_INGRESS, &tagged[..len], port);
        assert_eq!(out.verdict, TC_ACT_SHOT, "endpoint, {len} bytes");
        let out = f.tc(program_names::PARENT_INGRESS, &tagged[..len], f.parent);
        assert_eq!(out.verdict, TC_ACT_SHOT, "parent ingress, {len} bytes");
    }
    assert_eq!(f.rx(), [0, 0, 0]);
    assert_eq!(f.tables().stats(f.ports[0]).unwrap().drops[DropReason::Malformed as usize], 4);
    // A frame of just the Ethernet header is whole: it is forwarded like any other.
    assert_eq!(f.xdp(&tagged[..12].iter().chain(&[0x08, 0x00]).copied().collect::<Vec<_>>()).verdict, XDP_REDIRECT);
}

#[test]
fn runts_shorter_than_an_ethernet_header_never_reach_the_programs() {
    // The kernel refuses them before any program runs (as a NIC never hands them up): nothing to forward.
    let mut f = Fixture::new(MacvlanMode::Bridge);
    for len in [0usize, 1, 6, 13] {
        assert!(f.try_xdp(&vec![0xff; len]).is_err(), "{len} bytes");
    }
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn parent_broadcast_is_copied_to_every_endpoint_and_kept_for_the_host() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let parent = f.parent;
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &frame(BROADCAST, OUTSIDE_MAC, None), parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [1, 1, 1]);
    assert_eq!(
        f.tc(program_names::PARENT_INGRESS, &frame(IPV6_ALL_NODES, OUTSIDE_MAC, None), parent).verdict,
        TC_ACT_OK
    );
    assert_eq!(f.rx(), [2, 2, 2]);
}

/// Ports of the network in `broadcast_reaches_every_port_of_a_large_network`: well past the 64 the flood list once
/// held, and past the 1000 frames the CPU's input queue takes (`net.core.netdev_max_backlog`), which the copies of
/// one frame, all made at once, once had to fit in; few enough to make in seconds (the full `MAX_FLOOD_PORTS` is the
/// 4096-endpoint test's, tests/tests/scale.rs).
const LARGE_NETWORK: usize = 1500;

#[test]
fn broadcast_reaches_every_port_of_a_large_network() {
    let mut f = Fixture::bare();
    let endpoints = f.extra_endpoints(LARGE_NETWORK);
    let settings = Macvlan { mode: MacvlanMode::Bridge, host_access: false, source_macs: Vec::new() };
    f.install(&[f.network(NETWORK, DriverSettings::Macvlan(settings), endpoints.clone())]);
    let rx = |f: &Fixture| -> Vec<u64> {
        endpoints.iter().map(|e| f.tables().stats(e.host.ifindex).unwrap().rx_packets).collect()
    };
    let parent = f.parent;
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &frame(BROADCAST, OUTSIDE_MAC, None), parent).verdict, TC_ACT_OK);
    assert_eq!(rx(&f), vec![1; LARGE_NETWORK], "one copy for each port, counted in its own slot");
    assert_eq!(f.received(&endpoints), vec![1; LARGE_NETWORK], "and each copy arrived");

    // An endpoint's own broadcast (bridge mode): a copy for every other port, none for the sender.
    let sender = &endpoints[LARGE_NETWORK - 1];
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(BROADCAST, sender.mac.0, None), sender.host.ifindex);
    assert_eq!(out.verdict, TC_ACT_REDIRECT, "the original goes on out of the parent");
    let mut expected = vec![2; LARGE_NETWORK];
    expected[LARGE_NETWORK - 1] = 1;
    assert_eq!(rx(&f), expected);
    assert_eq!(f.received(&endpoints), expected);
}

#[test]
fn bridge_endpoint_broadcast_that_returns_is_not_flooded_again() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let parent = f.parent;
    let out = f.tc(program_names::PARENT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[1], None), parent);
    assert_eq!(out.verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn vepa_hairpinned_broadcast_reaches_all_but_its_sender() {
    let mut f = Fixture::new(MacvlanMode::Vepa);
    let parent = f.parent;
    let out = f.tc(program_names::PARENT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[1], None), parent);
    assert_eq!(out.verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [1, 0, 1]);
}

#[test]
fn vepa_hairpinned_unicast_is_delivered_private_is_dropped() {
    let mut f = Fixture::new(MacvlanMode::Vepa);
    let parent = f.parent;
    let hairpinned = frame(ENDPOINT_MACS[0], ENDPOINT_MACS[1], None);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &hairpinned, parent).verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [1, 0, 0]);

    let mut f = Fixture::new(MacvlanMode::Private);
    let parent = f.parent;
    let before = f.drops(DropReason::Isolation);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &hairpinned, parent).verdict, TC_ACT_SHOT);
    assert_eq!(f.drops(DropReason::Isolation), before + 1);
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn bridge_endpoint_unicast_goes_straight_to_the_peer() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let port = f.ports[0];
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(ENDPOINT_MACS[2], ENDPOINT_MACS[0], None), port);
    assert_eq!(out.verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [0, 0, 1]);
    assert_eq!(f.tables().stats(port).unwrap().tx_packets, 1);
}

#[test]
fn private_and_vepa_endpoint_unicast_goes_out_of_the_parent_only() {
    for mode in [MacvlanMode::Private, MacvlanMode::Vepa, MacvlanMode::Source] {
        let mut f = Fixture::new(mode);
        let port = f.ports[0];
        let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(ENDPOINT_MACS[2], ENDPOINT_MACS[0], None), port);
        assert_eq!(out.verdict, TC_ACT_REDIRECT, "mode {mode:?}");
        assert_eq!(f.rx(), [0, 0, 0], "mode {mode:?}: no local delivery");
        let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[0], None), port);
        assert_eq!(out.verdict, TC_ACT_REDIRECT, "mode {mode:?}");
        assert_eq!(f.rx(), [0, 0, 0], "mode {mode:?}: no local broadcast");
    }
}

#[test]
fn bridge_endpoint_broadcast_reaches_the_others_and_the_wire() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let port = f.ports[1];
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[1], None), port);
    assert_eq!(out.verdict, TC_ACT_REDIRECT, "the original goes out of the parent");
    assert_eq!(f.rx(), [1, 0, 1]);
}

/// The fields of a reported drop that a test can know in advance (not its time).
fn without_time(events: &[DropEvent]) -> Vec<(DropReason, u32, u32, u32, u32)> {
    events.iter().map(|e| (e.reason, e.ifindex, e.port, e.network_id, e.len)).collect()
}

/// CLOCK_MONOTONIC now, as bpf_ktime_get_ns() counts.
fn monotonic_ns() -> u64 {
    // SAFETY: clock_gettime fills the zeroed timespec.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) }, 0);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[test]
fn frames_from_an_unknown_device_are_dropped_counted_and_reported() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let parent = f.parent;
    let before = f.drops(DropReason::UnknownPort);
    let sent = frame(ENDPOINT_MACS[0], OUTSIDE_MAC, None);
    let start = monotonic_ns();
    let out = f.tc(program_names::ENDPOINT_INGRESS, &sent, parent);
    assert_eq!(out.verdict, TC_ACT_SHOT);
    assert_eq!(f.drops(DropReason::UnknownPort), before + 1);
    assert_eq!(f.rx(), [0, 0, 0]);
    let events = f.drop_events();
    // The device the frame came from is the endpoint nobody knows: no network.
    assert_eq!(without_time(&events), [(DropReason::UnknownPort, parent, parent, 0, sent.len() as u32)]);
    assert!((start..=monotonic_ns()).contains(&events[0].monotonic_ns), "time {}", events[0].monotonic_ns);
    assert!(f.drop_events().is_empty(), "an event is read once");
}

#[test]
fn drops_a_sender_can_cause_are_counted_not_reported() {
    let mut f = Fixture::new(MacvlanMode::Private);
    let parent = f.parent;
    // Malformed (a cut VLAN tag) in XDP and TC, and isolation (a hairpinned frame between private endpoints).
    let tagged = frame(ENDPOINT_MACS[0], OUTSIDE_MAC, Some(5));
    assert_eq!(f.xdp(&tagged[..16]).verdict, XDP_DROP);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &tagged[..16], parent).verdict, TC_ACT_SHOT);
    let hairpinned = frame(ENDPOINT_MACS[0], ENDPOINT_MACS[1], None);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &hairpinned, parent).verdict, TC_ACT_SHOT);
    assert_eq!((f.drops(DropReason::Malformed), f.drops(DropReason::Isolation)), (2, 1));
    assert!(f.drop_events().is_empty());
}

#[test]
fn the_event_reader_wakes_when_the_datapath_reports() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let parent = f.parent;
    let pins = f.pins.0.clone();
    runtime().block_on(async {
        let mut events = DropEvents::open(&pins).unwrap().unwrap();
        // The reader waits on the empty ring before anything is dropped.
        let reader = tokio::spawn(async move { events.next().await });
        tokio::task::yield_now().await;
        assert!(!reader.is_finished());
        f.tc(program_names::ENDPOINT_INGRESS, &frame(BROADCAST, OUTSIDE_MAC, None), parent);
        let event = tokio::time::timeout(Duration::from_secs(5), reader).await.expect("woken").unwrap().unwrap();
        assert_eq!((event.reason, event.port), (DropReason::UnknownPort, parent));
    });
}

#[test]
fn every_map_name_is_a_map_of_the_object_pinned_by_the_load() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    for name in map_names::ALL {
        assert!(f.datapath.ebpf_mut().map(name).is_some(), "{name} is not in the object");
        assert!(f.pins.0.map(name).exists(), "{name} is not pinned");
    }
    // And the other way round: the shared programs' key (`loader`) hashes the ids of exactly these maps.
    for (name, _) in f.pins.0.map_pins().unwrap() {
        assert!(map_names::ALL.contains(&name.as_str()), "{name} is pinned by the load but not in map_names::ALL");
    }
}

#[test]
fn source_mode_delivers_only_from_allowed_senders() {
    let mut f = Fixture::new(MacvlanMode::Source);
    let parent = f.parent;
    let to_first = frame(ENDPOINT_MACS[0], OUTSIDE_MAC, None);
    // XDP leaves everything to TC: source mode needs copies, the host keeps the original.
    assert_eq!(f.xdp(&to_first).verdict, XDP_PASS);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &to_first, parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [0, 0, 0], "sender not allowed yet");
    f.tables().put_source_mac(MacKey::new(NETWORK, OUTSIDE_MAC)).unwrap();
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &to_first, parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [1, 0, 0]);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &frame(BROADCAST, OUTSIDE_MAC, None), parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [2, 1, 1]);
}

#[test]
fn passthru_gives_the_endpoint_all_unicast() {
    let mut f = Fixture::new(MacvlanMode::Passthru);
    for dst in [ENDPOINT_MACS[0], PARENT_MAC, [0x02, 0x99, 0, 0, 0, 9]] {
        assert_eq!(f.xdp(&frame(dst, OUTSIDE_MAC, None)).verdict, XDP_REDIRECT);
    }
    assert_eq!(f.rx(), [3, 0, 0]);
}

#[test]
fn without_host_access_the_host_reaches_no_endpoint() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let parent = f.parent;
    for dst in [ENDPOINT_MACS[1], BROADCAST] {
        assert_eq!(f.tc(program_names::PARENT_EGRESS, &frame(dst, PARENT_MAC, None), parent).verdict, TC_ACT_OK);
    }
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn host_access_delivers_the_hosts_frames_to_endpoints() {
    let mut f = Fixture::with_host_access(MacvlanMode::Bridge);
    let parent = f.parent;
    let out = f.tc(program_names::PARENT_EGRESS, &frame(ENDPOINT_MACS[1], PARENT_MAC, None), parent);
    assert_eq!(out.verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [0, 1, 0]);
    // The host's broadcast (ARP, ND) reaches every endpoint and still goes out on the wire.
    assert_eq!(f.tc(program_names::PARENT_EGRESS, &frame(BROADCAST, PARENT_MAC, None), parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [1, 2, 1]);
    // An endpoint's own frame leaving through the parent was delivered locally already.
    let from_endpoint = frame(BROADCAST, ENDPOINT_MACS[0], None);
    assert_eq!(f.tc(program_names::PARENT_EGRESS, &from_endpoint, parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [1, 2, 1]);
    // And an endpoint's frame to the host's MAC is handed to the host.
    let port = f.ports[2];
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(PARENT_MAC, ENDPOINT_MACS[2], None), port);
    assert_eq!(out.verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [1, 2, 1]);
}

#[test]
fn xdp_redirect_to_a_port_whose_device_is_gone_is_a_counted_no_port_drop() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let gone = f.ports[1];
    // The kernel takes a deleted device out of the ports' devmap; the FDB still names it (state out of sync).
    f.ip(&["link", "del", "port2"]);
    let before = f.drops(DropReason::NoPort);
    let sent = frame(ENDPOINT_MACS[1], OUTSIDE_MAC, None);
    assert_eq!(f.xdp(&sent).verdict, XDP_DROP);
    assert_eq!(f.drops(DropReason::NoPort), before + 1);
    assert_eq!(f.rx(), [0, 0, 0]);
    assert_eq!(without_time(&f.drop_events()), [(DropReason::NoPort, f.parent, gone, NETWORK, sent.len() as u32)]);
    // Only that port is affected.
    assert_eq!(f.xdp(&frame(ENDPOINT_MACS[0], OUTSIDE_MAC, None)).verdict, XDP_REDIRECT);
    assert_eq!(f.rx(), [1, 0, 0]);
    assert_eq!(f.drops(DropReason::NoPort), before + 1);
}

#[test]
fn endpoint_of_a_network_of_unknown_kind_is_a_counted_drop() {
    let mut f = Fixture::new(MacvlanMode::Bridge);
    let port = f.ports[0];
    let sent = frame(ENDPOINT_MACS[2], ENDPOINT_MACS[0], None);
    // As a macvlan bridge network, the frame goes straight to the third endpoint.
    assert_eq!(f.tc(program_names::ENDPOINT_INGRESS, &sent, port).verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [0, 0, 1]);
    // The fixture's network, but of no kind (a config nobody filled in) or a kind from the future: never forwarded
    // as if it were macvlan.
    for (n, kind) in [NetworkKind(0), NetworkKind(99)].into_iter().enumerate() {
        let config = NetworkConfig {
            kind,
            mode: driver::macvlan_mode(MacvlanMode::Bridge).into(),
            parent_ifindex: f.parent,
            parent_mac: PARENT_MAC,
            ..Default::default()
        };
        f.tables().put_network(NETWORK, config).unwrap();
        assert_eq!(f.tc(program_names::ENDPOINT_INGRESS, &sent, port).verdict, TC_ACT_SHOT, "{kind:?}");
        assert_eq!(f.rx(), [0, 0, 1], "{kind:?}");
        let counted = n as u64 + 1;
        assert_eq!(f.drops(DropReason::UnknownKind), counted, "{kind:?}");
        assert_eq!(f.tables().stats(port).unwrap().drops[DropReason::UnknownKind as usize], counted, "{kind:?}");
        let reported = without_time(&f.drop_events());
        assert_eq!(reported, [(DropReason::UnknownKind, port, port, NETWORK, sent.len() as u32)], "{kind:?}");
    }
}
