//! VXLAN datapath tests through BPF_PROG_TEST_RUN: encapsulation checked byte for byte against a reference
//! frame built here, decapsulation and learning, VNI isolation, ageing, head-end replication, and malformed
//! VXLAN that must never be forwarded.
// Tests state their expectations with unwrap/expect (the product may not: [workspace.lints]).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use aya::programs::{tc::TcAttachType, SchedClassifier};
use common::*;
use datapath_common::{program_names, FdbEntry, MacKey, VXLAN_DEFAULT_PORT};
use xlan::{
    driver::vxlan::{ip_key, remote_entry},
    model::{DriverSettings, Flood, Vxlan},
};

const NET_A: u32 = 7;
const NET_B: u32 = 8;
const VNI_A: u32 = 42;
const VNI_B: u32 = 43;
const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const OTHER_REMOTE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
/// The next hop toward the remote VTEPs.
const REMOTE_HOP_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 2];
/// MACs of endpoints behind the remote VTEPs.
const FAR_MAC: [u8; 6] = [0x02, 0xdd, 0, 0, 0, 1];
const FAR_MAC_2: [u8; 6] = [0x02, 0xdd, 0, 0, 0, 2];

struct Options {
    learning: bool,
    ageing_secs: u32,
    flood: Flood,
}

impl Default for Options {
    fn default() -> Self {
        Self { learning: true, ageing_secs: 300, flood: Flood::Remotes(vec![REMOTE]) }
    }
}

/// Two VXLAN networks on the fixture's parent: VNI 42 with ports 1 and 2, VNI 43 with port 3.
fn vxlan_fixture(options: Options) -> Fixture {
    let f = Fixture::bare();
    f.ip(&["addr", "add", "10.0.0.1/24", "dev", "parent"]);
    let networks: Vec<_> = [(NET_A, VNI_A, 0..2), (NET_B, VNI_B, 2..3)]
        .into_iter()
        .map(|(id, vni, slots)| {
            let settings = Vxlan {
                vni,
                local: LOCAL,
                dstport: VXLAN_DEFAULT_PORT,
                flood: options.flood.clone(),
                learning: options.learning,
                ageing: options.ageing_secs,
                fdb: Vec::new(),
                managed_neighbours: Vec::new(),
            };
            let endpoints = slots.map(|slot| f.endpoint(slot, ENDPOINT_MACS[slot], Vec::new())).collect();
            f.network(id, DriverSettings::Vxlan(settings), endpoints)
        })
        .collect();
    f.install(&networks);
    let tables = f.tables();
    // This namespace does not forward, so bpf_fib_lookup answers nothing: the next hop comes from the map
    // `xlan` fills from the VTEPs' neighbour entries.
    for vtep in [REMOTE, OTHER_REMOTE] {
        tables.put_vtep_mac(ip_key(vtep), REMOTE_HOP_MAC).unwrap();
    }
    f
}

fn ipv4_checksum(header: &[u8]) -> [u8; 2] {
    let mut sum: u32 = header.chunks(2).map(|w| u16::from_be_bytes([w[0], w[1]]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (!(sum as u16)).to_be_bytes()
}

/// How a test frame's outer headers are built (and broken).
struct Outer {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    source_port: u16,
    dstport: u16,
    vni: u32,
    flags: u8,
    frags: u16,
    options: usize,
}

impl Default for Outer {
    fn default() -> Self {
        Self {
            src: REMOTE,
            dst: LOCAL,
            dst_mac: PARENT_MAC,
            src_mac: REMOTE_HOP_MAC,
            source_port: 50000,
            dstport: VXLAN_DEFAULT_PORT,
            vni: VNI_A,
            flags: 0x08,
            frags: 0x4000,
            options: 0,
        }
    }
}

/// A VXLAN frame as RFC 7348 and the kernel's vxlan driver lay it out.
fn vxlan_frame(outer: &Outer, inner: &[u8]) -> Vec<u8> {
    let ip_len = 20 + outer.options;
    let total = ip_len + 8 + 8 + inner.len();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&outer.dst_mac);
    bytes.extend_from_slice(&outer.src_mac);
    bytes.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x40 | (ip_len / 4) as u8, 0];
    ip.extend_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(&outer.frags.to_be_bytes());
    ip.extend_from_slice(&[64, 17, 0, 0]);
    ip.extend_from_slice(&outer.src.octets());
    ip.extend_from_slice(&outer.dst.octets());
    ip.resize(ip_len, 1); // options: NOPs
    let check = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&check);
    bytes.extend_from_slice(&ip);
    bytes.extend_from_slice(&outer.source_port.to_be_bytes());
    bytes.extend_from_slice(&outer.dstport.to_be_bytes());
    bytes.extend_from_slice(&((8 + 8 + inner.len()) as u16).to_be_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&[outer.flags, 0, 0, 0]);
    bytes.extend_from_slice(&outer.vni.to_be_bytes()[1..]);
    bytes.push(0);
    bytes.extend_from_slice(inner);
    bytes
}

const SOURCE_PORT: std::ops::Range<usize> = 34..36;

fn with_ether_type(mut frame: Vec<u8>, ether_type: [u8; 2]) -> Vec<u8> {
    frame[12..14].copy_from_slice(&ether_type);
    frame
}

#[test]
fn encapsulation_matches_the_reference_frame_byte_for_byte() {
    let mut f = vxlan_fixture(Options::default());
    f.tables().put_fdb(MacKey::new(NET_A, FAR_MAC), remote_entry(REMOTE)).unwrap();
    let port = f.ports[0];
    // IPv4 takes bpf_skb_adjust_room, ARP bpf_skb_change_head: the result must be the same layout.
    for ether_type in [[0x08, 0x00], [0x08, 0x06]] {
        let inner = with_ether_type(frame(FAR_MAC, ENDPOINT_MACS[0], None), ether_type);
        let out = f.tc(program_names::ENDPOINT_INGRESS, &inner, port);
        assert_eq!(out.verdict, TC_ACT_REDIRECT, "ether type {ether_type:02x?}");
        let source_port = u16::from_be_bytes([out.frame[34], out.frame[35]]);
        assert!((32768..61000).contains(&source_port), "source port {source_port} outside the ephemeral range");
        let expected = vxlan_frame(
            &Outer {
                src: LOCAL,
                dst: REMOTE,
                dst_mac: REMOTE_HOP_MAC,
                src_mac: PARENT_MAC,
                source_port,
                ..Default::default()
            },
            &inner,
        );
        assert_eq!(out.frame, expected, "ether type {ether_type:02x?}");
        // The same flow always gets the same source port (receivers spread flows by it).
        let again = f.tc(program_names::ENDPOINT_INGRESS, &inner, port);
        assert_eq!(again.frame[SOURCE_PORT], out.frame[SOURCE_PORT]);
    }
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn group_networks_send_one_copy_to_the_group() {
    let mut f = vxlan_fixture(Options { flood: Flood::Group(GROUP), ..Default::default() });
    let port = f.ports[0];
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[0], None), port);
    assert_eq!(out.verdict, TC_ACT_REDIRECT);
    assert_eq!(&out.frame[0..6], &[0x01, 0x00, 0x5e, 0x01, 0x01, 0x01], "IPv4 multicast MAC of the group");
    assert_eq!(&out.frame[30..34], &GROUP.octets());
    assert_eq!(f.rx(), [0, 1, 0], "the local endpoint of the VNI got its copy, the other VNI none");
}

/// Packets the fixture's `wire` (the parent's peer) received: the copies sent out of the parent.
fn wire_rx(f: &Fixture) -> u64 {
    let output = std::process::Command::new("ip")
        .args(["-n", f.netns.name(), "-s", "-j", "link", "show", "wire"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
}

#[test]
fn broadcast_is_replicated_to_every_vtep_and_local_endpoint() {
    let mut f = vxlan_fixture(Options { flood: Flood::Remotes(vec![REMOTE, OTHER_REMOTE]), ..Default::default() });
    let port = f.ports[0];
    let before = wire_rx(&f);
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[0], None), port);
    assert_eq!(out.verdict, TC_ACT_SHOT, "the original is consumed: every VTEP got a copy");
    assert_eq!(wire_rx(&f) - before, 2, "one copy per VTEP out of the parent");
    assert_eq!(f.rx(), [0, 1, 0]);
}

#[test]
fn unicast_to_a_local_endpoint_is_decapsulated_in_xdp_and_learned() {
    let mut f = vxlan_fixture(Options::default());
    let inner = frame(ENDPOINT_MACS[1], FAR_MAC, None);
    let out = f.xdp(&vxlan_frame(&Outer::default(), &inner));
    assert_eq!(out.verdict, XDP_REDIRECT);
    assert_eq!(out.frame, inner, "exactly the inner frame is delivered");
    assert_eq!(f.rx(), [0, 1, 0]);
    let entry = learned(&f, NET_A, FAR_MAC).expect("inner source learned");
    assert_eq!(entry.remote_ip, ip_key(REMOTE));
    assert!(!entry.is_static());
    assert!(learned(&f, NET_B, FAR_MAC).is_none(), "learning stays in its VNI");
}

fn learned(f: &Fixture, network: u32, mac: [u8; 6]) -> Option<FdbEntry> {
    f.tables().fdb_entries(network).unwrap().into_iter().find(|(k, _)| k.mac == mac).map(|(_, e)| e)
}

#[test]
fn broadcast_from_the_underlay_reaches_only_its_vni() {
    let mut f = vxlan_fixture(Options::default());
    let parent = f.parent;
    let for_a = vxlan_frame(&Outer::default(), &frame(BROADCAST, FAR_MAC, None));
    assert_eq!(f.xdp(&for_a).verdict, XDP_PASS, "copies are TC's job");
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &for_a, parent).verdict, TC_ACT_SHOT);
    assert_eq!(f.rx(), [1, 1, 0]);
    let for_b = vxlan_frame(&Outer { vni: VNI_B, ..Default::default() }, &frame(BROADCAST, FAR_MAC, None));
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &for_b, parent).verdict, TC_ACT_SHOT);
    assert_eq!(f.rx(), [1, 1, 1]);
}

#[test]
fn unicast_for_another_vnis_endpoint_never_reaches_it() {
    let mut f = vxlan_fixture(Options::default());
    let parent = f.parent;
    // VNI 43 carrying a frame for port 1's MAC, which lives in VNI 42.
    let crossing = vxlan_frame(&Outer { vni: VNI_B, ..Default::default() }, &frame(ENDPOINT_MACS[0], FAR_MAC, None));
    assert_eq!(f.xdp(&crossing).verdict, XDP_PASS, "unknown in VNI 43");
    f.tc(program_names::PARENT_INGRESS, &crossing, parent);
    assert_eq!(f.rx(), [0, 0, 1], "flooded within VNI 43 only");
}

#[test]
fn malformed_or_foreign_vxlan_is_never_forwarded() {
    let mut f = vxlan_fixture(Options::default());
    let parent = f.parent;
    let inner = frame(ENDPOINT_MACS[0], FAR_MAC, None);
    let good = vxlan_frame(&Outer::default(), &inner);
    let mut broken: Vec<(String, Vec<u8>)> = [14usize, 20, 33, 34, 41, 42, 49, 50, 63]
        .iter()
        .map(|len| (format!("truncated to {len} bytes"), good[..*len].to_vec()))
        .collect();
    broken.extend([
        ("I flag clear".to_string(), vxlan_frame(&Outer { flags: 0, ..Default::default() }, &inner)),
        ("unknown VNI".to_string(), vxlan_frame(&Outer { vni: 99, ..Default::default() }, &inner)),
        ("other UDP port".to_string(), vxlan_frame(&Outer { dstport: 4790, ..Default::default() }, &inner)),
        ("IPv4 options".to_string(), vxlan_frame(&Outer { options: 4, ..Default::default() }, &inner)),
        ("more fragments".to_string(), vxlan_frame(&Outer { frags: 0x2000, ..Default::default() }, &inner)),
        ("fragment offset".to_string(), vxlan_frame(&Outer { frags: 0x0010, ..Default::default() }, &inner)),
        ("not for this VTEP".to_string(), vxlan_frame(&Outer { dst: OTHER_REMOTE, ..Default::default() }, &inner)),
    ]);
    for (what, bytes) in &broken {
        let verdict = f.xdp(bytes).verdict;
        assert!(verdict == XDP_PASS || verdict == XDP_DROP, "{what}: XDP verdict {verdict}");
        // The kernel builds no skb from some of them (an IPv4 EtherType with nothing behind): fine too.
        if let Some(out) = f.try_tc(program_names::PARENT_INGRESS, bytes, parent) {
            assert!(out.verdict == TC_ACT_OK || out.verdict == TC_ACT_SHOT, "{what}: TC verdict {}", out.verdict);
        }
    }
    assert_eq!(f.rx(), [0, 0, 0], "nothing reached an endpoint");
    assert!(learned(&f, NET_A, FAR_MAC).is_none(), "nothing was learned from them");
    // The intact frame does get through: the broken ones failed for what was broken.
    assert_eq!(f.xdp(&good).verdict, XDP_REDIRECT);
}

#[test]
fn learning_never_overrides_static_and_follows_a_moving_mac() {
    let mut f = vxlan_fixture(Options::default());
    f.tables().put_fdb(MacKey::new(NET_A, FAR_MAC), remote_entry(OTHER_REMOTE)).unwrap();
    f.xdp(&vxlan_frame(&Outer::default(), &frame(ENDPOINT_MACS[0], FAR_MAC, None)));
    let entry = learned(&f, NET_A, FAR_MAC).unwrap();
    assert!(entry.is_static());
    assert_eq!(entry.remote_ip, ip_key(OTHER_REMOTE), "static entry kept");

    f.xdp(&vxlan_frame(&Outer::default(), &frame(ENDPOINT_MACS[0], FAR_MAC_2, None)));
    assert_eq!(learned(&f, NET_A, FAR_MAC_2).unwrap().remote_ip, ip_key(REMOTE));
    f.xdp(&vxlan_frame(&Outer { src: OTHER_REMOTE, ..Default::default() }, &frame(ENDPOINT_MACS[0], FAR_MAC_2, None)));
    assert_eq!(learned(&f, NET_A, FAR_MAC_2).unwrap().remote_ip, ip_key(OTHER_REMOTE), "re-learned where it moved");
}

#[test]
fn nothing_is_learned_behind_an_address_no_remote_vtep_can_have() {
    // Outer sources the kernel's IP stack drops as martians, and this host's own VTEP address: learning them sent the
    // MAC's traffic to 0.0.0.0, a broadcast, loopback, multicast or the host itself (found by the fuzzer).
    let mut f = vxlan_fixture(Options::default());
    let inner = frame(ENDPOINT_MACS[1], FAR_MAC, None);
    for src in [Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, Ipv4Addr::LOCALHOST, Ipv4Addr::new(236, 0, 0, 1), LOCAL] {
        assert_eq!(f.xdp(&vxlan_frame(&Outer { src, ..Default::default() }, &inner)).verdict, XDP_REDIRECT, "{src}");
        assert!(learned(&f, NET_A, FAR_MAC).is_none(), "learned behind {src}");
    }
    assert_eq!(f.rx(), [0, 5, 0], "the frames themselves are still delivered");
    // So an answer to that MAC is flooded to the configured VTEP, not sent to any of those addresses.
    let port = f.ports[1];
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(FAR_MAC, ENDPOINT_MACS[1], None), port);
    assert_eq!(out.verdict, TC_ACT_SHOT, "the original is consumed by the copies");
    assert_eq!(&out.frame[30..34], &REMOTE.octets());
    // A real remote VTEP is learned.
    f.xdp(&vxlan_frame(&Outer::default(), &inner));
    assert_eq!(learned(&f, NET_A, FAR_MAC).unwrap().remote_ip, ip_key(REMOTE));
}

/// Sends `frame` into the fixture's `parent` from its peer `wire`: through the kernel's receive path, not a test run.
fn send_from_wire(frame: &[u8]) {
    // SAFETY: a packet socket of this thread's namespace, the address zeroed then filled in, closed before returning.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        assert!(fd >= 0, "packet socket");
        let mut address: libc::sockaddr_ll = std::mem::zeroed();
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_ifindex = ifindex("wire") as i32;
        address.sll_halen = 6;
        let sent = libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&address as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        libc::close(fd);
        assert_eq!(sent, frame.len() as isize, "sent");
    }
}

#[test]
fn vxlan_from_another_vlan_is_not_decapsulated_on_the_real_receive_path() {
    // BPF_PROG_TEST_RUN hands a TC program the 802.1Q tag in the frame's bytes, but the kernel's receive path moves the
    // first tag into the skb before tcx runs: the parent's tc hook saw VLAN 5's VXLAN frame as untagged and
    // decapsulated it into VNI 42 (found while looking at what the fuzzer, which only has test runs, cannot see).
    // So here the frames take that path: the tc program attached to `parent`, the frames sent into it from `wire`.
    let mut f = vxlan_fixture(Options { learning: false, ..Default::default() });
    let ingress: &mut SchedClassifier = f.datapath.program(program_names::PARENT_INGRESS).unwrap();
    ingress.attach("parent", TcAttachType::Ingress).unwrap();
    let untagged = vxlan_frame(&Outer::default(), &frame(ENDPOINT_MACS[0], FAR_MAC, None));
    let mut tagged = untagged.clone();
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    send_from_wire(&tagged);
    // The untagged frame, sent after it on the same path, says when the tagged one has been dealt with.
    send_from_wire(&untagged);
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.rx() == [0, 0, 0] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(f.rx(), [1, 0, 0], "only the untagged frame reaches VNI 42's endpoint");
}

#[test]
fn without_learning_nothing_is_learned() {
    let mut f = vxlan_fixture(Options { learning: false, ..Default::default() });
    assert_eq!(f.xdp(&vxlan_frame(&Outer::default(), &frame(ENDPOINT_MACS[0], FAR_MAC, None))).verdict, XDP_REDIRECT);
    assert!(learned(&f, NET_A, FAR_MAC).is_none());
}

#[test]
fn learned_entries_age_out() {
    let mut f = vxlan_fixture(Options { ageing_secs: 1, ..Default::default() });
    let port = f.ports[0];
    let ancient = FdbEntry { last_seen_ns: 1, flags: 0, ..remote_entry(REMOTE) };
    f.tables().put_fdb(MacKey::new(NET_A, FAR_MAC), ancient).unwrap();
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(FAR_MAC, ENDPOINT_MACS[0], None), port);
    assert_eq!(out.verdict, TC_ACT_SHOT, "unknown again: flooded (copies), not sent to the old VTEP");
    assert_eq!(f.rx(), [0, 1, 0], "the flood reached the local endpoint");
    assert!(learned(&f, NET_A, FAR_MAC).is_none(), "the expired entry is gone");

    // A fresh one is used.
    f.xdp(&vxlan_frame(&Outer::default(), &frame(ENDPOINT_MACS[0], FAR_MAC, None)));
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(FAR_MAC, ENDPOINT_MACS[0], None), port);
    assert_eq!(out.verdict, TC_ACT_REDIRECT);
}

#[test]
fn local_endpoints_of_a_vni_talk_without_encapsulation() {
    let mut f = vxlan_fixture(Options::default());
    let port = f.ports[0];
    let sent = frame(ENDPOINT_MACS[1], ENDPOINT_MACS[0], None);
    let out = f.tc(program_names::ENDPOINT_INGRESS, &sent, port);
    assert_eq!(out.verdict, TC_ACT_REDIRECT);
    assert_eq!(out.frame, sent, "not encapsulated");
    assert_eq!(f.rx(), [0, 1, 0]);
    // Port 3's MAC is in VNI 43: unknown in 42, so it is flooded in 42 only.
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(ENDPOINT_MACS[2], ENDPOINT_MACS[0], None), port);
    assert_ne!(out.frame.len(), 0);
    assert_eq!(f.rx(), [0, 2, 0]);
}
