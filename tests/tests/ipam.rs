//! IPAM in the words of `docker network create` (issue #10, part 2), through the real `xlan` binary in namespaces of
//! the test's own: allocation from the range around the reserved addresses, explicit addresses reserved, addresses
//! released on delete, the gateway as the endpoints' default route (reached for real: the gateway is an outside node),
//! the subnet exhausted and an address taken refused with one line and nothing left behind, 20 concurrent adds that
//! never share an address, and endpoints that announce themselves when they come up.

use std::net::IpAddr;
use std::process::Stdio;

use anyhow::Result;
use serde_json::Value;
use xlan_tests::{link, unique_prefix, xlan, Netns, XlanHost};

/// A host whose `uplink` leads to an outside node holding the gateways (172.16.10.1, fd10::1), a macvlan network
/// `mac_net10` with Docker-style IPAM on it, and `count` endpoint namespaces.
struct Lab {
    xlan: XlanHost,
    endpoints: Vec<Netns>,
    outside: Netns,
    _host: Netns,
}

impl Lab {
    fn build(count: u8, ipam: &[&str]) -> Result<Lab> {
        xlan::binary()?;
        let prefix = unique_prefix();
        let (host, outside) = Netns::host_and_outside(&prefix)?;
        let endpoints = Netns::create_numbered(&prefix, "e", count)?;
        link::configure(&outside, "wire", None, &["172.16.10.1/24".to_string(), "fd10::1/64".to_string()])?;
        link::tx_checksum_offload_off(&outside, "wire")?;
        link::up(&host, "uplink")?;
        let mut xlan = XlanHost::new(&host)?;
        xlan.create_network("mac_net10", &[&["--driver", "macvlan", "--parent", "uplink"][..], ipam].concat())?;
        Ok(Lab { xlan, endpoints, outside, _host: host })
    }

    fn add(&self, n: usize, extra: &[&str]) -> std::process::Output {
        let args = [&["endpoint", "add", "mac_net10", "--netns", self.endpoints[n].name()][..], extra].concat();
        self.xlan.command(&args).expect("binary").stdin(Stdio::null()).output().expect("run xlan")
    }

    fn show(&self) -> Value {
        serde_json::from_str(&self.xlan.run(&["network", "show", "mac_net10", "--json"]).expect("show")).expect("json")
    }

    /// The addresses the state gives the endpoint in namespace `n`.
    fn addresses_of(&self, n: usize) -> Vec<String> {
        let show = self.show();
        let endpoint =
            show["endpoints"].as_array().expect("endpoints").iter().find(|e| e["netns"] == self.endpoints[n].name());
        endpoint.map_or_else(Vec::new, |e| {
            e["addresses"]
                .as_array()
                .expect("addresses")
                .iter()
                .map(|a| a.as_str().unwrap_or("?").to_string())
                .collect()
        })
    }
}

const DOCKER_TUTORIAL: &[&str] = &[
    "--subnet",
    "172.16.10.0/24",
    "--gateway",
    "172.16.10.1",
    "--subnet",
    "fd10::/64",
    "--gateway",
    "fd10::1",
    "--ip-range",
    "172.16.10.128/25",
    "--aux-address",
    "router=172.16.10.129",
];

#[test]
fn addresses_are_allocated_reserved_released_and_routed_through_the_gateway() {
    let lab = Lab::build(2, DOCKER_TUTORIAL).expect("lab");
    assert!(lab.add(0, &[]).status.success());
    // From the range; .128 is the range's first, .129 an aux address; IPv6 from the subnet, past the gateway.
    assert_eq!(lab.addresses_of(0), ["172.16.10.128/24", "fd10::2/64"]);
    let routes = lab.endpoints[0].ip(&["-j", "route", "show", "default"]).expect("routes");
    assert!(routes.contains("172.16.10.1"), "IPv4 default route via the gateway: {routes}");
    let routes6 = lab.endpoints[0].ip(&["-j", "-6", "route", "show", "default"]).expect("routes");
    assert!(routes6.contains("fd10::1"), "IPv6 default route via the gateway: {routes6}");
    assert!(lab.endpoints[0].exec("ping", &["-c", "1", "-W", "1", "172.16.10.1"]).is_ok(), "the gateway answers");

    let show = lab.xlan.run(&["network", "show", "mac_net10"]).expect("show");
    assert!(
        show.contains(
            "subnet 172.16.10.0/24 gateway 172.16.10.1 ip-range 172.16.10.128/25 aux-address router=172.16.10.129"
        ),
        "{show}"
    );

    // Taken, reserved, outside: one line each, nothing changed.
    let before = (lab.show(), link::names(&lab.endpoints[1]).expect("links"));
    for taken in ["172.16.10.128/24", "172.16.10.129/24", "172.16.10.1/24", "10.9.9.9/24"] {
        let output = lab.add(1, &["--ip", taken]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!((output.status.code(), stderr.lines().count()), (Some(1), 1), "--ip {taken}: {stderr}");
        assert_eq!((lab.show(), link::names(&lab.endpoints[1]).expect("links")), before, "--ip {taken} left something");
    }
    // An explicit address in the subnet is reserved for the endpoint (with the subnet's prefix).
    assert!(lab.add(1, &["--ip", "172.16.10.200/32"]).status.success());
    assert_eq!(lab.addresses_of(1), ["172.16.10.200/24", "fd10::3/64"]);

    // Released on delete, handed out again.
    lab.xlan.run(&["endpoint", "del", "mac_net10", "--netns", lab.endpoints[0].name()]).expect("del");
    assert!(lab.add(0, &[]).status.success());
    assert_eq!(lab.addresses_of(0), ["172.16.10.128/24", "fd10::2/64"]);
}

#[test]
fn an_exhausted_subnet_is_refused_with_nothing_left_behind() {
    let lab = Lab::build(3, &["--subnet", "172.16.10.0/30"]).expect("lab");
    // A /30 has two hosts, .1 and .2; .1 is the outside node's but not declared a gateway, so xlan hands it out.
    assert!(lab.add(0, &[]).status.success());
    assert!(lab.add(1, &[]).status.success());
    let before = (lab.show(), link::names(&lab.endpoints[2]).expect("links"));
    let output = lab.add(2, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exhausted") && stderr.lines().count() == 1, "{stderr}");
    assert_eq!((lab.show(), link::names(&lab.endpoints[2]).expect("links")), before);
}

/// Allocations live in the state under its lock: twenty `endpoint add`s at once never share an address.
#[test]
fn twenty_concurrent_adds_never_share_an_address() {
    let lab = Lab::build(20, &["--subnet", "172.16.10.0/24", "--gateway", "172.16.10.1"]).expect("lab");
    let children: Vec<_> = (0..20)
        .map(|n| {
            let args = ["endpoint", "add", "mac_net10", "--netns", lab.endpoints[n].name()];
            let mut command = lab.xlan.command(&args).expect("binary");
            command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn")
        })
        .collect();
    for (n, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().expect("wait");
        assert!(output.status.success(), "add {n}: {}", String::from_utf8_lossy(&output.stderr));
    }
    let mut addresses: Vec<IpAddr> = (0..20)
        .map(|n| {
            let given = lab.addresses_of(n);
            assert_eq!(given.len(), 1, "endpoint {n}: {given:?}");
            given[0].split('/').next().and_then(|ip| ip.parse().ok()).expect("an address")
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 20, "twenty distinct addresses: {addresses:?}");
    // And each is really the endpoint's: the outside node reaches every one.
    for ip in addresses {
        assert!(lab.outside.exec("ping", &["-c", "1", "-W", "1", &ip.to_string()]).is_ok(), "{ip}");
    }
}

/// An endpoint re-created with the same address and a new MAC is reached at once by a node that talked to the old
/// one: it announces itself (gratuitous ARP) when it comes up, so no neighbour entry has to expire or be flushed.
#[test]
fn a_recreated_endpoint_announces_its_new_mac() {
    let lab = Lab::build(1, &["--subnet", "172.16.10.0/24"]).expect("lab");
    let ping = || lab.outside.exec("ping", &["-c", "1", "-W", "1", "172.16.10.50"]).is_ok();
    assert!(lab.add(0, &["--ip", "172.16.10.50/24", "--mac", "02:10:00:00:00:01"]).status.success());
    assert!(ping(), "reached before");
    let neighbour = |lab: &Lab| lab.outside.ip(&["neigh", "show", "172.16.10.50"]).expect("neigh");
    assert!(neighbour(&lab).contains("02:10:00:00:00:01"), "{}", neighbour(&lab));
    lab.xlan.run(&["endpoint", "del", "mac_net10", "--netns", lab.endpoints[0].name()]).expect("del");
    assert!(lab.add(0, &["--ip", "172.16.10.50/24", "--mac", "02:10:00:00:00:02"]).status.success());
    // The announcement has updated the outside node's entry: no flush, no waiting for it to go stale.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while !neighbour(&lab).contains("02:10:00:00:00:02") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(neighbour(&lab).contains("02:10:00:00:00:02"), "the outside node learned the new MAC: {}", neighbour(&lab));
    assert!(ping(), "reached after, within a second");
}
