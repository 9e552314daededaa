//! Datapath tests through BPF_PROG_TEST_RUN: crafted frames into the real programs, the verdict, the bytes
//! and the counters (which name the port a frame went to) checked. The programs see devices of a private
//! network namespace (veths made here, never the host's) and maps pinned under a bpffs directory of their
//! own; both go away on drop, also when a test fails.
use std::{
    os::fd::AsFd,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use aya::programs::{SchedClassifier, Xdp};
use datapath_common::{
    kind, macvlan_mode, network_flags, ParentConfig, program_names, DropReason, EndpointConfig, FdbEntry, FloodList, MacKey,
    NetworkConfig, MAX_FLOOD_PORTS,
};
use xlan::{loader::Datapath, maps::Tables, netns::Netns, pins::PinDir, testrun};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

const NETWORK: u32 = 7;
const OUTSIDE_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
const PARENT_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];
const ENDPOINT_MACS: [[u8; 6]; 3] = [[0x02, 0x77, 0, 0, 0, 0x11], [0x02, 0x77, 0, 0, 0, 0x12], [0x02, 0x77, 0, 0, 0, 0x13]];
const BROADCAST: [u8; 6] = [0xff; 6];
const IPV6_ALL_NODES: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// A namespace with a parent veth and three endpoint veths, the datapath loaded with its maps pinned in a
/// directory of the test's own, and one macvlan network.
struct Fixture {
    netns_name: String,
    pins: PinDir,
    datapath: Datapath,
    parent: u32,
    ports: [u32; 3],
}

static NEXT_FIXTURE: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

fn ifindex(name: &str) -> u32 {
    let c_name = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C string.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    assert_ne!(index, 0, "no device {name}");
    index
}

impl Fixture {
    fn new(mode: u32) -> Self {
        Self::with_flags(mode, 0)
    }

    fn with_flags(mode: u32, flags: u32) -> Self {
        let netns_name = format!("xl{}dp{}", std::process::id(), NEXT_FIXTURE.fetch_add(1, Ordering::Relaxed));
        ip(&["netns", "add", &netns_name]);
        let fixture_parts = || -> (PinDir, Datapath, u32, [u32; 3]) {
            ip(&["-n", &netns_name, "link", "add", "parent", "type", "veth", "peer", "name", "wire"]);
            for n in 1..=3 {
                let (host, inner) = (format!("port{n}"), format!("ep{n}"));
                ip(&["-n", &netns_name, "link", "add", &host, "type", "veth", "peer", "name", &inner]);
            }
            // Copies (bpf_clone_redirect) are really sent, and a device that is down refuses them.
            for device in ["parent", "wire", "port1", "ep1", "port2", "ep2", "port3", "ep3"] {
                ip(&["-n", &netns_name, "link", "set", device, "up"]);
            }
            // The test thread stays in the namespace: the programs resolve ifindexes in the caller's one.
            std::mem::forget(Netns::open(&netns_name).unwrap().enter().unwrap());
            let pins = PinDir::for_instance(&netns_name);
            let datapath = Datapath::load(&pins).expect("load datapath");
            let parent = ifindex("parent");
            let ports = [ifindex("port1"), ifindex("port2"), ifindex("port3")];
            (pins, datapath, parent, ports)
        };
        let (pins, datapath, parent, ports) = fixture_parts();
        let fixture = Fixture { netns_name, pins, datapath, parent, ports };
        fixture.configure(mode, flags);
        fixture
    }

    fn tables(&self) -> Tables<'_> {
        Tables::new(&self.pins)
    }

    fn configure(&self, mode: u32, flags: u32) {
        let tables = self.tables();
        let config = NetworkConfig {
            kind: kind::MACVLAN,
            mode,
            parent_ifindex: self.parent,
            flags,
            parent_mac: PARENT_MAC,
            ..Default::default()
        };
        tables.put_network(NETWORK, config).unwrap();
        tables.put_parent(self.parent, ParentConfig { macvlan_network: NETWORK, vxlan_networks: 0 }).unwrap();
        let mut flood = FloodList::default();
        let members = if mode == macvlan_mode::PASSTHRU { 1 } else { 3 };
        for port in self.ports {
            tables.reset_stats(port).unwrap();
        }
        for (i, (port, mac)) in self.ports.iter().zip(ENDPOINT_MACS).take(members).enumerate() {
            tables.put_endpoint(*port, EndpointConfig { network_id: NETWORK, mac, _pad: [0; 2] }).unwrap();
            tables.put_port(*port).unwrap();
            tables.put_fdb(MacKey::new(NETWORK, mac), FdbEntry::local(*port)).unwrap();
            flood.ifindex[i] = *port;
        }
        flood.count = members as u32;
        assert!(members <= MAX_FLOOD_PORTS);
        tables.put_flood(NETWORK, flood).unwrap();
    }

    fn xdp(&mut self, frame: &[u8]) -> testrun::Outcome {
        let parent = self.parent;
        let program: &mut Xdp = self.datapath.program(program_names::PARENT_XDP).unwrap();
        testrun::run_xdp(program.fd().unwrap().as_fd(), frame, parent).expect("test run")
    }

    fn tc(&mut self, program_name: &str, frame: &[u8], ifindex: u32) -> testrun::Outcome {
        let program: &mut SchedClassifier = self.datapath.program(program_name).unwrap();
        testrun::run_tc(program.fd().unwrap().as_fd(), frame, ifindex).expect("test run")
    }

    /// Frames delivered to each endpoint so far.
    fn rx(&self) -> [u64; 3] {
        self.ports.map(|port| self.tables().stats(port).unwrap().rx_packets)
    }

    fn drops(&self, reason: DropReason) -> u64 {
        self.tables().drops().unwrap()[reason as usize]
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.tables().unpin_all();
        self.pins.remove_if_empty();
        let _ = Command::new("ip").args(["netns", "del", &self.netns_name]).status();
    }
}

/// An Ethernet frame (optionally 802.1Q-tagged) carrying a small IPv4/UDP-looking payload.
fn frame(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&dst);
    bytes.extend_from_slice(&src);
    if let Some(id) = vlan {
        bytes.extend_from_slice(&[0x81, 0x00]);
        bytes.extend_from_slice(&id.to_be_bytes());
    }
    bytes.extend_from_slice(&[0x08, 0x00]);
    bytes.extend((0..46u8).map(|i| i.wrapping_mul(7)));
    bytes
}

#[test]
fn xdp_unicast_hit_redirects_to_the_owner_unchanged() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    let sent = frame(ENDPOINT_MACS[1], OUTSIDE_MAC, None);
    let out = f.xdp(&sent);
    assert_eq!(out.verdict, XDP_REDIRECT);
    assert_eq!(out.frame, sent, "macvlan forwarding must not touch the frame");
    assert_eq!(f.rx(), [0, 1, 0]);
}

#[test]
fn xdp_unknown_unicast_and_group_frames_go_to_the_stack() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    for dst in [PARENT_MAC, [0x02, 0x99, 0, 0, 0, 9], BROADCAST, IPV6_ALL_NODES] {
        assert_eq!(f.xdp(&frame(dst, OUTSIDE_MAC, None)).verdict, XDP_PASS, "dst {dst:02x?}");
    }
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn xdp_tagged_frame_is_forwarded_by_mac() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    let out = f.xdp(&frame(ENDPOINT_MACS[2], OUTSIDE_MAC, Some(42)));
    assert_eq!(out.verdict, XDP_REDIRECT);
    assert_eq!(f.rx(), [0, 0, 1]);
}

#[test]
fn xdp_hairpinned_frame_is_left_to_tc() {
    // A frame from a local endpoint came back from the switch: TC handles it, keeping the skb's state.
    let mut f = Fixture::new(macvlan_mode::VEPA);
    assert_eq!(f.xdp(&frame(ENDPOINT_MACS[0], ENDPOINT_MACS[1], None)).verdict, XDP_PASS);
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn truncated_frames_are_dropped_and_counted_never_forwarded() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
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
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    let program: &mut Xdp = f.datapath.program(program_names::PARENT_XDP).unwrap();
    let fd = program.fd().unwrap().as_fd();
    for len in [0usize, 1, 6, 13] {
        assert!(testrun::run_xdp(fd, &vec![0xff; len], f.parent).is_err(), "{len} bytes");
    }
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn parent_broadcast_is_copied_to_every_endpoint_and_kept_for_the_host() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    let parent = f.parent;
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &frame(BROADCAST, OUTSIDE_MAC, None), parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [1, 1, 1]);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &frame(IPV6_ALL_NODES, OUTSIDE_MAC, None), parent).verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [2, 2, 2]);
}

#[test]
fn bridge_endpoint_broadcast_that_returns_is_not_flooded_again() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    let parent = f.parent;
    let out = f.tc(program_names::PARENT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[1], None), parent);
    assert_eq!(out.verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn vepa_hairpinned_broadcast_reaches_all_but_its_sender() {
    let mut f = Fixture::new(macvlan_mode::VEPA);
    let parent = f.parent;
    let out = f.tc(program_names::PARENT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[1], None), parent);
    assert_eq!(out.verdict, TC_ACT_OK);
    assert_eq!(f.rx(), [1, 0, 1]);
}

#[test]
fn vepa_hairpinned_unicast_is_delivered_private_is_dropped() {
    let mut f = Fixture::new(macvlan_mode::VEPA);
    let parent = f.parent;
    let hairpinned = frame(ENDPOINT_MACS[0], ENDPOINT_MACS[1], None);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &hairpinned, parent).verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [1, 0, 0]);

    let mut f = Fixture::new(macvlan_mode::PRIVATE);
    let parent = f.parent;
    let before = f.drops(DropReason::Isolation);
    assert_eq!(f.tc(program_names::PARENT_INGRESS, &hairpinned, parent).verdict, TC_ACT_SHOT);
    assert_eq!(f.drops(DropReason::Isolation), before + 1);
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn bridge_endpoint_unicast_goes_straight_to_the_peer() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    let port = f.ports[0];
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(ENDPOINT_MACS[2], ENDPOINT_MACS[0], None), port);
    assert_eq!(out.verdict, TC_ACT_REDIRECT);
    assert_eq!(f.rx(), [0, 0, 1]);
    assert_eq!(f.tables().stats(port).unwrap().tx_packets, 1);
}

#[test]
fn private_and_vepa_endpoint_unicast_goes_out_of_the_parent_only() {
    for mode in [macvlan_mode::PRIVATE, macvlan_mode::VEPA, macvlan_mode::SOURCE] {
        let mut f = Fixture::new(mode);
        let port = f.ports[0];
        let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(ENDPOINT_MACS[2], ENDPOINT_MACS[0], None), port);
        assert_eq!(out.verdict, TC_ACT_REDIRECT, "mode {mode}");
        assert_eq!(f.rx(), [0, 0, 0], "mode {mode}: no local delivery");
        let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[0], None), port);
        assert_eq!(out.verdict, TC_ACT_REDIRECT, "mode {mode}");
        assert_eq!(f.rx(), [0, 0, 0], "mode {mode}: no local broadcast");
    }
}

#[test]
fn bridge_endpoint_broadcast_reaches_the_others_and_the_wire() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    let port = f.ports[1];
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(BROADCAST, ENDPOINT_MACS[1], None), port);
    assert_eq!(out.verdict, TC_ACT_REDIRECT, "the original goes out of the parent");
    assert_eq!(f.rx(), [1, 0, 1]);
}

#[test]
fn frames_from_an_unknown_device_are_dropped() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    let parent = f.parent;
    let before = f.drops(DropReason::UnknownPort);
    let out = f.tc(program_names::ENDPOINT_INGRESS, &frame(ENDPOINT_MACS[0], OUTSIDE_MAC, None), parent);
    assert_eq!(out.verdict, TC_ACT_SHOT);
    assert_eq!(f.drops(DropReason::UnknownPort), before + 1);
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn source_mode_delivers_only_from_allowed_senders() {
    let mut f = Fixture::new(macvlan_mode::SOURCE);
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
    let mut f = Fixture::new(macvlan_mode::PASSTHRU);
    for dst in [ENDPOINT_MACS[0], PARENT_MAC, [0x02, 0x99, 0, 0, 0, 9]] {
        assert_eq!(f.xdp(&frame(dst, OUTSIDE_MAC, None)).verdict, XDP_REDIRECT);
    }
    assert_eq!(f.rx(), [3, 0, 0]);
}

#[test]
fn without_host_access_the_host_reaches_no_endpoint() {
    let mut f = Fixture::new(macvlan_mode::BRIDGE);
    let parent = f.parent;
    for dst in [ENDPOINT_MACS[1], BROADCAST] {
        assert_eq!(f.tc(program_names::PARENT_EGRESS, &frame(dst, PARENT_MAC, None), parent).verdict, TC_ACT_OK);
    }
    assert_eq!(f.rx(), [0, 0, 0]);
}

#[test]
fn host_access_delivers_the_hosts_frames_to_endpoints() {
    let mut f = Fixture::with_flags(macvlan_mode::BRIDGE, network_flags::HOST_ACCESS);
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
