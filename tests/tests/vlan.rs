//! 802.1Q VLANs done in BPF (issue #10, part 1), through the real `xlan` binary: the scenario of Docker's macvlan
//! tutorial in xlan's words. Two hosts joined by a switch that knows nothing of VLANs (a plain Linux bridge, which
//! carries tagged frames as they are); on each host `mac_net10` on `uplink.10` and `mac_net20` on `uplink.20`, one
//! endpoint per network per host, addresses allocated. Same VLAN across hosts is reachable, different VLANs never —
//! also when both VLANs use the same subnet; the switch sees every endpoint's frames tagged with its network's VID
//! (and the sender's priority as PCP). Both parent hooks, VLAN offload on (tags travel beside the frames) and off (in
//! their bytes). An outside node that speaks 802.1Q itself (`dot1q`, written apart from xlan's parsing) is answered
//! on its VLAN only. This kernel has no 8021q module: the kernel's own driver cannot be the reference here (Docker's
//! macvlan fails with "failed to create … vlan link: operation not supported"), so the expectations are the
//! tutorial's.

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use xlan_tests::dot1q::{self, Tagged, Tap};
use xlan_tests::link::{self, Snooping};
use xlan_tests::{test_cases, unique_prefix, xlan, Netns, Probe, XlanHost};

const VLANS: [u16; 2] = [10, 20];
const OUTSIDE_MAC: [u8; 6] = [0x02, 0x0f, 0, 0, 0, 1];
const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 10, 250);

/// How a lab is built.
#[derive(Clone, Copy)]
struct Setup {
    driver: &'static str,
    hook: &'static str,
    /// VLAN tx/rx offload on every veth of the path (the kernel's default), or off.
    offload: bool,
    /// Both VLANs use 172.16.10.0/24 and fd10::/64 (else VLAN 20 uses 172.16.20.0/24 and fd20::/64).
    same_subnet: bool,
}

/// One endpoint: its network's VLAN, its namespace and what `xlan network show` says of it.
struct Endpoint {
    vlan: u16,
    host: usize,
    netns: Netns,
    mac: [u8; 6],
    v4: IpAddr,
    v6: IpAddr,
}

struct Host {
    xlan: XlanHost,
    netns: Netns,
}

/// Fields drop in order: xlan's networks first, then the namespaces.
struct Lab {
    hosts: Vec<Host>,
    endpoints: Vec<Endpoint>,
    outside: Netns,
    switch: Netns,
}

fn subnets(vlan: u16, same_subnet: bool) -> (String, String) {
    let net = if same_subnet { 10 } else { vlan };
    (format!("172.16.{net}"), format!("fd{net}"))
}

impl Lab {
    fn build(setup: Setup) -> Result<Lab> {
        xlan::binary()?;
        let prefix = unique_prefix();
        let switch = Netns::create(&format!("{prefix}s"))?;
        let outside = Netns::create(&format!("{prefix}o"))?;
        link::add_bridge(&switch, "br0", Snooping::Off)?;
        link::add_bridge_port(&switch, "br0", "po", "wire", &outside)?;
        link::up(&outside, "wire")?;
        let mut hosts = Vec::new();
        let mut endpoints = Vec::new();
        for (h, letter) in ['a', 'b'].into_iter().enumerate() {
            let netns = Netns::create(&format!("{prefix}{letter}"))?;
            link::add_bridge_port(&switch, "br0", &format!("p{letter}"), "uplink", &netns)?;
            // Frames leave the hosts with finished checksums, as from a NIC (see `tx_checksum_offload_off`).
            link::tx_checksum_offload_off(&netns, "uplink")?;
            link::up(&netns, "uplink")?;
            let mut xlan = XlanHost::new(&netns)?;
            for vlan in VLANS {
                let (v4, v6) = subnets(vlan, setup.same_subnet);
                // Each host allocates from a range of its own, as the tutorial's hosts do.
                let (range4, range6) = (format!("{v4}.{}/27", 64 + 32 * h), format!("{v6}::{}:0/112", 0xa + h));
                let parent = format!("uplink.{vlan}");
                let network = format!("mac_net{vlan}");
                let mut args = vec!["--driver", setup.driver, "--parent", &parent, "--parent-hook", setup.hook];
                let (subnet4, gateway4, subnet6, gateway6) =
                    (format!("{v4}.0/24"), format!("{v4}.1"), format!("{v6}::/64"), format!("{v6}::1"));
                args.extend(["--subnet", &subnet4, "--gateway", &gateway4, "--ip-range", &range4]);
                args.extend(["--subnet", &subnet6, "--gateway", &gateway6, "--ip-range", &range6]);
                xlan.create_network(&network, &args)?;
                let endpoint_ns = Netns::create(&format!("{prefix}{letter}{vlan}"))?;
                xlan.run(&["endpoint", "add", &network, "--netns", endpoint_ns.name()])?;
                endpoints.push(Endpoint::read(&xlan, &network, vlan, h, endpoint_ns)?);
            }
            hosts.push(Host { xlan, netns });
        }
        link::up(&switch, "br0")?;
        if !setup.offload {
            for (netns, ifname) in
                [(&switch, "po"), (&switch, "pa"), (&switch, "pb"), (&outside, "wire"), (&hosts[0].netns, "uplink")]
                    .into_iter()
                    .chain([(&hosts[1].netns, "uplink")])
            {
                netns.exec("ethtool", &["-K", ifname, "txvlan", "off", "rxvlan", "off"])?;
            }
        }
        Ok(Lab { hosts, endpoints, outside, switch })
    }

    /// Does `probe` from endpoint `from` reach endpoint `to`?
    fn reaches(&self, probe: Probe, from: usize, to: usize) -> bool {
        let to = &self.endpoints[to];
        let addr = if probe.family() == xlan_tests::Family::V4 { to.v4 } else { to.v6 };
        probe.run(&self.endpoints[from].netns, &to.netns, addr).unwrap_or(false)
    }
}

impl Endpoint {
    fn read(xlan: &XlanHost, network: &str, vlan: u16, host: usize, netns: Netns) -> Result<Endpoint> {
        let show: Value = serde_json::from_str(&xlan.run(&["network", "show", network, "--json"])?)?;
        let entry = &show["endpoints"][0];
        let mac = entry["mac"].as_str().context("mac")?;
        let mac: Vec<u8> = mac.split(':').map(|byte| u8::from_str_radix(byte, 16)).collect::<Result<_, _>>()?;
        let address = |n: usize| -> Result<IpAddr> {
            let cidr = entry["addresses"][n].as_str().context("address")?;
            Ok(cidr.split('/').next().context("cidr")?.parse()?)
        };
        Ok(Endpoint {
            vlan,
            host,
            mac: mac.try_into().ok().context("6 bytes")?,
            v4: address(0)?,
            v6: address(1)?,
            netns,
        })
    }
}

/// The matrix between the four endpoints (every ordered pair, the probes in parallel): reachable exactly within a
/// VLAN, across the hosts. With the same subnet on both VLANs the addresses repeat across VLANs, so only probes that
/// need the very namespace they aim at to answer (TCP and UDP echo, served there alone) tell the VLANs apart.
fn check_matrix(lab: &Lab, setup: Setup) {
    let probes: &[Probe] = if setup.same_subnet { &[Probe::Tcp, Probe::Udp] } else { &Probe::ALL };
    let pairs: Vec<(usize, usize)> = (0..lab.endpoints.len())
        .flat_map(|a| (0..lab.endpoints.len()).map(move |b| (a, b)))
        .filter(|(a, b)| a != b)
        .collect();
    let results: Vec<(usize, usize, Probe, bool)> = thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .iter()
            .flat_map(|&(a, b)| probes.iter().map(move |&p| (a, b, p)))
            .map(|(a, b, p)| scope.spawn(move || (a, b, p, lab.reaches(p, a, b))))
            .collect();
        handles.into_iter().map(|h| h.join().expect("probe thread")).collect()
    });
    let mut wrong = Vec::new();
    for (a, b, probe, reached) in results {
        let (from, to) = (&lab.endpoints[a], &lab.endpoints[b]);
        let expected = from.vlan == to.vlan;
        if reached != expected {
            wrong.push(format!(
                "{} host {} VLAN {} -> host {} VLAN {}: {}",
                probe.name(),
                from.host,
                from.vlan,
                to.host,
                to.vlan,
                if reached { "reached" } else { "not reached" }
            ));
        }
    }
    assert!(wrong.is_empty(), "reachability differs from the tutorial's:\n{}", wrong.join("\n"));
}

/// The tutorial's scenario, then what the switch saw: every frame an endpoint sent carries its network's VID, and a
/// ping with IP precedence 5 (TOS 0xa0) carries priority 5.
fn two_hosts(setup: Setup) {
    let lab = xlan_tests::ok(Lab::build(setup), "building the lab");
    let tap = xlan_tests::ok(Tap::start(&lab.switch, "pa"), "tap on the switch");
    check_matrix(&lab, setup);
    let (a10, b10) = (&lab.endpoints[0], &lab.endpoints[2]);
    assert_eq!((a10.vlan, a10.host, b10.vlan, b10.host), (10, 0, 10, 1));
    let precedence_5 = a10.netns.exec("ping", &["-c", "1", "-W", "1", "-Q", "0xa0", &b10.v4.to_string()]);
    xlan_tests::ok(precedence_5, "a ping with precedence 5");
    let frames = xlan_tests::ok(tap.finish(), "tap");
    for endpoint in lab.endpoints.iter().filter(|e| e.host == 0) {
        let from: Vec<&Tagged> = frames.iter().filter(|f| !f.outgoing && endpoint.sent(f, setup)).collect();
        assert!(!from.is_empty(), "the switch saw nothing from the VLAN {} endpoint", endpoint.vlan);
        let untagged_or_wrong: Vec<_> =
            from.iter().filter(|f| f.dot1q.map(|(vid, _)| vid) != Some(endpoint.vlan)).collect();
        assert!(
            untagged_or_wrong.is_empty(),
            "frames of the VLAN {} endpoint reached the switch without its tag: {untagged_or_wrong:?}",
            endpoint.vlan
        );
    }
    let prioritised = frames.iter().any(|f| a10.sent(f, setup) && f.dot1q == Some((10, 5)) && f.ether_type == 0x0800);
    assert!(prioritised, "the ping with precedence 5 left tagged VLAN 10 priority 5");
}

impl Endpoint {
    /// Did this endpoint send `frame`? By its MAC on macvlan; on ipvlan, where endpoints share the parent's MAC, by
    /// its IPv4 address as the IP or ARP sender.
    fn sent(&self, frame: &Tagged, setup: Setup) -> bool {
        if setup.driver == "macvlan" {
            return frame.src == self.mac;
        }
        let IpAddr::V4(v4) = self.v4 else { return false };
        let sender = match frame.ether_type {
            0x0800 => frame.payload.get(12..16),
            0x0806 => frame.payload.get(14..18),
            _ => None,
        };
        sender == Some(&v4.octets()[..])
    }
}

const fn macvlan(hook: &'static str, offload: bool, same_subnet: bool) -> Setup {
    Setup { driver: "macvlan", hook, offload, same_subnet }
}

test_cases!(two_hosts {
    macvlan_vlans_across_two_hosts_tc_offload_on: macvlan("tc", true, false);
    macvlan_vlans_across_two_hosts_tc_offload_off: macvlan("tc", false, false);
    macvlan_vlans_across_two_hosts_xdp_offload_on: macvlan("xdp", true, false);
    macvlan_vlans_across_two_hosts_xdp_offload_off: macvlan("xdp", false, false);
    macvlan_same_subnet_on_two_vlans_stays_apart: macvlan("xdp", false, true);
    ipvlan_l2_vlans_across_two_hosts: Setup { driver: "ipvlan", hook: "tc", offload: true, same_subnet: false };
});

/// An 802.1Q node that is not xlan: its tagged ARP and ping on VLAN 10 are answered by the VLAN 10 endpoint, tagged
/// 10; on VLAN 30, which no network is on, and untagged, nothing answers.
fn outside_node(hook: &'static str, offload: bool) {
    let lab = xlan_tests::ok(Lab::build(macvlan(hook, offload, false)), "building the lab");
    let a10 = &lab.endpoints[0];
    let IpAddr::V4(a10_ip) = a10.v4 else { panic!("IPv4 first") };
    let exchange = |frames: Vec<Vec<u8>>| -> Vec<Tagged> {
        let tap = xlan_tests::ok(Tap::start(&lab.outside, "wire"), "tap");
        for frame in frames {
            xlan_tests::ok(dot1q::send(&lab.outside, "wire", frame), "sending");
        }
        // Answers have a second to come back.
        thread::sleep(Duration::from_secs(1));
        xlan_tests::ok(tap.finish(), "tap").into_iter().filter(|f| !f.outgoing).collect()
    };
    let answered = exchange(vec![
        dot1q::arp_request(OUTSIDE_MAC, OUTSIDE_IP, a10_ip, Some((10, 3))),
        dot1q::echo_request(OUTSIDE_MAC, OUTSIDE_IP, a10.mac, a10_ip, 0x1010, Some((10, 0))),
    ]);
    let reply = answered.iter().find(|f| f.is_arp_reply_for(a10_ip)).expect("an ARP reply on VLAN 10");
    assert_eq!((reply.src, reply.dst, reply.dot1q.map(|t| t.0)), (a10.mac, OUTSIDE_MAC, Some(10)), "{reply:?}");
    let echo = answered.iter().find(|f| f.is_echo_reply(a10_ip, 0x1010)).expect("an echo reply on VLAN 10");
    assert_eq!((echo.src, echo.dot1q.map(|t| t.0)), (a10.mac, Some(10)), "{echo:?}");

    let unanswered = exchange(vec![
        dot1q::arp_request(OUTSIDE_MAC, OUTSIDE_IP, a10_ip, Some((30, 0))),
        dot1q::arp_request(OUTSIDE_MAC, OUTSIDE_IP, a10_ip, None),
        dot1q::echo_request(OUTSIDE_MAC, OUTSIDE_IP, a10.mac, a10_ip, 0x3030, Some((30, 0))),
        dot1q::echo_request(OUTSIDE_MAC, OUTSIDE_IP, a10.mac, a10_ip, 0x3131, None),
    ]);
    // Endpoints' own multicast (router and neighbour solicitations) reaches the outside on their VLANs: only what is
    // addressed to the outside node would be an answer.
    let answers: Vec<_> = unanswered.iter().filter(|f| f.dst == OUTSIDE_MAC).collect();
    assert!(answers.is_empty(), "something answered on VLAN 30 or untagged: {answers:?}");
    // What reached a10 is counted against it: at least the ARP request and the echo request on VLAN 10.
    let stats = lab.hosts[0].xlan.stats("mac_net10").expect("stats");
    let a10_counters = stats.iter().find(|counters| counters.netns == a10.netns.name()).expect("a10's counters");
    assert!(a10_counters.rx_packets >= 2, "{a10_counters:?}");
}

test_cases!(outside_node {
    an_outside_8021q_node_is_answered_on_its_vlan_only_tc: "tc", true;
    an_outside_8021q_node_is_answered_on_its_vlan_only_xdp: "xdp", false;
});

/// `network list` and `network show` name the VLAN, in text and JSON; a VLAN parent's bad cases are one line each.
#[test]
fn vlan_is_shown_and_bad_vlans_are_refused() {
    let lab = xlan_tests::ok(Lab::build(macvlan("tc", true, false)), "building the lab");
    let xlan = &lab.hosts[0].xlan;
    let list = xlan.run(&["network", "list"]).expect("list");
    assert!(list.contains("uplink.10") && list.contains("uplink.20"), "{list}");
    let json = xlan.network_list().expect("list --json");
    let vlans: Vec<_> = json.as_array().expect("array").iter().map(|n| n["vlan"].as_u64()).collect();
    assert_eq!(vlans, [Some(10), Some(20)], "{json}");
    let show = xlan.run(&["network", "show", "mac_net10"]).expect("show");
    assert!(show.contains("parent uplink vlan 10"), "{show}");

    let refused = |args: &[&str], expect: &str| {
        let output =
            xlan.command(&[&["network", "create", "bad"], args].concat()).expect("binary").output().expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.lines().count() == 1 && stderr.contains(expect), "{args:?}: {stderr}");
    };
    refused(&["--driver", "macvlan", "--parent", "uplink.4095"], "not a VLAN ID");
    refused(&["--driver", "macvlan", "--parent", "uplink", "--vlan", "0"], "not a VLAN ID");
    refused(&["--driver", "macvlan", "--parent", "uplink.10", "--vlan", "11"], "names VLAN 10");
    refused(&["--driver", "macvlan", "--parent", "uplink.10"], "already carries");
    refused(&["--driver", "ipvlan", "--parent", "uplink.30", "--mode", "l3"], "ipvlan l3");
    refused(&["--driver", "macvlan", "--parent", "uplink.30", "--host-access"], "host access");
    refused(&["--driver", "vxlan", "--parent", "uplink.30", "--vni", "5", "--local", "10.0.0.1"], "VXLAN");
    refused(&["--driver", "macvlan", "--parent", "nosuch.10"], "nosuch");
    // Nothing was made by the refusals: still the two networks.
    assert_eq!(xlan.network_list().expect("list").as_array().map(Vec::len), Some(2));
}
