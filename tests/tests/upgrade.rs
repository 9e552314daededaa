//! Upgrade without loss (issue #9): `xlan upgrade` replaces the running datapath's programs through their pinned
//! links (BPF_LINK_UPDATE) while a paced ping and a UDP stream cross the parent and the endpoint's port; nothing is
//! lost, the links run new programs afterwards, and the maps (the endpoint's counters) carry on.

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;
use xlan_tests::{cmd, link, test_cases, unique_prefix, xlan, Netns, XlanHost};

const DATAGRAMS: u32 = 2000;
const UPGRADES: usize = 5;

struct Lab {
    xlan: XlanHost,
    endpoint: Netns,
    outside: Netns,
    host: Netns,
}

impl Lab {
    fn build(hook: &str) -> Result<Lab> {
        xlan::binary()?;
        let prefix = unique_prefix();
        let (host, outside) = Netns::host_and_outside(&prefix)?;
        let endpoint = Netns::create(&format!("{prefix}e"))?;
        link::configure(&outside, "wire", None, &["10.9.0.1/24".to_string()])?;
        link::tx_checksum_offload_off(&outside, "wire")?;
        link::nic_like(&host, "uplink")?;
        link::up(&host, "uplink")?;
        let mut xlan = XlanHost::new(&host)?;
        xlan.create_network("lan", &["--driver", "macvlan", "--parent", "uplink", "--parent-hook", hook])?;
        xlan.run(&["endpoint", "add", "lan", "--netns", endpoint.name(), "--ip", "10.9.0.2/24"])?;
        Ok(Lab { xlan, endpoint, outside, host })
    }

    /// The endpoint's host-side veth.
    fn port(&self) -> String {
        let ports = xlan::host_ports(&self.host).expect("host links");
        let [port] = ports.as_slice() else { panic!("one host-side veth: {ports:?}") };
        port.clone()
    }

    /// The id of the program each pinned link of the instance runs, by link name.
    fn link_programs(&self) -> Vec<(String, u64)> {
        let dir = xlan::bpffs_dir(self.host.name()).join("links");
        let mut programs: Vec<(String, u64)> = std::fs::read_dir(&dir)
            .expect("links dir")
            .flatten()
            .map(|entry| {
                let path = entry.path();
                let mut bpftool = std::process::Command::new("bpftool");
                bpftool.args(["-j", "link", "show", "pinned", path.to_str().expect("utf-8")]);
                let info: Value = serde_json::from_str(&cmd::run(&mut bpftool).expect("bpftool")).expect("json");
                (entry.file_name().to_string_lossy().into_owned(), info["prog_id"].as_u64().expect("prog_id"))
            })
            .collect();
        programs.sort();
        programs
    }
}

/// The upgrade under traffic: a ping every 10 ms from the outside and a UDP datagram every millisecond into the
/// endpoint, `UPGRADES` upgrades meanwhile. `made_by_older`: the endpoint has the one transmit queue an older xlan
/// gave it, which the first upgrade changes while the traffic flows.
fn upgrade_under_traffic(hook: &str, made_by_older: bool) {
    let lab = xlan_tests::ok(Lab::build(hook), "building the lab");
    if made_by_older {
        xlan_tests::ok(
            lab.host.exec("ethtool", &["-L", &lab.port(), "tx", "1"]),
            "an endpoint as an older xlan made it",
        );
    }
    // Neighbours resolved first, so the stream's first datagrams do not wait in an ARP queue.
    xlan_tests::ok(lab.outside.exec("ping", &["-c", "1", "-W", "1", "10.9.0.2"]), "first ping");
    let before = lab.link_programs();
    assert!(before.len() >= 2, "the parent's and the port's links: {before:?}");

    let receiver = lab.endpoint.spawn(|| -> Result<u32> {
        let socket = UdpSocket::bind("10.9.0.2:7000")?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut received = 0;
        let mut buf = [0u8; 64];
        while socket.recv(&mut buf).is_ok() {
            received += 1;
        }
        Ok(received)
    });
    thread::sleep(Duration::from_millis(100));
    let sender = lab.outside.spawn(|| -> Result<u32> {
        let socket = UdpSocket::bind("10.9.0.1:0")?;
        let to: SocketAddr = "10.9.0.2:7000".parse()?;
        let start = Instant::now();
        for n in 0..DATAGRAMS {
            socket.send_to(&n.to_be_bytes(), to)?;
            // Paced by the clock, not by sleeps that add up.
            let due = start + Duration::from_millis(u64::from(n + 1));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        Ok(DATAGRAMS)
    });
    let ping = lab
        .outside
        .command("ping", &["-i", "0.01", "-c", "200", "-W", "1", "10.9.0.2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ping");

    let (mut replaced, mut queues_set) = (Vec::new(), 0);
    for _ in 0..UPGRADES {
        thread::sleep(Duration::from_millis(250));
        let json = xlan_tests::ok(lab.xlan.run(&["upgrade", "--json"]), "xlan upgrade");
        let upgraded: Value = serde_json::from_str(&json).expect("json");
        replaced.push(upgraded["replaced"].as_array().map_or(0, Vec::len));
        queues_set += upgraded["queues_set"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(queues_set, usize::from(made_by_older), "upgrades that set the endpoint's queues");

    let sent = sender.join().expect("sender").expect("sender's namespace").expect("sending");
    let received = receiver.join().expect("receiver").expect("receiver's namespace").expect("receiving");
    let ping = ping.wait_with_output().expect("ping");
    let ping = String::from_utf8_lossy(&ping.stdout);
    assert!(replaced.iter().all(|n| *n == before.len()), "every link replaced each time: {replaced:?} of {before:?}");
    assert_eq!(received, sent, "UDP datagrams lost across {UPGRADES} upgrades");
    assert!(ping.contains(" 0% packet loss"), "pings lost across the upgrades: {ping}");

    let after = lab.link_programs();
    assert_eq!(after.len(), before.len(), "the same links");
    for ((link, old), (_, new)) in before.iter().zip(&after) {
        assert_ne!(old, new, "{link} runs a new program");
    }
    // The maps were kept: the endpoint's counters count on from before the upgrades.
    let stats = lab.xlan.endpoint_stats("lan", lab.endpoint.name(), "eth0").expect("stats");
    assert!(stats.rx_packets >= u64::from(sent) + 200, "counters kept across the upgrades: {stats:?}");
}

test_cases!(upgrade_under_traffic {
    upgrade_under_traffic_loses_nothing_tc: "tc", false;
    upgrade_under_traffic_loses_nothing_xdp: "xdp", false;
    upgrade_of_an_older_endpoint_under_traffic_loses_nothing: "tc", true;
});

/// An upgrade from a datapath of another map layout (simulated: the pin of one of this binary's maps missing — the
/// running programs still hold the map — and the pin of a map this binary no longer has): the new map is made and
/// filled from the state before the programs switch, the stale pin is removed, and the instance is consistent and
/// forwarding afterwards.
#[test]
fn an_upgrade_across_map_layouts_fills_new_maps_first() {
    let lab = xlan_tests::ok(Lab::build("tc"), "building the lab");
    let root = xlan::bpffs_dir(lab.host.name());
    std::fs::remove_file(root.join("XLAN_PARENT_VLANS")).expect("unpin a map of this layout");
    let stale = root.join("XLAN_PARENTS");
    let mut bpftool = std::process::Command::new("bpftool");
    bpftool.args(["map", "create", stale.to_str().expect("utf-8")]);
    bpftool.args(["type", "hash", "key", "4", "value", "4", "entries", "1", "name", "XLAN_PARENTS"]);
    xlan_tests::ok(cmd::run(&mut bpftool), "a map of an older layout");

    let upgraded: Value = serde_json::from_str(&lab.xlan.run(&["upgrade", "--json"]).expect("upgrade")).expect("json");
    assert_eq!(upgraded["new_maps"], serde_json::json!(["XLAN_PARENT_VLANS"]), "{upgraded}");
    assert_eq!(upgraded["removed_maps"], serde_json::json!(["XLAN_PARENTS"]), "{upgraded}");
    assert!(!stale.exists(), "the stale pin is gone");
    let report: Value = serde_json::from_str(&lab.xlan.run(&["doctor", "--json"]).expect("doctor")).expect("json");
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    assert!(lab.outside.exec("ping", &["-c", "1", "-W", "1", "10.9.0.2"]).is_ok(), "still forwarding");
}

/// An endpoint an older xlan made has one transmit queue on its host-side veth (simulated with `ethtool -L`), so
/// every broadcast copy takes its ring: the upgrade gives it this binary's two and says so, a second upgrade has
/// nothing to set, and broadcast (the outside's ARP) still reaches the endpoint.
#[test]
fn an_upgrade_sets_the_queues_of_endpoints_an_older_xlan_made() {
    let lab = xlan_tests::ok(Lab::build("tc"), "building the lab");
    let port = lab.port();
    let tx_queues = || {
        let channels = lab.host.exec("ethtool", &["-l", &port]).expect("ethtool -l");
        let current = channels.split("Current hardware settings:").nth(1).expect("current settings").to_string();
        current.lines().find_map(|line| line.strip_prefix("TX:")).map(|count| count.trim().to_string())
    };
    assert_eq!(tx_queues().as_deref(), Some("2"), "xlan gives the host-side veth two transmit queues");
    xlan_tests::ok(lab.host.exec("ethtool", &["-L", &port, "tx", "1"]), "an endpoint as an older xlan made it");

    let upgraded: Value = serde_json::from_str(&lab.xlan.run(&["upgrade", "--json"]).expect("upgrade")).expect("json");
    let endpoint = format!("eth0@{}", lab.endpoint.name());
    assert_eq!(upgraded["queues_set"], serde_json::json!([endpoint]), "{upgraded}");
    assert!(upgraded.get("queues_not_set").is_none(), "{upgraded}");
    assert_eq!(tx_queues().as_deref(), Some("2"), "the upgrade set the queues");
    let again: Value = serde_json::from_str(&lab.xlan.run(&["upgrade", "--json"]).expect("upgrade")).expect("json");
    assert!(again.get("queues_set").is_none(), "nothing to set the second time: {again}");
    lab.outside.exec("ip", &["neigh", "flush", "dev", "wire"]).expect("flush the outside's neighbours");
    assert!(lab.outside.exec("ping", &["-c", "1", "-W", "1", "10.9.0.2"]).is_ok(), "ARP and ping after the upgrade");
}
