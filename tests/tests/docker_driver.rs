//! `xlan serve` as Docker's network driver, against a real dockerd (Debian's docker.io), hermetic in namespaces of
//! the test's own (see `xlan_tests::docker`): a host namespace with dockerd, `xlan serve` and an uplink whose far
//! end is an outside node's `eth0` (192.168.8.200/24); the host's own address on the uplink is 192.168.8.254/24.
//!
//! - Docker's own macvlan and xlan-macvlan, same network and containers (`--ip`, `--ip-range`, `--mac-address`,
//!   `--aux-address`, IPv6): the same reachability between containers, to and from the outside, and none to the host's address —
//!   which `-o host_access=true` flips. Afterwards nothing of xlan's is left.
//! - Bad `-o` options: docker shows xlan's one line, nothing is left; Docker's own VLAN parent fails on this kernel.
//! - Internal networks (`--internal`, or no parent): the containers reach each other and nothing else (Docker's own
//!   need a dummy link, which this kernel lacks).
//! - ipvlan l2 and l3 (Docker's own ipvlan cannot run a container here); VXLAN across two Docker hosts.
//! - `xlan serve` killed with -9 and started again, dockerd restarted: a paced ping from the outside to a container
//!   runs throughout (its losses are printed), the containers keep reaching each other, new containers join.
//! - /metrics during a ping: the endpoint's counters move, and the text parses.
//!
//! Skipped (with a message) when docker.io is not installed, except under `cargo xtask test`, which installs it.

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xlan_tests::docker::{self, DockerHost};
use xlan_tests::{cmd, link, ok, unique_prefix, Netns};

const OUTSIDE: &str = "192.168.8.200";
const OUTSIDE_SUBNET: &str = "192.168.8.0/24";
const HOST: &str = "192.168.8.254";
const METRICS_PORT: u16 = 9419;

/// A Docker host on an uplink with an outside node. Drops the Docker host (containers, networks, daemons) before
/// the namespaces.
struct Lan {
    host: DockerHost,
    outside: Netns,
    hostns: Netns,
}

impl Lan {
    fn new() -> Result<Lan> {
        let prefix = unique_prefix();
        let hostns = Netns::create(&format!("{prefix}h"))?;
        let outside = Netns::create(&format!("{prefix}o"))?;
        link::add_veth(&hostns, "uplink", "eth0", &outside)?;
        link::up(&hostns, "uplink")?;
        link::add_address(&hostns, "uplink", &format!("{HOST}/24"))?;
        link::add_address(&outside, "eth0", &format!("{OUTSIDE}/24"))?;
        // A real wire carries whole checksums (see the README's Tests).
        link::tx_checksum_offload_off(&outside, "eth0")?;
        link::up(&outside, "eth0")?;
        let host = DockerHost::start(&hostns, METRICS_PORT)?;
        Ok(Lan { host, outside, hostns })
    }

    /// The LAN, or None (skipped, with a message) when Docker is not installed.
    fn start() -> Option<Lan> {
        docker::available().then(|| ok(Lan::new(), "setting up the Docker host"))
    }

    /// `docker network create -d <xlan's KIND> --subnet=SUBNET ARGS... NAME` (ARGS: `-o parent=uplink` and more).
    fn xlan_network(&self, kind: &str, name: &str, subnet: &str, args: &[&str]) {
        let driver = self.host.driver(kind);
        let subnet = format!("--subnet={subnet}");
        let create = [&["network", "create", "-d", &driver, &subnet], args, &[name]].concat();
        ok(self.host.docker(&create), format!("docker network create {name}"));
    }

    /// Containers c1 and c2 on `network` with the addresses PREFIX.11 and PREFIX.12.
    fn two_containers(&self, network: &str, prefix: &str) {
        for n in [1, 2] {
            let (net, ip) = (format!("--net={network}"), format!("--ip={prefix}.1{n}"));
            // NET_ADMIN: a test may give a container routes of its own.
            let args = [&net[..], &ip, "--cap-add=NET_ADMIN"];
            ok(self.host.run_container(&format!("c{n}"), &args), format!("container c{n}"));
        }
    }

    fn outside_pings(&self, address: &str) -> bool {
        cmd::succeeds(&mut self.outside.command("ping", &["-c", "2", "-W", "1", address]))
    }

    /// Nothing of xlan's in the host namespace: no network, no device but lo and the uplink, no pins, no state.
    fn assert_nothing_of_xlan(&self) {
        let list = ok(self.host.xlan.network_list(), "xlan network list");
        assert_eq!(list, serde_json::json!([]), "xlan still has networks");
        let mut links = ok(link::names(&self.hostns), "links");
        links.sort();
        assert_eq!(links, ["lo", "uplink"], "devices left in the host namespace");
        let pins = xlan_tests::xlan::bpffs_dir(self.hostns.name());
        assert!(!pins.exists(), "pins left at {}", pins.display());
        let state = std::path::Path::new("/run/xlan").join(self.hostns.name()).join("state.json");
        assert!(!state.exists(), "state left at {}", state.display());
    }
}

/// What a container reaches on the LAN, in one row to compare between drivers.
#[derive(Debug, PartialEq, Eq)]
struct Reach {
    c1_to_c2: bool,
    c2_to_c1: bool,
    c1_to_c2_v6: bool,
    c1_to_outside: bool,
    outside_to_c1: bool,
    c1_to_host: bool,
    /// Docker set the IPv6 gateway Join answered as c1's default route.
    c1_v6_gateway: bool,
}

/// Makes network `mcv` with `driver` and `options`, two containers (c1 from the range, c2 with its own address and
/// MAC), checks that Docker's addresses and MAC were honoured, probes, removes it all.
fn macvlan_scenario(lan: &Lan, driver: &str, options: &[&str]) -> Result<Reach> {
    let host = &lan.host;
    let network = [
        &[
            "network",
            "create",
            "-d",
            driver,
            "--subnet=192.168.8.0/24",
            "--gateway=192.168.8.1",
            "--ip-range=192.168.8.64/26",
            "--aux-address=router=192.168.8.64",
            "--ipv6",
            "--subnet=fd00:8::/64",
            "-o",
            "parent=uplink",
        ],
        options,
        &["mcv"],
    ]
    .concat();
    host.docker(&network)?;
    host.run_container("c1", &["--net=mcv"])?;
    host.run_container(
        "c2",
        &["--net=mcv", "--ip=192.168.8.10", "--ip6=fd00:8::10", "--mac-address=02:42:c0:a8:08:0a"],
    )?;
    let c1 = host.address("c1", "mcv")?;
    let last: u8 = c1.rsplit('.').next().and_then(|n| n.parse().ok()).context("c1's address")?;
    if !(65..128).contains(&last) {
        bail!("{driver}: c1 got {c1}, outside --ip-range 192.168.8.64/26 or the aux address 192.168.8.64");
    }
    let c2_link = host.exec("c2", &["ip", "addr", "show", "eth0"])?;
    for wanted in ["192.168.8.10/24", "fd00:8::10/64", "02:42:c0:a8:08:0a"] {
        if !c2_link.contains(wanted) {
            bail!("{driver}: c2's eth0 lacks {wanted}: {c2_link}");
        }
    }
    let reach = Reach {
        c1_to_c2: host.pings("c1", "192.168.8.10"),
        c2_to_c1: host.pings("c2", &c1),
        c1_to_c2_v6: host.pings("c1", "fd00:8::10"),
        c1_to_outside: host.pings("c1", OUTSIDE),
        outside_to_c1: lan.outside_pings(&c1),
        c1_to_host: host.pings("c1", HOST),
        c1_v6_gateway: host.exec("c1", &["ip", "-6", "route"])?.contains("default via fd00:8::1"),
    };
    host.docker(&["rm", "-f", "c1", "c2"])?;
    host.docker(&["network", "rm", "mcv"])?;
    Ok(reach)
}

#[test]
fn macvlan_behaves_as_dockers_own() {
    let Some(lan) = Lan::start() else { return };
    let kernel = ok(macvlan_scenario(&lan, "macvlan", &[]), "Docker's own macvlan");
    let expected = Reach {
        c1_to_c2: true,
        c2_to_c1: true,
        c1_to_c2_v6: true,
        c1_to_outside: true,
        outside_to_c1: true,
        c1_to_host: false,
        c1_v6_gateway: true,
    };
    assert_eq!(kernel, expected, "Docker's own macvlan is the reference");
    let xlan = ok(macvlan_scenario(&lan, &lan.host.driver("macvlan"), &[]), "xlan-macvlan");
    assert_eq!(xlan, kernel, "xlan-macvlan differs from Docker's macvlan");
    lan.assert_nothing_of_xlan();

    let with_host = ok(macvlan_scenario(&lan, &lan.host.driver("macvlan"), &["-o", "host_access=true"]), "host_access");
    assert_eq!(with_host, Reach { c1_to_host: true, ..expected }, "host_access=true must reach the host's address");
    lan.assert_nothing_of_xlan();
}

#[test]
fn bad_options_fail_with_one_line_and_leave_nothing() {
    let Some(lan) = Lan::start() else { return };
    let host = &lan.host;
    let (macvlan, ipvlan, vxlan) = (host.driver("macvlan"), host.driver("ipvlan"), host.driver("vxlan"));
    let cases: &[(&str, &[&str], &str)] = &[
        (&macvlan, &["-o", "parent=uplink", "-o", "macvlan_mode=bogus"], "-o macvlan_mode=bogus: unknown macvlan mode"),
        (&macvlan, &["-o", "parent=uplink", "-o", "colour=red"], "unknown option -o colour"),
        (&macvlan, &["-o", "parent=uplink", "-o", "vni=5"], "-o vni is an option of vxlan networks"),
        (&macvlan, &["-o", "parent=uplink", "-o", "macvlan_mode=vepa", "-o", "host_access=true"], "host_access"),
        (&macvlan, &["-o", "parent=nope"], "-o parent must name an existing interface"),
        (&ipvlan, &["-o", "parent=uplink", "-o", "ipvlan_mode=l4"], "-o ipvlan_mode=l4: unknown ipvlan mode"),
        (&ipvlan, &["-o", "parent=uplink", "-o", "ipvlan_flag=loud"], "-o ipvlan_flag=loud"),
        (&vxlan, &["-o", "parent=uplink", "-o", "vni=0"], "-o vni=0 is out of range"),
        (&vxlan, &["-o", "parent=uplink"], "needs -o vni"),
        (&vxlan, &["-o", "vni=7"], "a VXLAN network cannot be internal"),
        (&vxlan, &["-o", "parent=uplink", "-o", "vni=7", "-o", "remote=10.0.0.1,x"], "-o remote=10.0.0.1,x"),
        (&vxlan, &["-o", "parent=uplink", "-o", "vni=7", "-o", "group=10.0.0.1"], "-o group=10.0.0.1 is not"),
    ];
    for (driver, options, expected) in cases {
        let args = [&["network", "create", "-d", driver, "--subnet=10.66.0.0/24"], *options, &["bad"]].concat();
        let out = ok(host.dockerd.docker_output(&args), "docker network create");
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert!(!out.status.success(), "{options:?} was accepted");
        assert!(stderr.contains(expected), "{options:?}: docker said {stderr:?}, expected {expected:?}");
        assert_eq!(stderr.lines().count(), 1, "{options:?}: not one line: {stderr}");
        let networks = ok(host.docker(&["network", "ls", "--format", "{{.Name}}"]), "docker network ls");
        assert!(!networks.split_whitespace().any(|n| n == "bad"), "{options:?}: docker kept the network");
        lan.assert_nothing_of_xlan();
    }
    // What xlan does in BPF, the kernel cannot do here: Docker's own macvlan on a VLAN parent fails (no 8021q).
    let out = ok(
        host.dockerd.docker_output(&["network", "create", "-d", "macvlan", "-o", "parent=uplink.10", "vlan10"]),
        "docker network create -d macvlan -o parent=uplink.10",
    );
    assert!(!out.status.success(), "Docker's own macvlan made a VLAN parent on a kernel without 8021q");
    eprintln!("Docker's own macvlan on uplink.10: {}", String::from_utf8_lossy(&out.stderr).trim());
}

#[test]
fn internal_networks_have_no_way_out() {
    let Some(lan) = Lan::start() else { return };
    let host = &lan.host;
    // Docker's own drivers hang an internal network off a dummy link, which this kernel lacks.
    let out = ok(
        host.dockerd.docker_output(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "--internal",
            "--subnet=10.88.0.0/24",
            "kint",
        ]),
        "Docker's own internal macvlan",
    );
    eprintln!("Docker's own --internal macvlan: {}", String::from_utf8_lossy(&out.stderr).trim());
    let _ = host.docker(&["network", "rm", "kint"]);
    for (driver, options) in [("macvlan", &["--internal"][..]), ("ipvlan", &[][..])] {
        lan.xlan_network(driver, "int", "10.88.0.0/24", options);
        lan.two_containers("int", "10.88.0");
        assert!(host.pings("c1", "10.88.0.12"), "{driver}: c1 → c2 on the internal network");
        let routes = ok(host.exec("c1", &["ip", "route"]), "c1's routes");
        assert!(!routes.contains("default"), "{driver}: an internal network has no gateway: {routes}");
        // With a route to the outside's subnet on its link, only the datapath can keep c1 from reaching it.
        ok(host.exec("c1", &["ip", "route", "add", OUTSIDE_SUBNET, "dev", "eth0"]), "c1's on-link route");
        assert!(!host.pings("c1", OUTSIDE), "{driver}: nothing leaves an internal network");
        ok(host.docker(&["rm", "-f", "c1", "c2"]), "rm");
        ok(host.docker(&["network", "rm", "int"]), "network rm");
        lan.assert_nothing_of_xlan();
    }
}

#[test]
fn ipvlan_l2_and_l3() {
    let Some(lan) = Lan::start() else { return };
    let host = &lan.host;

    // l2 (the default): the containers and the outside on one subnet, every container with the parent's MAC.
    lan.xlan_network("ipvlan", "ipv", "192.168.8.0/24", &["-o", "parent=uplink"]);
    lan.two_containers("ipv", "192.168.8");
    let parent_mac = ok(lan.hostns.exec("cat", &["/sys/class/net/uplink/address"]), "uplink's MAC");
    let c1_link = ok(host.exec("c1", &["ip", "link", "show", "eth0"]), "c1's eth0");
    assert!(c1_link.contains(parent_mac.trim()), "ipvlan endpoints have the parent's MAC: {c1_link}");
    assert!(host.pings("c1", "192.168.8.12"), "l2: c1 → c2");
    assert!(host.pings("c1", OUTSIDE), "l2: c1 → outside");
    assert!(lan.outside_pings("192.168.8.12"), "l2: outside → c2");
    ok(host.docker(&["rm", "-f", "c1", "c2"]), "rm");
    ok(host.docker(&["network", "rm", "ipv"]), "network rm");

    // l3: the parent routes; the outside reaches the containers' subnet through the host's address.
    lan.xlan_network("ipvlan", "ipv3", "10.77.1.0/24", &["-o", "parent=uplink", "-o", "ipvlan_mode=l3"]);
    lan.two_containers("ipv3", "10.77.1");
    let routes = ok(host.exec("c1", &["ip", "route"]), "c1's routes");
    assert!(routes.contains("default dev eth0"), "l3: Docker put the connected default route: {routes}");
    ok(lan.outside.ip(&["route", "add", "10.77.1.0/24", "via", HOST]), "outside's route");
    assert!(host.pings("c1", "10.77.1.12"), "l3: c1 → c2");
    assert!(lan.outside_pings("10.77.1.11"), "l3: outside → c1 (routed by the host)");
    ok(host.docker(&["rm", "-f", "c1", "c2"]), "rm");
    ok(host.docker(&["network", "rm", "ipv3"]), "network rm");
    lan.assert_nothing_of_xlan();

    // Docker's own ipvlan needs the kernel's, which this kernel lacks: no container can join it.
    ok(
        host.docker(&["network", "create", "-d", "ipvlan", "--subnet=192.168.9.0/24", "-o", "parent=uplink", "kipv"]),
        "kernel ipvlan",
    );
    let out = ok(
        host.dockerd.docker_output(&["run", "-d", "--name", "k1", "--net=kipv", docker::IMAGE, "sleep", "60"]),
        "docker run on Docker's ipvlan",
    );
    // If this kernel ever gains ipvlan, compare the two drivers here instead, as the macvlan test does.
    assert!(!out.status.success(), "Docker's own ipvlan ran a container: this kernel has ipvlan after all");
    let said = String::from_utf8_lossy(&out.stderr);
    eprintln!("Docker's own ipvlan: docker run failed ({}): {}", out.status, said.lines().last().unwrap_or_default());
}

/// Two Docker hosts whose `ul` links are ports of one switch that knows nothing of VLANs (a Linux bridge, which
/// carries tagged frames as they are), with `addresses` for an underlay. Fields drop in order: the Docker hosts before
/// their namespaces.
struct TwoHosts {
    a: DockerHost,
    b: DockerHost,
    _namespaces: [Netns; 3],
}

impl TwoHosts {
    fn new(addresses: Option<[&str; 2]>) -> Result<TwoHosts> {
        let prefix = unique_prefix();
        let switch = Netns::create(&format!("{prefix}s"))?;
        let (a_ns, b_ns) = (Netns::create(&format!("{prefix}a"))?, Netns::create(&format!("{prefix}b"))?);
        link::add_bridge(&switch, "br0", link::Snooping::Off)?;
        for (n, (ns, port)) in [(&a_ns, "pa"), (&b_ns, "pb")].into_iter().enumerate() {
            link::add_bridge_port(&switch, "br0", port, "ul", ns)?;
            if let Some(addresses) = addresses {
                link::add_address(ns, "ul", addresses[n])?;
            }
            link::tx_checksum_offload_off(ns, "ul")?;
            link::up(ns, "ul")?;
        }
        link::up(&switch, "br0")?;
        let (a, b) = (DockerHost::start(&a_ns, METRICS_PORT)?, DockerHost::start(&b_ns, METRICS_PORT)?);
        Ok(TwoHosts { a, b, _namespaces: [a_ns, b_ns, switch] })
    }
}

#[test]
fn vxlan_across_two_docker_hosts() {
    if !docker::available() {
        return;
    }
    let hosts = ok(TwoHosts::new(Some(["10.99.0.1/24", "10.99.0.2/24"])), "two Docker hosts");
    let (a, b) = (&hosts.a, &hosts.b);
    // One subnet, a range per host: Docker's IPAM on each host allocates from its own half.
    for (host, range, remote) in [(a, "10.50.0.0/25", "10.99.0.2"), (b, "10.50.0.128/25", "10.99.0.1")] {
        let remote = format!("remote={remote}");
        let range = format!("--ip-range={range}");
        let driver = host.driver("vxlan");
        let args = [
            "network",
            "create",
            "-d",
            &driver,
            "--subnet=10.50.0.0/24",
            &range,
            "-o",
            "parent=ul",
            "-o",
            "vni=42",
            "-o",
            &remote,
            "vx",
        ];
        ok(host.docker(&args), "vxlan network");
    }
    ok(a.run_container("a1", &["--net=vx"]), "a1");
    ok(b.run_container("b1", &["--net=vx"]), "b1");
    let b1 = ok(b.address("b1", "vx"), "b1's address");
    let a1 = ok(a.address("a1", "vx"), "a1's address");
    let b1_last: u8 = b1.rsplit('.').next().and_then(|n| n.parse().ok()).expect("b1's address is IPv4");
    assert!(b1.starts_with("10.50.0.") && b1_last >= 128, "b1 from B's range: {b1}");
    let mtu = ok(a.exec("a1", &["cat", "/sys/class/net/eth0/mtu"]), "a1's MTU");
    assert_eq!(mtu.trim(), "1450", "VXLAN endpoints leave room for the outer headers");
    assert!(a.pings("a1", &b1), "a1 on A → b1 on B over VXLAN");
    assert!(b.pings("b1", &a1), "b1 on B → a1 on A over VXLAN");
}

/// A paced ping from the outside node, stopped with SIGINT: (sent, received).
struct PacedPing(Child);

impl PacedPing {
    fn start(from: &Netns, address: &str) -> Result<PacedPing> {
        let child = from
            .command("ping", &["-i", "0.05", "-W", "1", address])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(PacedPing(child))
    }

    fn stop(mut self) -> Result<(u64, u64)> {
        // SAFETY: kill(2) of our own child (ip netns exec execs ping), not yet waited for.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
        let child = std::mem::replace(&mut self.0, std::process::Command::new("true").spawn()?);
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line =
            text.lines().find(|l| l.contains("packets transmitted")).with_context(|| format!("ping said: {text}"))?;
        let numbers: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
        match numbers.as_slice() {
            [sent, received, ..] => Ok((*sent, *received)),
            _ => bail!("cannot read {line:?}"),
        }
    }
}

impl Drop for PacedPing {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn restarts_keep_traffic_and_new_containers_join() {
    let Some(mut lan) = Lan::start() else { return };
    lan.xlan_network("macvlan", "mcv", "192.168.8.0/24", &["-o", "parent=uplink"]);
    lan.two_containers("mcv", "192.168.8");
    assert!(lan.outside_pings("192.168.8.11"), "before the restarts");
    let ping = ok(PacedPing::start(&lan.outside, "192.168.8.11"), "paced ping");

    // xlan serve crashes: the datapath keeps forwarding; the next one removes the stale sockets and serves again.
    ok(lan.host.serve.kill9(), "kill -9 xlan serve");
    assert!(lan.host.serve.sockets_exist(), "kill -9 leaves the sockets");
    assert!(lan.host.pings("c1", "192.168.8.12"), "c1 → c2 with xlan serve dead");
    ok(lan.host.serve.start_again(), "xlan serve again");
    ok(lan.host.run_container("c3", &["--net=mcv", "--ip=192.168.8.13"]), "c3 after xlan serve's restart");
    assert!(lan.host.pings("c3", "192.168.8.11"), "c3 → c1");

    // dockerd restarts (--live-restore): the containers run on, new ones join the network Docker never re-created.
    ok(lan.host.dockerd.restart(), "restarting dockerd");
    assert!(lan.host.pings("c1", "192.168.8.12"), "c1 → c2 after dockerd's restart");
    ok(lan.host.run_container("c4", &["--net=mcv", "--ip=192.168.8.14"]), "c4 after dockerd's restart");
    assert!(lan.host.pings("c4", "192.168.8.13"), "c4 → c3");

    // SIGTERM: serving stops, the sockets go, forwarding goes on.
    ok(lan.host.serve.stop(), "SIGTERM to xlan serve");
    assert!(!lan.host.serve.sockets_exist(), "SIGTERM removes the sockets");
    assert!(lan.host.pings("c4", "192.168.8.11"), "c4 → c1 with xlan serve stopped");
    ok(lan.host.serve.start_again(), "xlan serve again");

    let (sent, received) = ok(ping.stop(), "paced ping");
    eprintln!(
        "paced ping outside → c1 through both restarts: {sent} sent, {received} received, {} lost",
        sent - received
    );
    assert!(sent > 20, "the ping ran: {sent} sent");
    assert!(received * 100 >= sent * 98, "traffic went on through the restarts: {received}/{sent}");
    let doctor = ok(lan.host.xlan.run(&["doctor"]), "xlan doctor");
    assert!(doctor.starts_with("ok"), "{doctor}");
    ok(lan.host.docker(&["rm", "-f", "c1", "c2", "c3", "c4"]), "rm");
    ok(lan.host.docker(&["network", "rm", "mcv"]), "network rm");
    lan.assert_nothing_of_xlan();
}

/// Samples of the text exposition format: name{labels} value, every line checked.
/// One sample: metric name, labels, value.
type Sample = (String, HashMap<String, String>, f64);

fn parse_metrics(text: &str) -> Result<Vec<Sample>> {
    if text.lines().last() != Some("# EOF") {
        bail!("no # EOF at the end");
    }
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("# UNIT ") || line == "# EOF"
        {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').with_context(|| format!("no value: {line}"))?;
        let value: f64 = value.parse().with_context(|| format!("bad value: {line}"))?;
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').with_context(|| format!("unclosed labels: {line}"))?),
            None => (series, ""),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            bail!("bad metric name: {line}");
        }
        let mut map = HashMap::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once("=\"").with_context(|| format!("bad label: {line}"))?;
            map.insert(key.to_string(), value.trim_end_matches('"').to_string());
        }
        samples.push((name.to_string(), map, value));
    }
    Ok(samples)
}

#[test]
fn metrics_follow_the_traffic() {
    let Some(lan) = Lan::start() else { return };
    let host = &lan.host;
    lan.xlan_network("macvlan", "mcv", "192.168.8.0/24", &["-o", "parent=uplink"]);
    lan.two_containers("mcv", "192.168.8");
    let endpoint = ok(
        host.docker(&["inspect", "-f", "{{(index .NetworkSettings.Networks \"mcv\").EndpointID}}", "c1"]),
        "c1's endpoint id",
    );
    let endpoint = endpoint.trim();
    let counter = |samples: &[Sample], name: &str| {
        samples
            .iter()
            .find(|(n, labels, _)| n == name && labels.get("endpoint").map(String::as_str) == Some(endpoint))
            .map(|(_, labels, value)| {
                assert_eq!(labels.get("driver").map(String::as_str), Some("macvlan"));
                assert!(labels.get("network").is_some_and(|n| n.starts_with("dk")));
                *value
            })
    };
    let before = ok(parse_metrics(&ok(host.serve.scrape(&lan.hostns), "scrape")), "parsing /metrics");
    let tx_before = counter(&before, "xlan_endpoint_tx_packets_total").expect("c1's tx counter");
    let rx_before = counter(&before, "xlan_endpoint_rx_packets_total").expect("c1's rx counter");
    assert!(before.iter().any(|(n, _, v)| n == "xlan_datapath_loaded" && *v == 1.0), "datapath loaded");
    let pinging = std::thread::spawn({
        let command = host.dockerd.command(&["exec", "c1", "ping", "-c", "10", "-i", "0.2", "192.168.8.12"]);
        move || {
            let mut command = command;
            cmd::run(&mut command)
        }
    });
    std::thread::sleep(Duration::from_millis(1000));
    let during = ok(parse_metrics(&ok(host.serve.scrape(&lan.hostns), "scrape")), "parsing /metrics");
    ok(pinging.join().expect("ping thread"), "ping c1 → c2");
    let after = ok(parse_metrics(&ok(host.serve.scrape(&lan.hostns), "scrape")), "parsing /metrics");
    let tx_during = counter(&during, "xlan_endpoint_tx_packets_total").expect("tx during");
    let tx_after = counter(&after, "xlan_endpoint_tx_packets_total").expect("tx after");
    let rx_after = counter(&after, "xlan_endpoint_rx_packets_total").expect("rx after");
    assert!(tx_during > tx_before, "tx moves during the ping: {tx_before} → {tx_during}");
    assert!(tx_after >= tx_before + 10.0, "10 echo requests sent: {tx_before} → {tx_after}");
    assert!(rx_after >= rx_before + 10.0, "10 echo replies received: {rx_before} → {rx_after}");
    let fdb = after.iter().find(|(n, _, _)| n == "xlan_network_fdb_entries").map(|(_, _, v)| *v);
    assert_eq!(fdb, Some(2.0), "two endpoints' MACs in the FDB");
    assert!(
        after.iter().any(|(n, l, _)| n == "xlan_endpoint_drops_total" && l.contains_key("reason")),
        "drops by reason"
    );
}

#[test]
fn concurrent_containers_all_join() {
    let Some(lan) = Lan::start() else { return };
    let host = &lan.host;
    lan.xlan_network("macvlan", "mcv", "192.168.8.0/24", &["-o", "parent=uplink"]);
    // dockerd asks the driver concurrently; the daemon serialises the requests (one state lock, one thread).
    let runs: Vec<_> = (0..6)
        .map(|n| {
            let mut command = host.dockerd.command(&[
                "run",
                "-d",
                "--name",
                &format!("p{n}"),
                "--net=mcv",
                docker::IMAGE,
                "sleep",
                "3600",
            ]);
            std::thread::spawn(move || cmd::run(&mut command))
        })
        .collect();
    for run in runs {
        ok(run.join().expect("docker run thread"), "docker run");
    }
    let addresses: Vec<String> = (0..6).map(|n| ok(host.address(&format!("p{n}"), "mcv"), "address")).collect();
    let mut distinct = addresses.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "distinct addresses: {addresses:?}");
    for (n, address) in addresses.iter().enumerate().skip(1) {
        assert!(host.pings("p0", address), "p0 → p{n} ({address})");
    }
    let doctor = ok(host.xlan.run(&["doctor"]), "xlan doctor");
    assert!(doctor.starts_with("ok"), "{doctor}");
}

/// A reboot, as state_recovery simulates one (/run, bpffs and the host's devices gone; /var/lib kept), with Docker's
/// networks kept by Docker: `xlan serve --internal-parents` and `xlan restore` (what xlan-restore.service runs)
/// make both networks again — the internal one on a new parent — and leave the containers' endpoints to Docker,
/// which makes new ones: new containers reach each other on both.
#[test]
fn docker_networks_come_back_after_a_reboot() {
    let Some(mut lan) = Lan::start() else { return };
    lan.xlan_network("macvlan", "int", "10.88.0.0/24", &[]);
    lan.xlan_network("macvlan", "mcv", "192.168.8.0/24", &["-o", "parent=uplink"]);
    ok(lan.host.run_container("c1", &["--net=int", "--ip=10.88.0.11"]), "c1");
    ok(lan.host.run_container("c2", &["--net=mcv", "--ip=192.168.8.12"]), "c2");
    // The internal network's parent is named after the network, as `xlan network list` shows it.
    let networks = ok(lan.host.xlan.network_list(), "network list");
    let internal_parent = networks
        .as_array()
        .and_then(|list| list.iter().find(|n| n["parent"] == n["name"]))
        .and_then(|n| n["parent"].as_str())
        .expect("the internal network on its own parent")
        .to_string();

    // The reboot, as far as xlan can tell: its daemon, /run, bpffs and the host's devices are gone (the containers'
    // interfaces with their host-side ends); Docker, which learns nothing of it, keeps its networks.
    ok(lan.host.serve.kill9(), "kill -9 xlan serve");
    std::fs::remove_dir_all(xlan_tests::xlan::bpffs_dir(lan.hostns.name())).expect("pins");
    std::fs::remove_dir_all(std::path::Path::new("/run/xlan").join(lan.hostns.name())).expect("state");
    ok(link::delete(&lan.hostns, &internal_parent), "the internal parent");
    for port in ["xl1p0", "xl2p0"] {
        ok(link::delete(&lan.hostns, port), "an endpoint's host-side veth");
    }

    ok(lan.host.xlan.run(&["serve", "--internal-parents"]), "xlan serve --internal-parents");
    let report: serde_json::Value =
        serde_json::from_str(&ok(lan.host.xlan.run(&["restore", "--json"]), "xlan restore")).expect("json");
    assert_eq!(report["networks"].as_array().map(Vec::len), Some(2), "{report}");
    assert_eq!(report["endpoints"], serde_json::json!([]), "Docker's endpoints are Docker's to make: {report}");
    assert_eq!(report["skipped"].as_array().map(Vec::len), Some(2), "{report}");
    ok(lan.host.serve.start_again(), "xlan serve after the reboot");
    // Docker's containers of before the reboot go (Leave and DeleteEndpoint of endpoints xlan no longer has are no
    // errors); new ones join.
    ok(lan.host.docker(&["rm", "-f", "c1", "c2"]), "removing the containers of before the reboot");
    lan.two_containers("int", "10.88.0");
    assert!(lan.host.pings("c1", "10.88.0.12"), "internal network after the reboot");
    ok(lan.host.docker(&["rm", "-f", "c1", "c2"]), "rm");
    lan.two_containers("mcv", "192.168.8");
    assert!(lan.host.pings("c1", "192.168.8.12"), "macvlan network after the reboot");
    assert!(lan.host.pings("c1", OUTSIDE), "and out of the uplink");
}

/// Docker's macvlan tutorial on VLANs, across two Docker hosts joined by a switch that knows nothing of VLANs:
/// `-o parent=ul.10` and `-o parent=ul.20` (no such links: VLANs 10 and 20 of `ul`, tagged in BPF — Docker's own
/// macvlan fails on this kernel, see `bad_options_fail_with_one_line_and_leave_nothing`), 172.16.10.0/24 and
/// 172.16.20.0/24, a `--ip-range` per host. Containers reach their VLAN's container on the other host; told that the
/// other VLAN's subnet is on their link too (`ip route add … dev eth0`, as a misconfigured or hostile container
/// would), they still never reach it: its ARP never crosses the VLANs.
#[test]
fn vlan_parents_across_two_docker_hosts() {
    if !docker::available() {
        return;
    }
    let hosts = ok(TwoHosts::new(None), "two Docker hosts");
    let (a, b) = (&hosts.a, &hosts.b);
    for (host, half) in [(a, 0), (b, 128)] {
        let driver = host.driver("macvlan");
        for vlan in [10, 20] {
            let subnet = format!("--subnet=172.16.{vlan}.0/24");
            let gateway = format!("--gateway=172.16.{vlan}.1");
            let range = format!("--ip-range=172.16.{vlan}.{}/25", half);
            let (parent, name) = (format!("parent=ul.{vlan}"), format!("mac_net{vlan}"));
            let args = ["network", "create", "-d", &driver, &subnet, &gateway, &range, "-o", &parent, &name];
            ok(host.docker(&args), format!("docker network create {name}"));
        }
    }
    for (host, letter) in [(a, "a"), (b, "b")] {
        for vlan in [10, 20] {
            let net = format!("--net=mac_net{vlan}");
            ok(host.run_container(&format!("{letter}{vlan}"), &[&net, "--cap-add=NET_ADMIN"]), "container");
        }
    }
    let address =
        |host: &DockerHost, name: &str, vlan: u16| ok(host.address(name, &format!("mac_net{vlan}")), "address");
    let (a10, a20, b10, b20) =
        (address(a, "a10", 10), address(a, "a20", 20), address(b, "b10", 10), address(b, "b20", 20));
    assert!(a.pings("a10", &b10), "VLAN 10: a10 → b10 ({b10}) across the hosts");
    assert!(b.pings("b10", &a10), "VLAN 10: b10 → a10 ({a10})");
    assert!(b.pings("b20", &a20), "VLAN 20: b20 → a20 ({a20}) across the hosts");
    // VLAN 10's containers think VLAN 20's subnet is on their link: only a leak between the VLANs would answer.
    for (host, name) in [(a, "a10"), (b, "b10")] {
        ok(host.exec(name, &["ip", "route", "add", "172.16.20.0/24", "dev", "eth0"]), "on-link route");
    }
    assert!(!a.pings("a10", &b20), "VLAN 10's a10 reached VLAN 20's b20 ({b20})");
    assert!(!a.pings("a10", &a20), "VLAN 10's a10 reached VLAN 20's a20 on its own host ({a20})");
    assert!(!b.pings("b10", &a20), "VLAN 10's b10 reached VLAN 20's a20 ({a20})");
}
