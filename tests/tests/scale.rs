//! A network of thousands of endpoints (issue #9, "a real limit"), through the real `xlan` binary in namespaces of
//! the test's own: endpoints are many interfaces (`--ifname`) in a few namespaces, one broadcast from outside the
//! host reaches every one of them (each endpoint's rx counter in `xlan stats --json` goes up by exactly one, and
//! sniffers on a sample see the frame), and `endpoint add` past the limit is refused with one line.
//!
//! The full size (4096 = `MAX_FLOOD_PORTS`, 64 namespaces × 64 interfaces) takes one `endpoint add` per endpoint,
//! each slower as the network grows (its flood list and the state are rewritten): 9 minutes on a busy 2-core machine
//! (21 when each add verified a program of its own), so it is `#[ignore]`d
//! (`cargo test --release -p xlan-tests --test scale -- --ignored`); the always-run variant has 256 endpoints.

use anyhow::{ensure, Context, Result};
use xlan_tests::{cmd, link, ok, sniff::Sniffer, unique_prefix, xlan, Netns, XlanHost};

/// The most endpoints a network holds (`datapath_common::MAX_FLOOD_PORTS`, which the tests do not link).
const MAX_ENDPOINTS_PER_NETWORK: usize = 4096;
/// Interfaces per endpoint namespace.
const PER_NAMESPACE: usize = 64;
/// The outside node's address; the broadcast goes to its subnet's broadcast address.
const OUTSIDE_IP: &str = "10.67.0.1/16";
const SUBNET_BROADCAST: &str = "10.67.255.255";

struct Lab {
    // Dropped first: deletes the network (and its endpoints) while the namespaces still exist.
    xlan: XlanHost,
    endpoint_namespaces: Vec<Netns>,
    outside: Netns,
    _host: Netns,
}

impl Lab {
    /// A host with macvlan bridge network `lan` on `uplink`, whose peer `wire` is in `outside`, and `endpoints`
    /// endpoints `if0`..`if63` in namespaces `e1`, `e2`, ... (IPv6 off, so that nothing but the test's broadcast
    /// is flooded once they are up).
    fn build(endpoints: usize) -> Result<Lab> {
        xlan::binary()?;
        let prefix = unique_prefix();
        let (host, outside) = Netns::host_and_outside(&prefix)?;
        let namespaces = endpoints.div_ceil(PER_NAMESPACE);
        let endpoint_namespaces = Netns::create_numbered(&prefix, "e", u8::try_from(namespaces)?)?;
        for netns in endpoint_namespaces.iter().chain([&outside]) {
            netns.disable_ipv6()?;
        }
        link::configure(&outside, "wire", None, &[OUTSIDE_IP.to_string()])?;
        link::up(&host, "uplink")?;
        let mut xlan = XlanHost::new(&host)?;
        xlan.create_network("lan", &["--driver", "macvlan", "--parent", "uplink"])?;
        let lab = Lab { xlan, endpoint_namespaces, outside, _host: host };
        for n in 0..endpoints {
            lab.xlan.run(&lab.endpoint_add_args(n)).with_context(|| format!("adding endpoint {n}"))?;
        }
        Ok(lab)
    }

    /// Endpoint `n`: interface `if<n % 64>` of namespace `e<n / 64 + 1>`.
    fn endpoint(&self, n: usize) -> (&Netns, String) {
        (&self.endpoint_namespaces[n / PER_NAMESPACE], format!("if{}", n % PER_NAMESPACE))
    }

    fn endpoint_add_args(&self, n: usize) -> Vec<String> {
        let (netns, ifname) = self.endpoint(n);
        ["endpoint", "add", "lan", "--netns", netns.name(), "--ifname", &ifname].map(String::from).to_vec()
    }

    /// rx packets of every endpoint, by (namespace, interface), from `xlan stats lan --json`.
    fn rx(&self) -> Result<std::collections::BTreeMap<(String, String), u64>> {
        Ok(self.xlan.stats("lan")?.into_iter().map(|c| ((c.netns, c.ifname), c.rx_packets)).collect())
    }
}

/// One broadcast from the outside reaches each of the `endpoints` endpoints exactly once.
fn broadcast_reaches_every_endpoint(lab: &Lab, endpoints: usize) -> Result<()> {
    let before = lab.rx()?;
    ensure!(before.len() == endpoints, "xlan stats lists {} endpoints, not {endpoints}", before.len());
    // A sample: the first, one in the middle, the last.
    let sample = [0, endpoints / 2, endpoints - 1];
    let sniffers = sample
        .iter()
        .map(|&n| {
            let (netns, ifname) = lab.endpoint(n);
            Sniffer::start(netns, &ifname)
        })
        .collect::<Result<Vec<_>>>()?;
    let wire_mac = link::mac_text(&lab.outside, "wire")?;
    // One echo request to the subnet's broadcast address: one frame to ff:ff:ff:ff:ff:ff (nobody answers, the
    // endpoints have no address).
    let mut ping = lab.outside.command("ping", &["-b", "-c", "1", "-W", "1", "-I", "wire", SUBNET_BROADCAST]);
    cmd::output(&mut ping)?;
    std::thread::sleep(std::time::Duration::from_millis(500));
    for (n, sniffer) in sample.iter().zip(sniffers) {
        let seen = sniffer.finish()?;
        let from_wire = seen.get(&wire_mac).copied().unwrap_or(0);
        ensure!(from_wire == 1, "endpoint {n} saw {from_wire} frames from the outside, not 1 ({seen:?})");
    }
    let after = lab.rx()?;
    let missed: Vec<_> = after
        .iter()
        .filter(|(endpoint, rx)| **rx != before.get(*endpoint).copied().unwrap_or(0) + 1)
        .map(|(endpoint, rx)| format!("{}/{}: {rx}", endpoint.0, endpoint.1))
        .collect();
    ensure!(missed.is_empty(), "{} of {endpoints} endpoints did not get exactly one copy: {missed:?}", missed.len());
    Ok(())
}

#[test]
fn a_broadcast_reaches_each_of_256_endpoints_of_one_network() {
    let lab = ok(Lab::build(256), "building the lab");
    ok(broadcast_reaches_every_endpoint(&lab, 256), "broadcast to 256 endpoints");
}

#[test]
#[ignore = "4096 `endpoint add`s: ~20 minutes; run with --ignored"]
fn a_broadcast_reaches_each_of_4096_endpoints_and_the_next_add_is_refused() {
    let lab = ok(Lab::build(MAX_ENDPOINTS_PER_NETWORK), "building the lab");
    ok(broadcast_reaches_every_endpoint(&lab, MAX_ENDPOINTS_PER_NETWORK), "broadcast to 4096 endpoints");
    // One more, in a namespace of its own: refused, in one line that says why.
    let (netns, _) = lab.endpoint(0);
    let mut add =
        ok(lab.xlan.command(&["endpoint", "add", "lan", "--netns", netns.name(), "--ifname", "one-more"]), "command");
    let output = ok(cmd::output(&mut add), "running endpoint add");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the 4097th endpoint was added");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("is full (4096 endpoints at most)"), "{stderr}");
}
