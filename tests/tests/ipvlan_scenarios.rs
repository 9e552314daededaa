//! xlan's ipvlan networks in namespaces, against what Documentation/networking/ipvlan.rst and xlan's ipvlan semantics
//! imply (this kernel has no ipvlan driver to compare with):
//! - the reachability matrix of each mode (l2, l3) and flag (bridge, private, vepa), written out below as tables;
//! - l3 against the same routed scenario built with plain kernel routing;
//! - spoofed source addresses are dropped and counted;
//! - `xlan route add|del` makes a prefix behind an endpoint reachable, and unreachable again.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use xlan_tests::counters::assert_account_for;
use xlan_tests::ipvlan::{
    expected, Frame, IpvlanFlag, IpvlanMode, IpvlanTopology, RoutedReference, Table, Want, WireTap, SWITCH_PORT_HOST,
};
use xlan_tests::topology::NETWORK;
use xlan_tests::{cmd, describe_diff, link, ok, test_cases, xlan, Family, Matrix, Netns, Node, Probe};

const Y: Want = Want::Reachable;
const N: Want = Want::Unreachable;
const X: Want = Want::Diagonal;
const V4: Want = Want::OnlyV4;

// Rows: source, columns: destination, both in the order out, host, e1, e2, e3. Y: every probe (ping4, ping6, tcp4,
// udp6) gets through; N: none does; V4: the IPv4 ones (ping4, tcp4) only; X: the diagonal. Nodes: out 10.77.0.1,
// host (the parent, uplink) 10.77.0.2, e1 .11, e2 .12, e3 .13 (in l3: 10.99.0.13 on a second subnet that the outside
// node routes via the host), and the IPv6 twins (fd77::1 ... fd99::13). The switch hairpins for private and vepa.

/// l2 bridge: the endpoints answer ARP/ND themselves and reach each other inside the host; the outside reaches
/// everyone; the parent's address stays the host's, so the host and its endpoints do not reach each other (their
/// ARP/ND leaves on the wire and nothing brings it back).
const L2_BRIDGE: Table = [
    //        out host e1 e2 e3
    /* out  */ [X, Y, Y, Y, Y],
    /* host */ [Y, X, N, N, N],
    /* e1   */ [Y, N, X, Y, Y],
    /* e2   */ [Y, N, Y, X, Y],
    /* e3   */ [Y, N, Y, Y, X],
];

/// l2 private (switch hairpins): endpoints never reach each other, not even through the reflecting switch. The
/// outside reaches everyone. The host's own frames come back through the hairpin port like any frame from the
/// wire and are demultiplexed to the endpoints by destination address — the same as the kernel's macvlan in VEPA —
/// so the host and the endpoints do reach each other here.
const L2_PRIVATE: Table = [
    //        out host e1 e2 e3
    /* out  */ [X, Y, Y, Y, Y],
    /* host */ [Y, X, Y, Y, Y],
    /* e1   */ [Y, Y, X, N, N],
    /* e2   */ [Y, Y, N, X, N],
    /* e3   */ [Y, Y, N, N, X],
];

/// l2 vepa (switch hairpins): endpoint-to-endpoint goes out to the switch and back; everyone reaches everyone (the
/// host too, through the hairpin, as with private).
const L2_VEPA: Table = [
    //        out host e1 e2 e3
    /* out  */ [X, Y, Y, Y, Y],
    /* host */ [Y, X, Y, Y, Y],
    /* e1   */ [Y, Y, X, Y, Y],
    /* e2   */ [Y, Y, Y, X, Y],
    /* e3   */ [Y, Y, Y, Y, X],
];

/// l3 bridge: the parent routes for its endpoints, so e3 on the second subnet reaches e1/e2 and back; the outside
/// reaches e1/e2 through xlan's ARP/ND answers and e3 through its route via the host. The host and its endpoints do
/// not reach each other.
const L3_BRIDGE: Table = [
    //        out host e1 e2 e3
    /* out  */ [X, Y, Y, Y, Y],
    /* host */ [Y, X, N, N, N],
    /* e1   */ [Y, N, X, Y, Y],
    /* e2   */ [Y, N, Y, X, Y],
    /* e3   */ [Y, N, Y, Y, X],
];

/// l3 private (switch hairpins): no endpoint reaches another, on the same subnet or not.
const L3_PRIVATE: Table = [
    //        out host e1 e2 e3
    /* out  */ [X, Y, Y, Y, Y],
    /* host */ [Y, X, N, N, N],
    /* e1   */ [Y, N, X, N, N],
    /* e2   */ [Y, N, N, X, N],
    /* e3   */ [Y, N, N, N, X],
];

/// l3 vepa (switch hairpins): endpoint-to-endpoint traffic is routed by the host out to the switch and comes back.
/// e1 and e2, on the wire's subnet, reach each other. e3's subnet is routed by the outside node only; the host has
/// no route to it, and what happens then is the host's route lookup with the parent as output interface (what the
/// kernel's ipvlan_process_v4/v6_outbound do as well): IPv4 assumes an unrouted destination is on the link of the
/// given interface (the host ARPs for it on the wire, the hairpin brings xlan's answer back, and it works), IPv6 has
/// no such fallback (unreachable). So e3 and e1/e2 reach each other over IPv4 only.
const L3_VEPA: Table = [
    //        out host e1  e2  e3
    /* out  */ [X, Y, Y, Y, Y],
    /* host */ [Y, X, N, N, N],
    /* e1   */ [Y, N, X, Y, V4],
    /* e2   */ [Y, N, Y, X, V4],
    /* e3   */ [Y, N, V4, V4, X],
];

fn require_xlan() {
    ok(xlan::binary(), "the ipvlan scenarios need the xlan binary");
}

fn build(mode: IpvlanMode, flag: IpvlanFlag) -> IpvlanTopology {
    require_xlan();
    ok(
        IpvlanTopology::build(mode, flag),
        format_args!("building the ipvlan {} {} topology", mode.as_str(), flag.as_str()),
    )
}

/// Measures the topology, prints it, and checks xlan's counters against what got through.
fn measure(topology: &IpvlanTopology) -> Matrix {
    let started = Instant::now();
    let reach = ok(Matrix::measure(topology), "measuring the ipvlan topology");
    println!("{topology}{reach}measured in {:.1?}\n", started.elapsed());
    let counters = ok(topology.endpoint_counters(), "reading `xlan stats`");
    assert_account_for(
        &reach,
        &counters,
        format_args!("ipvlan {} {}", topology.mode().as_str(), topology.flag().as_str()),
    );
    reach
}

fn assert_matrix(mode: IpvlanMode, flag: IpvlanFlag, table: &Table) {
    let topology = build(mode, flag);
    let measured = measure(&topology);
    let expected = expected(table);
    let diff = expected.diff(&measured);
    assert!(
        diff.is_empty(),
        "ipvlan {} {}: the measured matrix differs from the expected one:\n{}expected:\n{expected}measured:\n{measured}",
        mode.as_str(),
        flag.as_str(),
        describe_diff(&diff, "expected", "xlan")
    );
}

test_cases!(assert_matrix {
    l2_bridge_matrix: IpvlanMode::L2, IpvlanFlag::Bridge, &L2_BRIDGE;
    l2_private_matrix: IpvlanMode::L2, IpvlanFlag::Private, &L2_PRIVATE;
    l2_vepa_matrix: IpvlanMode::L2, IpvlanFlag::Vepa, &L2_VEPA;
    l3_bridge_matrix: IpvlanMode::L3, IpvlanFlag::Bridge, &L3_BRIDGE;
    l3_private_matrix: IpvlanMode::L3, IpvlanFlag::Private, &L3_PRIVATE;
    l3_vepa_matrix: IpvlanMode::L3, IpvlanFlag::Vepa, &L3_VEPA;
});

/// The cells the routed reference and xlan's l3 must agree on: endpoint <-> endpoint and outside <-> endpoint. (The
/// router reaches its endpoints directly, which is not what ipvlan does with the parent's address.)
fn routed_cell(src: Node, dst: Node) -> bool {
    matches!(
        (src, dst),
        (Node::Endpoint(_), Node::Endpoint(_))
            | (Node::Outside, Node::Endpoint(_))
            | (Node::Endpoint(_), Node::Outside)
    )
}

/// xlan's l3 bridge network routes between its endpoints' subnets and the wire as a kernel router between the same
/// nodes does.
#[test]
fn l3_bridge_matches_kernel_routing() {
    require_xlan();
    let reference = ok(RoutedReference::build(), "building the routed reference");
    let started = Instant::now();
    let routed = ok(Matrix::measure(&reference), "measuring the routed reference");
    println!("{reference}{routed}measured in {:.1?}\n", started.elapsed());
    drop(reference);

    let topology = build(IpvlanMode::L3, IpvlanFlag::Bridge);
    let xlan = measure(&topology);

    let (routed, xlan) = (routed.restricted(routed_cell), xlan.restricted(routed_cell));
    let diff = routed.diff(&xlan);
    assert!(
        diff.is_empty(),
        "xlan's l3 differs from kernel routing:\n{}kernel routing:\n{routed}xlan l3 bridge:\n{xlan}",
        describe_diff(&diff, "kernel routing", "xlan")
    );
    // Not vacuous: kernel routing connects every compared pair, with every probe.
    let unreachable = routed.unreachable(routed_cell);
    assert!(
        unreachable.is_empty(),
        "the routed reference itself is broken:\n{}{routed}",
        describe_diff(&unreachable, "expected", "kernel routing")
    );
}

/// `ip -n NS args...`, failing the test on error.
fn ip(netns: &Netns, args: &[&str]) {
    ok(netns.ip(args), format_args!("`ip {}` in {}", args.join(" "), netns.name()));
}

/// Adds `cidr` to `ifname` in `netns` (see `link::add_address`), failing the test on error.
fn add_address(netns: &Netns, ifname: &str, cidr: &str) {
    ok(link::add_address(netns, ifname, cidr), format_args!("adding {cidr} to {ifname} in {}", netns.name()));
}

/// The address as a host prefix: /32 or /128.
fn host_cidr(addr: IpAddr) -> String {
    format!("{addr}/{}", if addr.is_ipv4() { 32 } else { 128 })
}

/// `ping -c COUNT` from `source` (-I) in `netns`; whether any reply came.
fn ping_from(netns: &Netns, source: IpAddr, dst: IpAddr, count: u32) -> bool {
    let family = if dst.is_ipv4() { "-4" } else { "-6" };
    let (source, dst, count) = (source.to_string(), dst.to_string(), count.to_string());
    cmd::succeeds(
        &mut netns.command("ping", &[family, "-n", "-q", "-c", &count, "-i", "0.2", "-W", "1", "-I", &source, &dst]),
    )
}

fn spoofed_drops(topology: &IpvlanTopology, node: Node) -> u64 {
    let counters = ok(topology.counters(node), format_args!("`xlan stats` for {node}"));
    counters
        .drops
        .get("spoofed")
        .copied()
        .unwrap_or_else(|| panic!("`xlan stats --json` has no \"spoofed\" drop reason: {counters:?}"))
}

/// Echo requests per spoofed source.
const SPOOF_PINGS: u32 = 3;

/// An endpoint that gives itself addresses it does not own — another endpoint's, and one nobody has — gets nothing
/// through from them: its packets never reach the wire, and xlan counts them as "spoofed" drops of that endpoint.
/// Its own addresses keep working.
fn assert_spoofing_dropped(mode: IpvlanMode) {
    let topology = build(mode, IpvlanFlag::Bridge);
    let e1 = topology.netns(Node::Endpoint(1));
    let outside = [Family::V4, Family::V6].map(|family| Node::Outside.addr(family));
    // Its own addresses work (and the outside's neighbour entries are in place, so what follows sends at once).
    for family in [Family::V4, Family::V6] {
        let own = topology.addr(Node::Endpoint(1), family);
        let dst = Node::Outside.addr(family);
        assert!(ping_from(e1, own, dst, 1), "{topology}e1 cannot ping {dst} from its own {own}");
    }

    let others: Vec<IpAddr> = vec![
        topology.addr(Node::Endpoint(2), Family::V4),
        "10.77.0.99".parse().expect("address"),
        topology.addr(Node::Endpoint(2), Family::V6),
        "fd77::99".parse().expect("address"),
    ];
    for addr in &others {
        add_address(e1, "eth0", &host_cidr(*addr));
    }

    let before = spoofed_drops(&topology, Node::Endpoint(1));
    let tap = ok(WireTap::start(topology.switch(), SWITCH_PORT_HOST), "starting the wire tap");
    let mut got_through = Vec::new();
    for &source in &others {
        let dst = outside[usize::from(source.is_ipv6())];
        if ping_from(e1, source, dst, SPOOF_PINGS) {
            got_through.push(format!("ping {dst} from {source} got a reply"));
        }
    }
    // A legitimate echo request in the same window: the tap does see e1's traffic.
    let own = topology.addr(Node::Endpoint(1), Family::V4);
    assert!(ping_from(e1, own, outside[0], 1), "{topology}e1 cannot ping {} from its own {own}", outside[0]);
    let frames = ok(tap.stop(), "stopping the wire tap");
    let after = spoofed_drops(&topology, Node::Endpoint(1));
    assert!(
        frames.iter().any(|frame| frame.ip_addrs().is_some_and(|(src, _)| src == own)),
        "{topology}the wire tap did not see e1's own echo request ({} frames)",
        frames.len()
    );

    got_through.extend(
        frames
            .iter()
            .filter(|frame| frame.ip_addrs().is_some_and(|(src, _)| others.contains(&src)))
            .map(|frame| format!("on the wire: {frame}")),
    );
    assert!(
        got_through.is_empty(),
        "{topology}traffic from addresses e1 does not own got through:\n{}",
        got_through.join("\n")
    );
    let sent = SPOOF_PINGS as u64 * others.len() as u64;
    assert!(
        after >= before + sent,
        "{topology}e1 sent {sent} echo requests from addresses it does not own, but its \"spoofed\" drops went \
         from {before} to {after} only"
    );
    println!("{topology}spoofed drops of e1: {before} -> {after} ({sent} echo requests from {others:?})");
    // The drops are the spoofed sources', not the endpoint's.
    for family in [Family::V4, Family::V6] {
        let own = topology.addr(Node::Endpoint(1), family);
        let dst = Node::Outside.addr(family);
        assert!(ping_from(e1, own, dst, 1), "{topology}e1 cannot ping {dst} from its own {own} any more");
    }
}

test_cases!(assert_spoofing_dropped {
    l2_spoofed_sources_are_dropped_and_counted: IpvlanMode::L2;
    l3_spoofed_sources_are_dropped_and_counted: IpvlanMode::L3;
});

/// The prefixes routed behind e1 by `xlan route`, and the address inside each that e1 puts on its loopback.
const ROUTED: [(&str, &str); 2] = [("10.123.0.0/24", "10.123.0.5"), ("fd23::/64", "fd23::5")];

/// Which of the probes from `src` to e1's routed addresses got through (IPv4: ping4, tcp4; IPv6: ping6, udp6).
fn probe_routed(topology: &IpvlanTopology, src: Node) -> Vec<(Node, Probe, bool)> {
    let e1 = topology.netns(Node::Endpoint(1));
    Probe::ALL
        .into_iter()
        .map(|probe| {
            let dst: IpAddr = ROUTED[usize::from(probe.family() == Family::V6)].1.parse().expect("address");
            let reached =
                ok(probe.run(topology.netns(src), e1, dst), format_args!("{} from {src} to {dst}", probe.name()));
            (src, probe, reached)
        })
        .collect()
}

fn route_show(topology: &IpvlanTopology) -> serde_json::Value {
    let text = ok(topology.xlan().run(&["route", "show", NETWORK, "--json"]), "xlan route show");
    ok(
        serde_json::from_str(&text).map_err(anyhow::Error::from),
        format_args!("parsing `xlan route show --json`: {text}"),
    )
}

/// `xlan route add NET PREFIX --endpoint E1` on l3: an address of the prefix inside e1 becomes reachable from the
/// outside node (which routes the prefix via the host) and from another endpoint; `route del` takes it away again.
#[test]
fn l3_route_to_an_endpoint_comes_and_goes() {
    let topology = build(IpvlanMode::L3, IpvlanFlag::Bridge);
    let e1 = topology.netns(Node::Endpoint(1));
    let outside = topology.netns(Node::Outside);
    for (prefix, addr) in ROUTED {
        let addr: IpAddr = addr.parse().expect("address");
        let via = if addr.is_ipv6() { Node::Host.ipv6().to_string() } else { Node::Host.ipv4().to_string() };
        add_address(e1, "lo", &host_cidr(addr));
        ip(outside, &["route", "add", prefix, "via", &via]);
    }
    let sources = [Node::Outside, Node::Endpoint(2)];
    let probe_all =
        || -> Vec<(Node, Probe, bool)> { sources.iter().flat_map(|&src| probe_routed(&topology, src)).collect() };
    let describe = |results: &[(Node, Probe, bool)], want: bool| -> Vec<String> {
        results
            .iter()
            .filter(|(_, _, reached)| *reached != want)
            .map(|(src, probe, _)| format!("{} from {src}", probe.name()))
            .collect()
    };

    let before = describe(&probe_all(), false);
    assert!(before.is_empty(), "{topology}reachable before `route add`: {before:?}");

    let e1_name = e1.name().to_string();
    for (prefix, _) in ROUTED {
        ok(
            topology.xlan().run(&["route", "add", NETWORK, prefix, "--endpoint", &e1_name]),
            format_args!("xlan route add {prefix}"),
        );
    }
    let shown = route_show(&topology);
    let expected: Vec<serde_json::Value> = ROUTED
        .iter()
        .map(|(prefix, _)| serde_json::json!({"cidr": prefix, "endpoint": format!("eth0@{e1_name}")}))
        .collect();
    assert_eq!(shown, serde_json::Value::Array(expected), "`xlan route show --json` after route add");
    let added = probe_all();
    let unreached = describe(&added, true);
    assert!(unreached.is_empty(), "{topology}not reachable after `route add`: {unreached:?}");

    for (prefix, _) in ROUTED {
        ok(topology.xlan().run(&["route", "del", NETWORK, prefix]), format_args!("xlan route del {prefix}"));
    }
    assert_eq!(route_show(&topology), serde_json::json!([]), "`xlan route show --json` after route del");
    let after = describe(&probe_all(), false);
    assert!(after.is_empty(), "{topology}still reachable after `route del`: {after:?}");
    println!("{topology}routes {ROUTED:?} behind e1: unreachable, reachable after route add ({} probes), unreachable after route del", added.len());
}

/// How long the wire is watched after an endpoint's traffic to the host's address.
const LEAK_WATCH: Duration = Duration::from_millis(500);

/// l3: the parent's addresses stay the host's, and endpoints cannot reach them. That traffic must also stay off the
/// wire: nothing an endpoint sends to the host's address, and no neighbour solicitation by the host for its own
/// address, may leave the parent (the switch's port to the host receives it).
#[test]
fn l3_traffic_to_the_hosts_address_stays_off_the_wire() {
    let topology = build(IpvlanMode::L3, IpvlanFlag::Bridge);
    let e1 = topology.netns(Node::Endpoint(1));
    let host_addrs = [Node::Host.addr(Family::V4), Node::Host.addr(Family::V6)];
    let tap = ok(WireTap::start(topology.switch(), SWITCH_PORT_HOST), "starting the wire tap");
    let mut reached = Vec::new();
    for dst in host_addrs {
        let own = topology.addr(Node::Endpoint(1), if dst.is_ipv4() { Family::V4 } else { Family::V6 });
        if ping_from(e1, own, dst, 2) {
            reached.push(dst);
        }
    }
    std::thread::sleep(LEAK_WATCH);
    let frames = ok(tap.stop(), "stopping the wire tap");
    assert!(reached.is_empty(), "{topology}e1 reached the host's {reached:?}");
    let leaked: Vec<&Frame> = frames
        .iter()
        .filter(|frame| frame.received)
        .filter(|frame| {
            let to_host = frame.ip_addrs().is_some_and(|(_, dst)| host_addrs.contains(&dst));
            let solicits_host = frame.solicited_target().is_some_and(|target| host_addrs.contains(&IpAddr::V6(target)));
            to_host || solicits_host
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "{topology}e1's traffic to the host's own addresses left the parent onto the wire ({} of {} frames seen on \
         switch port {SWITCH_PORT_HOST}):\n{}",
        leaked.len(),
        frames.len(),
        leaked.iter().map(|frame| format!("  {frame}")).collect::<Vec<_>>().join("\n")
    );
}

/// Unowned IPv6 sources in ::/8 that are not the unspecified address (::, which DAD and some ND messages carry and
/// which the spoof check exempts), but share its zero bytes at 0, 8, 10 and 12-15: `1::` (reserved) and
/// `64:ff9b::` (the NAT64 prefix). Neither belongs to e1, so nothing from them may get through.
const UNSPECIFIED_LOOKALIKES: [&str; 2] = ["1::", "64:ff9b::"];

/// The spoof check's exemption of unspecified sources covers exactly `::` and `::ffff:0.0.0.0` (an ARP probe's
/// sender), not every address that merely has a few zero bytes where those do.
#[test]
fn l2_spoofed_sources_resembling_unspecified_are_dropped() {
    let topology = build(IpvlanMode::L2, IpvlanFlag::Bridge);
    let e1 = topology.netns(Node::Endpoint(1));
    let outside = Node::Outside.addr(Family::V6);
    let own = topology.addr(Node::Endpoint(1), Family::V6);
    assert!(ping_from(e1, own, outside, 1), "{topology}e1 cannot ping {outside} from its own {own}");
    let sources: Vec<IpAddr> = UNSPECIFIED_LOOKALIKES.iter().map(|text| text.parse().expect("address")).collect();
    for source in &sources {
        add_address(e1, "eth0", &host_cidr(*source));
    }
    let before = spoofed_drops(&topology, Node::Endpoint(1));
    let tap = ok(WireTap::start(topology.switch(), SWITCH_PORT_HOST), "starting the wire tap");
    for &source in &sources {
        ping_from(e1, source, outside, SPOOF_PINGS);
    }
    let frames = ok(tap.stop(), "stopping the wire tap");
    let after = spoofed_drops(&topology, Node::Endpoint(1));
    let leaked: Vec<String> = frames
        .iter()
        .filter(|frame| frame.ip_addrs().is_some_and(|(src, _)| sources.contains(&src)))
        .map(|frame| format!("  {frame}"))
        .collect();
    let sent = SPOOF_PINGS as u64 * sources.len() as u64;
    assert!(
        leaked.is_empty() && after >= before + sent,
        "{topology}e1's echo requests from {sources:?}, addresses it does not own, were not dropped as spoofed: \
         \"spoofed\" drops {before} -> {after} for {sent} requests; on the wire:\n{}",
        leaked.join("\n")
    );
}
