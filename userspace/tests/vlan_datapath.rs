//! 802.1Q VLAN datapath tests through BPF_PROG_TEST_RUN: networks on VLANs of one parent next to an untagged one, the
//! tag taken off byte for byte for the frames their endpoints take (XDP and TC), frames of VLANs no network is on,
//! 802.1ad outer tags and cut tags left alone or dropped, broadcast kept inside its VLAN, and the same MAC or address
//! in two VLANs. BPF_PROG_TEST_RUN hands TC every tag in the frame's bytes (no skb_vlan_untag), and shows the bytes
//! only: a tag the datapath puts into the skb's metadata is seen as gone from them.
// Tests state their expectations with unwrap/expect (the product may not: [workspace.lints]).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use datapath_common::{program_names, DropReason, DROP_REASONS};
use ipnet::IpNet;
use xlan::model::{DriverSettings, Ipvlan, IpvlanFlag, IpvlanMode, Macvlan, MacvlanMode};

const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// Priority 5 and DEI set: bits a VLAN's frame may carry, which change nothing about where it goes.
const PCP_DEI: u16 = 0xb000;
/// The MAC every endpoint in `macvlan_vlans` has: only the VLAN tells their networks apart.
const SHARED_MAC: [u8; 6] = ENDPOINT_MACS[0];
const OUTSIDE_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const ENDPOINT_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);

fn bridge() -> DriverSettings {
    DriverSettings::Macvlan(Macvlan { mode: MacvlanMode::Bridge, host_access: false, source_macs: Vec::new() })
}

/// macvlan bridge networks, each with one endpoint of MAC `SHARED_MAC`: untagged (port 1), on VLAN 10 (port 2) and
/// on VLAN 20 (port 3) of the parent.
fn macvlan_vlans() -> Fixture {
    let f = Fixture::bare();
    let endpoint = |slot| vec![f.endpoint(slot, SHARED_MAC, Vec::new())];
    f.install(&[
        f.network(NETWORK, bridge(), endpoint(0)),
        f.network_on_vlan(NETWORK + 1, 10, bridge(), endpoint(1)),
        f.network_on_vlan(NETWORK + 2, 20, bridge(), endpoint(2)),
    ]);
    f
}

/// ipvlan l2 bridge networks on VLAN 10 (port 1) and VLAN 20 (port 3) of the parent, both endpoints owning
/// `ENDPOINT_V4`; port 2 owns another address on VLAN 10.
fn ipvlan_vlans() -> Fixture {
    let f = Fixture::bare();
    let address = |ip: Ipv4Addr| vec![IpNet::new(IpAddr::V4(ip), 24).unwrap()];
    let l2 = || {
        DriverSettings::Ipvlan(Ipvlan {
            mode: IpvlanMode::L2,
            flag: IpvlanFlag::Bridge,
            routes: Vec::new(),
            host_addresses: Vec::new(),
        })
    };
    let ten = vec![
        f.endpoint(0, PARENT_MAC, address(ENDPOINT_V4)),
        f.endpoint(1, PARENT_MAC, address([10, 0, 0, 12].into())),
    ];
    f.install(&[
        f.network_on_vlan(NETWORK, 10, l2(), ten),
        f.network_on_vlan(NETWORK + 1, 20, l2(), vec![f.endpoint(2, PARENT_MAC, address(ENDPOINT_V4))]),
    ]);
    f
}

/// 802.1Q tag `vid` (with `PCP_DEI`) on `frame`.
fn on_vlan_tag(frame: &[u8], vid: u16) -> Vec<u8> {
    with_tag(frame, ETH_P_8021Q, PCP_DEI | vid)
}

/// The parent's hooks.
#[derive(Clone, Copy, Debug)]
enum Hook {
    Xdp,
    TcIngress,
}

/// `untagged` tagged with each VLAN of `steps` in turn, from the wire through `hook`: each must end in `verdict`
/// with the bytes of `untagged` left (the tag taken off), and the deliveries counted so far be the step's.
fn each_vlan(f: &mut Fixture, hook: Hook, untagged: &[u8], verdict: u32, steps: &[(u16, [u64; 3])]) {
    for (vid, delivered) in steps {
        let sent = on_vlan_tag(untagged, *vid);
        let out = match hook {
            Hook::Xdp => f.xdp(&sent),
            Hook::TcIngress => f.tc(program_names::PARENT_INGRESS, &sent, f.parent),
        };
        assert_eq!((out.verdict, &out.frame[..]), (verdict, untagged), "{hook:?}, VLAN {vid}");
        assert_eq!(f.rx(), *delivered, "{hook:?}, VLAN {vid}");
    }
}

/// Bytes each port was delivered so far.
fn rx_bytes(f: &Fixture) -> [u64; 3] {
    f.ports.map(|port| f.tables().stats(port).unwrap().rx_bytes)
}

fn all_drops(f: &Fixture) -> [u64; DROP_REASONS] {
    f.tables().drops().unwrap()
}

#[test]
fn xdp_takes_the_tag_off_byte_exact_for_its_vlans_endpoint() {
    let mut f = macvlan_vlans();
    let untagged = frame(SHARED_MAC, OUTSIDE_MAC, None);
    // The frame without its 4 tag bytes, nothing else changed.
    each_vlan(&mut f, Hook::Xdp, &untagged, XDP_REDIRECT, &[(10, [0, 1, 0]), (20, [0, 1, 1])]);
    let len = untagged.len() as u64;
    assert_eq!(rx_bytes(&f), [0, len, len], "deliveries are counted untagged");
}

#[test]
fn xdp_leaves_frames_of_vlans_no_network_is_on_and_802_1ad_tags_untouched() {
    let mut f = macvlan_vlans();
    let untagged = frame(SHARED_MAC, OUTSIDE_MAC, None);
    let inner_ten = on_vlan_tag(&untagged, 10);
    let frames = [
        on_vlan_tag(&untagged, 30),
        on_vlan_tag(&untagged, 4095),
        // An S-tag outside, even around a C-tag of a network's VLAN: on no VLAN of ours.
        with_tag(&untagged, ETH_P_8021AD, 10),
        with_tag(&inner_ten, ETH_P_8021AD, 10),
    ];
    for sent in frames {
        let out = f.xdp(&sent);
        assert_eq!((out.verdict, &out.frame), (XDP_PASS, &sent), "{sent:02x?}");
        let out = f.tc(program_names::PARENT_INGRESS, &sent, f.parent);
        assert_eq!((out.verdict, &out.frame), (TC_ACT_OK, &sent), "{sent:02x?}");
    }
    assert_eq!(f.rx(), [0, 0, 0]);
    assert_eq!(all_drops(&f), [0; DROP_REASONS]);
}

#[test]
fn cut_tags_are_dropped_as_malformed() {
    let mut f = macvlan_vlans();
    let tagged = on_vlan_tag(&frame(SHARED_MAC, OUTSIDE_MAC, None), 10);
    // The Ethernet header is whole from 14 bytes on, the tag from 18.
    for len in 14..18 {
        let before = f.drops(DropReason::Malformed);
        assert_eq!(f.xdp(&tagged[..len]).verdict, XDP_DROP, "xdp, {len} bytes");
        assert_eq!(
            f.tc(program_names::PARENT_INGRESS, &tagged[..len], f.parent).verdict,
            TC_ACT_SHOT,
            "tc, {len} bytes"
        );
        assert_eq!(f.drops(DropReason::Malformed), before + 2, "{len} bytes");
    }
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn untagged_looking_frames_on_a_parent_with_vlans_are_left_to_tc() {
    // XDP cannot read a tag the device put into metadata: TC, which can, decides.
    let mut f = macvlan_vlans();
    let sent = frame(SHARED_MAC, OUTSIDE_MAC, None);
    let out = f.xdp(&sent);
    assert_eq!((out.verdict, &out.frame), (XDP_PASS, &sent));
    assert_eq!(f.rx(), [0, 0, 0]);
    let out = f.tc(program_names::PARENT_INGRESS, &sent, f.parent);
    assert_eq!((out.verdict, &out.frame), (TC_ACT_REDIRECT, &sent), "the untagged network's endpoint takes it");
    assert_eq!(f.rx(), [1, 0, 0]);
    // A priority tag (VID 0) puts a frame on no VLAN: untagged-looking too, its tag kept.
    let priority_tagged = on_vlan_tag(&sent, 0);
    let out = f.xdp(&priority_tagged);
    assert_eq!((out.verdict, &out.frame), (XDP_PASS, &priority_tagged));
    let out = f.tc(program_names::PARENT_INGRESS, &priority_tagged, f.parent);
    assert_eq!((out.verdict, &out.frame), (TC_ACT_REDIRECT, &priority_tagged));
    assert_eq!(f.rx(), [2, 0, 0]);
}

#[test]
fn tc_redirects_tagged_unicast_to_its_vlans_endpoint_untagged() {
    let mut f = macvlan_vlans();
    let untagged = frame(SHARED_MAC, OUTSIDE_MAC, None);
    each_vlan(&mut f, Hook::TcIngress, &untagged, TC_ACT_REDIRECT, &[(20, [0, 0, 1]), (10, [0, 1, 1])]);
}

#[test]
fn tc_copies_tagged_broadcast_only_to_its_vlans_endpoints() {
    let mut f = macvlan_vlans();
    let untagged = frame(BROADCAST, OUTSIDE_MAC, None);
    // The host keeps the frame, its tag put back into the skb's metadata: out of the bytes.
    each_vlan(&mut f, Hook::TcIngress, &untagged, TC_ACT_OK, &[(10, [0, 1, 0]), (20, [0, 1, 1])]);
    let out = f.tc(program_names::PARENT_INGRESS, &untagged, f.parent);
    assert_eq!((out.verdict, &out.frame), (TC_ACT_OK, &untagged));
    assert_eq!(f.rx(), [1, 1, 1], "untagged broadcast reaches the untagged network only");
    let len = untagged.len() as u64;
    assert_eq!(rx_bytes(&f), [len; 3]);
}

#[test]
fn tc_takes_off_only_the_vlans_tag_and_the_kernel_keeps_the_next_one_in_metadata() {
    // bpf_skb_vlan_pop moves a VLAN tag behind the popped one into the skb's metadata: the endpoint still gets it,
    // the bytes no longer show it. XDP takes the outer tag out of the bytes, and leaves the inner one there.
    let mut f = macvlan_vlans();
    let untagged = frame(SHARED_MAC, OUTSIDE_MAC, None);
    let inner = on_vlan_tag(&untagged, 20);
    let out = f.tc(program_names::PARENT_INGRESS, &on_vlan_tag(&inner, 10), f.parent);
    assert_eq!((out.verdict, &out.frame), (TC_ACT_REDIRECT, &untagged));
    let out = f.xdp(&on_vlan_tag(&inner, 10));
    assert_eq!((out.verdict, &out.frame), (XDP_REDIRECT, &inner));
    assert_eq!(f.rx(), [0, 2, 0], "VLAN 10's endpoint, by the outer tag");
    // What the host keeps gets the VLAN's tag back (bpf_skb_vlan_push), which puts the inner tag back into the
    // bytes first: the only trace of the push the bytes show.
    let broadcast = on_vlan_tag(&frame(BROADCAST, OUTSIDE_MAC, None), 20);
    let out = f.tc(program_names::PARENT_INGRESS, &on_vlan_tag(&broadcast, 10), f.parent);
    assert_eq!((out.verdict, &out.frame), (TC_ACT_OK, &broadcast));
    assert_eq!(f.rx(), [0, 3, 0]);
}

#[test]
fn an_endpoints_frame_leaves_with_its_bytes_unchanged() {
    // The VLAN's tag goes into the skb's metadata, where the parent's driver (or the stack) puts it on the wire.
    let mut f = macvlan_vlans();
    let sent = frame(OUTSIDE_MAC, SHARED_MAC, None);
    let port = f.ports[1];
    let out = f.tc(program_names::ENDPOINT_INGRESS, &sent, port);
    assert_eq!((out.verdict, &out.frame), (TC_ACT_REDIRECT, &sent));
    assert_eq!(f.tables().stats(port).unwrap().tx_packets, 1);
    assert_eq!(all_drops(&f), [0; DROP_REASONS]);
}

#[test]
fn ipvlan_l2_on_two_vlans_with_the_same_address() {
    let mut f = ipvlan_vlans();
    let untagged = ipv4_packet(PARENT_MAC, OUTSIDE_MAC, OUTSIDE_V4, ENDPOINT_V4);
    each_vlan(&mut f, Hook::Xdp, &untagged, XDP_REDIRECT, &[(10, [1, 0, 0]), (20, [1, 0, 1])]);
    each_vlan(&mut f, Hook::TcIngress, &untagged, TC_ACT_REDIRECT, &[(20, [1, 0, 2]), (10, [2, 0, 2])]);
    // Broadcast: copies to the VLAN's endpoints only.
    let broadcast = ipv4_packet(BROADCAST, OUTSIDE_MAC, OUTSIDE_V4, Ipv4Addr::BROADCAST);
    each_vlan(&mut f, Hook::TcIngress, &broadcast, TC_ACT_OK, &[(10, [3, 1, 2]), (20, [3, 1, 3])]);
    // VLAN 30: no network, whatever the address.
    let sent = on_vlan_tag(&untagged, 30);
    assert_eq!(f.xdp(&sent).verdict, XDP_PASS);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &sent, f.parent).verdict, TC_ACT_OK);
    // Untagged: the parent's own untagged traffic, no network's.
    assert_eq!(f.xdp(&untagged).verdict, XDP_PASS);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &untagged, f.parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [3, 1, 3]);
}
