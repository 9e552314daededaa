//! xlan's VXLAN in namespaces, hosts on an underlay switch (see `xlan_tests::vxlan` for the lab):
//! 1. xlan host A <-> kernel vxlan host B: ping v4/v6, TCP, UDP both ways, MTU-sized pings with DF and a bulk TCP
//!    transfer checked byte by byte; with head-end replication, a multicast group, and static entries without
//!    learning; what A learned (`xlan fdb show`);
//! 2. three xlan hosts, full mesh of `--remote` and a multicast group: every endpoint reaches every other;
//! 3. two VNIs on the same hosts with the same subnet: red's broadcast and unicast never reach blue (xlan's counters,
//!    a raw sniffer on the blue interfaces, the blue sockets);
//! 4. learning, ageing (`--ageing 2`) and a MAC moving to another VTEP;
//! 5. (bad input is in cli_errors.rs with the other CLI errors.)
//!
//! Each scenario runs with xlan's default parent hook for the veth underlay (tc) and with the xdp hook a NIC gets.
//! The underlay changing under a running network (a VTEP that comes up late, a VTEP whose MAC changes) is checked
//! against the kernel's vxlan as the reference. `cargo test ... --test vxlan_interop -- --ignored --nocapture`
//! prints informal throughput and latency numbers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use xlan_tests::counters::assert_account_for;
use xlan_tests::sniff::{FramesBySource, Sniffer};
use xlan_tests::vxlan::{
    underlay_ip, EndpointSpec, FdbRow, NetworkSpec, Vtep, VxlanLab, ENDPOINT_IFNAME, UNDERLAY, UNDERLAY_MTU,
    VXLAN_OVERHEAD,
};
use xlan_tests::{describe_diff, link, ok, probe, test_cases, Matrix, Netns, Node, Probe};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const NET: &str = "vnet";
const VNI: u32 = 42;
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 42);
/// Endpoint nodes: e1 behind host A, e2 behind B, e3 behind C.
const E1: Node = Node::Endpoint(1);
const E2: Node = Node::Endpoint(2);
const E3: Node = Node::Endpoint(3);

fn build(vteps: &[Vtep], spec: NetworkSpec) -> VxlanLab {
    let mut lab = ok(VxlanLab::build(vteps), format_args!("building a lab of {vteps:?}"));
    ok(lab.add_network(spec), "creating the VXLAN network on every host");
    lab
}

fn add_endpoint(lab: &mut VxlanLab, host: usize, network: &str, spec: EndpointSpec) {
    let node = spec.node;
    ok(lab.add_endpoint(host, network, spec), format_args!("adding endpoint {node} to {network} behind host {host}"));
}

/// Measures the network's matrix and requires every probe between every pair to get through; xlan's counters of
/// the endpoints on xlan hosts must account for the probes.
fn assert_full_reachability(lab: &VxlanLab, network: &str) -> Matrix {
    let started = Instant::now();
    let matrix = ok(Matrix::measure(&lab.view(network)), "measuring the matrix");
    println!("{lab}{matrix}measured in {:.1?}\n", started.elapsed());
    let unreachable = matrix.unreachable(|_, _| true);
    assert!(
        unreachable.is_empty(),
        "every endpoint of {network} must reach every other:\n{}{lab}{matrix}",
        describe_diff(&unreachable, "expected", "measured")
    );
    let rows: Vec<_> = lab
        .endpoints()
        .iter()
        .filter(|e| e.network == network && lab.vtep(e.host) == Vtep::Xlan)
        .map(|e| {
            let counters = ok(lab.xlan_counters(network, e.node()), "reading `xlan stats`");
            (e.node(), counters)
        })
        .collect();
    assert_account_for(&matrix, &rows, format_args!("network {network}"));
    assert_full_size_traffic(lab, network);
    matrix
}

/// Bytes each bulk TCP transfer carries: hundreds of full-size (and offloaded) segments, a few milliseconds here.
const BULK_BYTES: usize = 4 << 20;

/// The endpoints' MTU leaves room for the outer headers, and what fills it gets through: pings of exactly the MTU
/// with fragmentation prohibited, and a bulk TCP transfer checked byte by byte, over IPv4 and IPv6, every ordered pair.
fn assert_full_size_traffic(lab: &VxlanLab, network: &str) {
    let mtu = (UNDERLAY_MTU - VXLAN_OVERHEAD) as usize;
    let endpoints: Vec<_> = lab.endpoints().iter().filter(|e| e.network == network).collect();
    let mut failures = Vec::new();
    for endpoint in &endpoints {
        let link = ok(link::show(endpoint.netns(), ENDPOINT_IFNAME), "reading the endpoint's link");
        if link["mtu"].as_u64() != Some(mtu as u64) {
            failures.push(format!("{} has MTU {} (want {mtu})", endpoint.node(), link["mtu"]));
        }
    }
    for src in &endpoints {
        for dst in endpoints.iter().filter(|dst| dst.node() != src.node()) {
            for addr in [IpAddr::from(dst.node().ipv4()), dst.node().ipv6().into()] {
                let what = format!("{} -> {} ({addr})", src.node(), dst.node());
                if !ok(probe::ping_full_size(src.netns(), addr, mtu), format_args!("full-size ping {what}")) {
                    failures.push(format!("{what}: a {mtu}-byte ping with DF set gets no reply"));
                }
                if !ok(probe::tcp_bulk(src.netns(), dst.netns(), addr, BULK_BYTES), format_args!("bulk TCP {what}")) {
                    failures.push(format!("{what}: {BULK_BYTES} bytes of TCP do not all arrive intact"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "full-size traffic on {network} fails:\n  {}\n{lab}", failures.join("\n  "));
}

/// The FDB row of `mac` on an xlan host, if any.
fn fdb_row(lab: &VxlanLab, host: usize, network: &str, mac: &str) -> (Option<FdbRow>, Vec<FdbRow>) {
    let rows = ok(lab.fdb(host, network), "reading `xlan fdb show --json`");
    let row = rows.iter().find(|row| row.mac.eq_ignore_ascii_case(mac)).cloned();
    (row, rows)
}

/// `mac` is learned on xlan host `host` as living behind host `behind`.
fn assert_learned(lab: &VxlanLab, host: usize, network: &str, mac: &str, behind: usize) {
    let (row, rows) = fdb_row(lab, host, network, mac);
    let want_dst = underlay_ip(behind);
    assert!(
        row.as_ref().is_some_and(|row| row.is_learned() && row.dst == Some(want_dst)),
        "`xlan fdb show {network}` must list {mac} as learned with dst {want_dst}; got {row:?} in {rows:#?}"
    );
}

/// Where xlan hosts first handle underlay frames: xlan's default for their veth underlay (tc), and the xdp hook a
/// NIC gets by default (XDP decapsulation, learning and redirect; TC for what needs copies).
type Hook = Option<&'static str>;

/// `scenario!(name, function)`: the test module `name` with `default_hook` and `xdp_hook`, each calling
/// `function(hook)` (a path or a closure, written as seen from inside the module); `scenario!(name, function,
/// ignore = "reason")` ignores both.
macro_rules! scenario {
    ($name:ident, $function:expr $(, ignore = $reason:literal)?) => {
        mod $name {
            #[test]
            $(#[ignore = $reason])?
            fn default_hook() {
                $function(None);
            }

            #[test]
            $(#[ignore = $reason])?
            fn xdp_hook() {
                $function(Some("xdp"));
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------------------------------
// 1. xlan host A <-> kernel host B

/// Endpoint e1 behind xlan host A, e2 behind kernel host B, on the network `spec`; `statics` adds the static entries
/// a network without learning needs (each side: the other's endpoint MAC behind the other host).
fn interop_lab(spec: NetworkSpec, statics: bool) -> VxlanLab {
    let mut lab = build(&[Vtep::Xlan, Vtep::Kernel], spec);
    add_endpoint(&mut lab, A, NET, EndpointSpec::new(E1));
    add_endpoint(&mut lab, B, NET, EndpointSpec::new(E2));
    if statics {
        ok(lab.add_static_fdb(A, NET, &E2.mac(), B), "xlan fdb add");
        ok(lab.add_static_fdb(B, NET, &E1.mac(), A), "bridge fdb add");
    }
    lab
}

fn interop_head_end_replication(hook: Hook) {
    let lab = interop_lab(NetworkSpec::new(NET, VNI).parent_hook(hook), false);
    assert_full_reachability(&lab, NET);
    // B's bridge may send frames of its own (its MAC gets learned too): check e2's MAC specifically.
    assert_learned(&lab, A, NET, &E2.mac(), B);
}
scenario!(xlan_and_kernel_interoperate_with_head_end_replication, super::interop_head_end_replication);

fn interop_multicast_group(hook: Hook) {
    let lab = interop_lab(NetworkSpec::new(NET, VNI).group(GROUP).parent_hook(hook), false);
    assert_full_reachability(&lab, NET);
    assert_learned(&lab, A, NET, &E2.mac(), B);
}
scenario!(xlan_and_kernel_interoperate_with_a_multicast_group, super::interop_multicast_group);

fn interop_static_entries(hook: Hook) {
    let lab = interop_lab(NetworkSpec::new(NET, VNI).no_learning().parent_hook(hook), true);
    assert_full_reachability(&lab, NET);
    let (row, rows) = fdb_row(&lab, A, NET, &E2.mac());
    assert!(
        row.as_ref().is_some_and(|row| row.state == "static" && row.dst == Some(underlay_ip(B))),
        "`xlan fdb show` must keep {} as a static entry with dst {}; got {row:?} in {rows:#?}",
        E2.mac(),
        underlay_ip(B)
    );
    let learned: Vec<&FdbRow> = rows.iter().filter(|row| row.is_learned()).collect();
    assert!(learned.is_empty(), "a --no-learning network must learn nothing, but has {learned:#?}");
}
scenario!(xlan_and_kernel_interoperate_with_static_entries_and_no_learning, super::interop_static_entries);

// ---------------------------------------------------------------------------------------------------------------------
// 2. three xlan hosts

/// Endpoint e1, e2, e3 behind xlan hosts A, B, C: every endpoint reaches every other, and each host learned each
/// remote endpoint behind its host.
fn assert_three_xlan_hosts(spec: NetworkSpec) {
    let mut lab = build(&[Vtep::Xlan; 3], spec);
    for (host, node) in [(A, E1), (B, E2), (C, E3)] {
        add_endpoint(&mut lab, host, NET, EndpointSpec::new(node));
    }
    assert_full_reachability(&lab, NET);
    for (host, node, behind) in [(A, E2, B), (A, E3, C), (B, E1, A), (B, E3, C), (C, E1, A), (C, E2, B)] {
        assert_learned(&lab, host, NET, &node.mac(), behind);
    }
}

fn three_hosts_full_mesh(hook: Hook) {
    assert_three_xlan_hosts(NetworkSpec::new(NET, VNI).parent_hook(hook));
}
scenario!(three_xlan_hosts_in_a_full_mesh_reach_each_other, super::three_hosts_full_mesh);

fn three_hosts_group(hook: Hook) {
    assert_three_xlan_hosts(NetworkSpec::new(NET, VNI).group(GROUP).parent_hook(hook));
}
scenario!(three_xlan_hosts_with_a_multicast_group_reach_each_other, super::three_hosts_group);

// ---------------------------------------------------------------------------------------------------------------------
// 3. isolation of two VNIs on the same hosts, using the same subnet

const RED: &str = "vni100";
const BLUE: &str = "vni200";
const LEAK_PORT: u16 = 40000;
const DATAGRAMS: usize = 20;
/// An address in the subnet that no endpoint has: A's red endpoint sends to it with the MAC of B's blue endpoint.
const BLUE_MAC_IN_RED: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 99);

/// 02:77:00:00:VV:1i: endpoint i's MAC on the network with VNI byte VV (0x01 red, 0x02 blue).
fn mac_on(network: &str, node: Node) -> String {
    let vni_byte = if network == RED { 1 } else { 2 };
    let last = node.ipv4().octets()[3] + 6; // .11 -> 0x11
    format!("02:77:00:00:{vni_byte:02x}:{last:02x}")
}

/// A permanent neighbour entry: no ARP on the network, so nothing is sent but what the test sends.
fn static_neighbour(netns: &Netns, ip: Ipv4Addr, mac: &str) {
    ok(
        netns.ip(&["neigh", "replace", &ip.to_string(), "lladdr", mac, "dev", "eth0", "nud", "permanent"]),
        format_args!("static neighbour {ip} in {}", netns.name()),
    );
}

/// Sets the flag when dropped: the listener threads end also when the test fails half-way.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Counts datagrams to LEAK_PORT (broadcast or unicast) by their payload until `stop` is set.
fn listen(
    netns: &Netns,
    stop: &Arc<AtomicBool>,
) -> thread::JoinHandle<anyhow::Result<anyhow::Result<BTreeMap<String, usize>>>> {
    let stop = Arc::clone(stop);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = netns.spawn(move || -> anyhow::Result<BTreeMap<String, usize>> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, LEAK_PORT))?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let _ = ready_tx.send(());
        let mut seen = BTreeMap::new();
        let mut buf = [0u8; 256];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((len, _)) = socket.recv_from(&mut buf) {
                let what = String::from_utf8_lossy(&buf[..len]).into_owned();
                *seen.entry(what).or_insert(0) += 1;
            }
        }
        Ok(seen)
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(5));
    handle
}

/// Sends DATAGRAMS datagrams with `payload` to `target` from `netns` (SO_BROADCAST set), a millisecond apart.
fn send_datagrams(netns: &Netns, target: Ipv4Addr, payload: &'static str) {
    let result = netns.run(move || -> std::io::Result<()> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.set_broadcast(true)?;
        for _ in 0..DATAGRAMS {
            socket.send_to(payload.as_bytes(), SocketAddr::new(IpAddr::V4(target), LEAK_PORT))?;
            thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    });
    ok(result.and_then(|sent| Ok(sent?)), format_args!("sending {payload} to {target} from {}", netns.name()));
}

/// xlan's rx_packets of each blue endpoint.
fn blue_rx(lab: &VxlanLab) -> Vec<u64> {
    [E1, E2].into_iter().map(|node| ok(lab.xlan_counters(BLUE, node), "reading `xlan stats`").rx_packets).collect()
}

fn sniff(lab: &VxlanLab, network: &str, node: Node) -> Sniffer {
    let endpoint = ok(lab.endpoint(network, node), "endpoint to sniff on");
    ok(Sniffer::start(endpoint.netns(), ENDPOINT_IFNAME), "starting a sniffer")
}

/// Frames from any of the red endpoints' MACs.
fn from_red(frames: &FramesBySource) -> u64 {
    [E1, E2].into_iter().filter_map(|node| frames.get(&mac_on(RED, node))).sum()
}

fn isolation(hook: Hook) {
    let mut lab = ok(VxlanLab::build(&[Vtep::Xlan, Vtep::Xlan]), "building the lab");
    ok(lab.add_network(NetworkSpec::new(RED, 100).parent_hook(hook)), "creating VNI 100");
    ok(lab.add_network(NetworkSpec::new(BLUE, 200).parent_hook(hook)), "creating VNI 200");
    // The same nodes, so the same addresses, on both VNIs; IPv4 only, so that the endpoints send nothing by themselves.
    for network in [RED, BLUE] {
        for (host, node) in [(A, E1), (B, E2)] {
            let spec = EndpointSpec::new(node).mac(&mac_on(network, node)).ipv4_only();
            add_endpoint(&mut lab, host, network, spec);
        }
    }
    // Blue resolves nothing (it must stay silent while red is tested); red uses ARP, its broadcasts are leak candidates.
    for (node, peer) in [(E1, E2), (E2, E1)] {
        let endpoint = ok(lab.endpoint(BLUE, node), "blue endpoint");
        static_neighbour(endpoint.netns(), peer.ipv4(), &mac_on(BLUE, peer));
    }
    println!("{lab}");

    // Each VNI works on its own.
    for network in [RED, BLUE] {
        for (src, dst) in [(E1, E2), (E2, E1)] {
            let (from, to) = (ok(lab.endpoint(network, src), "src"), ok(lab.endpoint(network, dst), "dst"));
            for probe in [Probe::Ping4, Probe::Tcp] {
                let reached = ok(
                    probe.run(from.netns(), to.netns(), dst.ipv4().into()),
                    format_args!("{} {src} -> {dst} on {network}", probe.name()),
                );
                assert!(reached, "{} {src} -> {dst} must get through on {network}", probe.name());
            }
        }
    }
    thread::sleep(Duration::from_millis(300)); // the TCP probes' last segments

    let red_a = ok(lab.endpoint(RED, E1), "red endpoint on A").netns();
    static_neighbour(red_a, BLUE_MAC_IN_RED, &mac_on(BLUE, E2));
    let red_b_before = ok(lab.xlan_counters(RED, E2), "reading `xlan stats`").rx_packets;
    let blue_before = blue_rx(&lab);
    // Every frame that reaches a blue interface, whatever path it took, and the red one that must see the traffic.
    let sniffers: Vec<_> = [(RED, E2), (BLUE, E1), (BLUE, E2)]
        .into_iter()
        .map(|(network, node)| ((network, node), sniff(&lab, network, node)))
        .collect();

    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let listeners: Vec<_> = [(RED, E2), (BLUE, E1), (BLUE, E2)]
        .into_iter()
        .map(|(network, node)| {
            let endpoint = ok(lab.endpoint(network, node), "listener endpoint");
            ((network, node), listen(endpoint.netns(), &stop.0))
        })
        .collect();
    // Red traffic from A: broadcast to the subnet, unicast to B's red endpoint (B's blue endpoint has the same
    // address), unicast to B's blue endpoint's MAC (unknown on red, so flooded there), and pings.
    send_datagrams(red_a, Ipv4Addr::new(10, 77, 0, 255), "broadcast");
    send_datagrams(red_a, E2.ipv4(), "unicast");
    send_datagrams(red_a, BLUE_MAC_IN_RED, "blue-mac");
    ok(red_a.exec("ping", &["-n", "-q", "-c", "3", "-i", "0.2", "-W", "1", &E2.ipv4().to_string()]), "red ping");
    thread::sleep(Duration::from_millis(500));
    stop.0.store(true, Ordering::Relaxed);
    let received: BTreeMap<_, _> = listeners
        .into_iter()
        .map(|(who, handle)| {
            let seen = handle.join().expect("listener thread");
            (who, ok(seen.and_then(|inner| inner), format_args!("listener on {who:?}")))
        })
        .collect();
    let frames: BTreeMap<_, _> = sniffers
        .into_iter()
        .map(|(who, sniffer)| (who, ok(sniffer.finish(), format_args!("sniffer on {who:?}"))))
        .collect();

    let red_b_after = ok(lab.xlan_counters(RED, E2), "reading `xlan stats`").rx_packets;
    let blue_after = blue_rx(&lab);
    println!("datagrams received: {received:?}\nframes received, by source MAC: {frames:?}");
    println!(
        "xlan rx_packets: red e2 {red_b_before} -> {red_b_after}, blue e1 and e2 {blue_before:?} -> {blue_after:?}"
    );

    // The traffic happened: B's red endpoint got every broadcast and unicast datagram, and xlan counted them.
    let red_seen = &received[&(RED, E2)];
    assert_eq!(
        (red_seen.get("broadcast").copied(), red_seen.get("unicast").copied()),
        (Some(DATAGRAMS), Some(DATAGRAMS)),
        "B's red endpoint must receive every broadcast and unicast datagram: {red_seen:?}"
    );
    assert!(
        from_red(&frames[&(RED, E2)]) >= 3 * DATAGRAMS as u64,
        "B's red interface must see the broadcast, unicast and blue-MAC frames: {:?}",
        frames[&(RED, E2)]
    );
    assert!(
        red_b_after - red_b_before >= 3 * DATAGRAMS as u64,
        "xlan must count the red frames B's red endpoint received: rx_packets {red_b_before} -> {red_b_after}"
    );
    // None of it reached blue: not xlan's counters, not the interfaces, not the sockets.
    assert_eq!(
        blue_before, blue_after,
        "xlan's rx_packets of the blue endpoints (e1, e2) must not move while only red sends"
    );
    for node in [E1, E2] {
        let leaked = from_red(&frames[&(BLUE, node)]);
        assert_eq!(
            leaked,
            0,
            "blue endpoint {node} received {leaked} frames from red MACs: {:?}",
            frames[&(BLUE, node)]
        );
        let seen = &received[&(BLUE, node)];
        assert!(seen.is_empty(), "blue endpoint {node} received red datagrams: {seen:?}");
    }
}
scenario!(two_vnis_with_the_same_subnet_are_isolated, super::isolation);

// ---------------------------------------------------------------------------------------------------------------------
// 4. learning, ageing, a MAC moving to another VTEP

const AGEING_SECS: u32 = 2;

fn ping_ok(src: &Netns, dst: Ipv4Addr) {
    ok(
        src.exec("ping", &["-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", &dst.to_string()]),
        format_args!("ping {dst} from {}", src.name()),
    );
}

fn ageing_and_moves(hook: Hook) {
    let mut lab = build(&[Vtep::Xlan; 3], NetworkSpec::new(NET, VNI).ageing(AGEING_SECS).parent_hook(hook));
    add_endpoint(&mut lab, A, NET, EndpointSpec::new(E1).ipv4_only());
    add_endpoint(&mut lab, B, NET, EndpointSpec::new(E2).ipv4_only());
    // Static neighbours, IPv6 off: the endpoints send nothing but the pings, so "no traffic" is really none.
    let e2_mac = E2.mac();
    static_neighbour(ok(lab.endpoint(NET, E1), "e1").netns(), E2.ipv4(), &e2_mac);
    static_neighbour(ok(lab.endpoint(NET, E2), "e2").netns(), E1.ipv4(), &E1.mac());
    println!("{lab}");

    let e1 = ok(lab.endpoint(NET, E1), "e1").netns();
    ping_ok(e1, E2.ipv4());
    let quiet_since = Instant::now();
    assert_learned(&lab, A, NET, &e2_mac, B);

    thread::sleep(Duration::from_secs(2 * u64::from(AGEING_SECS)));
    let (row, rows) = fdb_row(&lab, A, NET, &e2_mac);
    assert!(
        row.is_none(),
        "{e2_mac} must have aged out of `xlan fdb show` {:.1?} after the last traffic (ageing {AGEING_SECS}s): {rows:#?}",
        quiet_since.elapsed()
    );

    // Traffic again: learned again, behind B.
    ping_ok(e1, E2.ipv4());
    assert_learned(&lab, A, NET, &e2_mac, B);

    // The MAC moves to host C while A's entry is still live: it must follow as soon as C's endpoint sends.
    let moved_at = Instant::now();
    ok(lab.remove_endpoint(NET, E2), "removing e2 from host B");
    add_endpoint(&mut lab, C, NET, EndpointSpec::new(E2).ipv4_only());
    let moved = ok(lab.endpoint(NET, E2), "e2 behind C").netns();
    static_neighbour(moved, E1.ipv4(), &E1.mac());
    ping_ok(moved, E1.ipv4());
    println!("moved {e2_mac} from B to C and pinged in {:.1?}", moved_at.elapsed());
    assert_learned(&lab, A, NET, &e2_mac, C);
    // And A's endpoint reaches it there.
    ping_ok(ok(lab.endpoint(NET, E1), "e1").netns(), E2.ipv4());
}
scenario!(learned_entries_age_out_and_follow_a_moved_mac, super::ageing_and_moves);

/// An endpoint hears its network and nothing else: in particular not the host's own stack through the host-side end
/// of the endpoint's veth, which the kernel's vxlan and macvlan endpoints do not have.
#[test]
fn an_endpoint_hears_nothing_from_its_host() {
    let mut lab = build(&[Vtep::Xlan, Vtep::Xlan], NetworkSpec::new(NET, VNI));
    add_endpoint(&mut lab, A, NET, EndpointSpec::new(E1).ipv4_only());
    let sniffer = sniff(&lab, NET, E1);
    // The host's IPv6 start-up (DAD, MLD reports, the first router solicitations) takes a few seconds.
    thread::sleep(Duration::from_secs(6));
    let frames = ok(sniffer.finish(), "sniffing on e1");
    assert!(frames.is_empty(), "a silent network, yet e1 received frames (by source MAC): {frames:?}\n{lab}");
}

// ---------------------------------------------------------------------------------------------------------------------
// The underlay changes under a running network: the VTEPs' next hops must follow.

/// Pings `dst` from `src` (one-second deadline each) until one gets through or `within` has passed; the time it took.
fn reachable_within(src: &Netns, dst: Ipv4Addr, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        // A ping needs no server: the destination namespace argument is not used.
        if ok(Probe::Ping4.run(src, src, dst.into()), "ping") {
            return Some(started.elapsed());
        }
        thread::sleep(Duration::from_millis(500));
    }
    None
}

/// How long the underlay may take to settle after a change (the kernel resolves a managed neighbour in about a
/// second; its own vxlan follows a changed MAC within a few).
const UNDERLAY_SETTLES: Duration = Duration::from_secs(10);

/// Host B is off the wire while A creates its network (say it boots later); once B is up and has the network too,
/// A's endpoint must reach B's, also when A's side speaks first.
fn assert_late_vtep_is_reached(vteps: &[Vtep], hook: Hook) {
    let mut lab = ok(VxlanLab::build(vteps), "building the lab");
    ok(lab.set_underlay(B, false), "taking B off the wire");
    let spec = NetworkSpec::new(NET, VNI).parent_hook(hook);
    ok(lab.add_network_on(&[A], spec.clone()), "creating the network on A");
    ok(lab.set_underlay(B, true), "bringing B's underlay up");
    ok(lab.add_network_on(&[B], spec), "creating the network on B");
    // IPv4 only: nothing but the test's pings crosses the network (IPv6 start-up chatter would make B speak first).
    add_endpoint(&mut lab, A, NET, EndpointSpec::new(E1).ipv4_only());
    add_endpoint(&mut lab, B, NET, EndpointSpec::new(E2).ipv4_only());
    let e1 = ok(lab.endpoint(NET, E1), "e1").netns();
    let took = reachable_within(e1, E2.ipv4(), UNDERLAY_SETTLES);
    let drops = lab.xlan_counters(NET, E1).map(|c| c.drops).unwrap_or_default();
    assert!(
        took.is_some(),
        "e1 (behind A) does not reach e2 (behind B) within {UNDERLAY_SETTLES:?}; e1's drops {drops:?}; A's neighbours: {}\n{lab}",
        ok(lab.host_netns(A).ip(&["neigh", "show", "dev", UNDERLAY]), "ip neigh").trim()
    );
}

test_cases!(assert_late_vtep_is_reached {
    kernel_reaches_a_vtep_that_comes_up_late: &[Vtep::Kernel, Vtep::Kernel], None;
});
scenario!(xlan_reaches_a_vtep_that_comes_up_late, |hook| super::assert_late_vtep_is_reached(
    &[super::Vtep::Xlan; 2],
    hook
));

/// B's underlay MAC changes (a NIC swap, a VM moved) while the endpoints talk: A's traffic must follow it.
fn assert_traffic_follows_a_changed_vtep_mac(vteps: &[Vtep], hook: Hook) {
    let mut lab = build(vteps, NetworkSpec::new(NET, VNI).parent_hook(hook));
    add_endpoint(&mut lab, A, NET, EndpointSpec::new(E1));
    add_endpoint(&mut lab, B, NET, EndpointSpec::new(E2));
    let (e1, e2) = (ok(lab.endpoint(NET, E1), "e1").netns(), ok(lab.endpoint(NET, E2), "e2").netns());
    assert!(reachable_within(e1, E2.ipv4(), UNDERLAY_SETTLES).is_some(), "e1 must reach e2 before the change");
    ok(link::set(lab.host_netns(B), UNDERLAY, &["address", "02:99:00:00:00:02"]), "changing B's underlay MAC");
    // Both directions keep trying: B's side learns nothing new, A's kernel re-resolves B's address meanwhile.
    let back = reachable_within(e2, E1.ipv4(), UNDERLAY_SETTLES);
    let forth = reachable_within(e1, E2.ipv4(), UNDERLAY_SETTLES);
    assert!(
        back.is_some() && forth.is_some(),
        "after B's underlay MAC changed: e2 -> e1 {back:?}, e1 -> e2 {forth:?} (None: not within {UNDERLAY_SETTLES:?}); \
         A's neighbours: {}\n{lab}",
        ok(lab.host_netns(A).ip(&["neigh", "show", "dev", UNDERLAY]), "ip neigh").trim()
    );
}

test_cases!(assert_traffic_follows_a_changed_vtep_mac {
    kernel_follows_a_changed_vtep_mac: &[Vtep::Kernel, Vtep::Kernel], None;
});
scenario!(xlan_follows_a_changed_vtep_mac, |hook| super::assert_traffic_follows_a_changed_vtep_mac(
    &[super::Vtep::Xlan, super::Vtep::Kernel],
    hook
));

// ---------------------------------------------------------------------------------------------------------------------
// Informal numbers (ignored by default): ping RTT and iperf3 TCP, xlan <-> kernel and xlan <-> xlan.

#[test]
#[ignore = "informal measurement: run with --ignored --nocapture"]
fn informal_throughput_and_latency() {
    use xlan_tests::bench::{latency, tcp};
    let labs: [([Vtep; 2], Hook); 5] = [
        ([Vtep::Xlan, Vtep::Kernel], None),
        ([Vtep::Xlan, Vtep::Kernel], Some("xdp")),
        ([Vtep::Xlan, Vtep::Xlan], None),
        ([Vtep::Xlan, Vtep::Xlan], Some("xdp")),
        ([Vtep::Kernel, Vtep::Kernel], None),
    ];
    for (vteps, hook) in labs {
        let mut lab = build(&vteps, NetworkSpec::new(NET, VNI).parent_hook(hook));
        add_endpoint(&mut lab, A, NET, EndpointSpec::new(E1));
        add_endpoint(&mut lab, B, NET, EndpointSpec::new(E2));
        let (e1, e2) = (ok(lab.endpoint(NET, E1), "e1").netns(), ok(lab.endpoint(NET, E2), "e2").netns());
        let measured = (|| -> anyhow::Result<String> {
            let rtt = latency::ping(e1, E2.ipv4().into(), 200)?;
            let forward = tcp::gbps(e1, e2, E2.ipv4().into(), tcp::Amount::Seconds(3))?;
            let backward = tcp::gbps(e2, e1, E1.ipv4().into(), tcp::Amount::Seconds(3))?;
            Ok(format!(
                "ping p50 {:.0} us p99 {:.0} us; iperf3 TCP 3 s: A->B {forward:.2} Gbit/s, B->A {backward:.2} Gbit/s",
                rtt.p50_us, rtt.p99_us
            ))
        })();
        println!(
            "A {} <-> B {} (xlan hook {}): {}",
            vteps[0],
            vteps[1],
            hook.unwrap_or("default"),
            measured.unwrap_or_else(|err| format!("failed: {err:#}"))
        );
    }
}
