//! The CNI plugin against Debian's reference plugins (issue #12): one configuration run with `"type": "macvlan"` (the
//! kernel's macvlan through the reference plugin) and with `"type": "xlan"` gives results of the same shape and the
//! same reachability between two sandboxes, an outside node (the gateway) and the host's own address on the master;
//! the reference `tuning` plugin chained after xlan changes the interface visibly; IPAM delegated to host-local and
//! to static.

use std::net::IpAddr;

use serde_json::{json, Value};
use xlan_tests::cni::{self, plugin_config, CniLab, GATEWAY};

/// The host's own address on the master: macvlan endpoints do not reach it (nor it them).
const HOST_ADDRESS: &str = "10.88.0.250";

fn lab(sandboxes: u8) -> Option<CniLab> {
    if !cni::reference_plugins_installed() {
        eprintln!("skipped: the reference CNI plugins are not installed (cargo xtask setup installs them)");
        return None;
    }
    Some(xlan_tests::ok(CniLab::build(sandboxes), "build the lab"))
}

fn ping(from: &xlan_tests::Netns, address: IpAddr) -> bool {
    xlan_tests::cmd::succeeds(&mut from.command("ping", &["-c1", "-W2", "-n", &address.to_string()]))
}

/// Two sandboxes attached through plugin `kind`; the results and the reachability matrix, then both DELeted.
fn attach_and_probe(kind: &str) -> (Vec<Value>, Vec<(String, bool)>) {
    let Some(lab) = lab(2) else { return (Vec::new(), Vec::new()) };
    xlan_tests::link::add_address(&lab.host, "uplink", &format!("{HOST_ADDRESS}/24")).unwrap();
    let plugin = json!({ "type": kind, "master": "uplink", "mode": "bridge",
        "ipam": lab.plugins.host_local(cni::SUBNET, GATEWAY) });
    let config = plugin_config("1.0.0", "lan", plugin, None);
    let results: Vec<Value> = (1..=2)
        .map(|n| lab.call(kind, "ADD", Some(&lab.attachment(n)), &[], &config).ok(&format!("{kind} ADD {n}")))
        .collect();
    for result in &results {
        assert_eq!(cni::shape_problems("1.0.0", result), Vec::<String>::new(), "{kind}: {result}");
    }
    let s1 = cni::first_ipv4(&results[0]).unwrap();
    let s2 = cni::first_ipv4(&results[1]).unwrap();
    let gateway: IpAddr = GATEWAY.parse().unwrap();
    let host: IpAddr = HOST_ADDRESS.parse().unwrap();
    let (a, b) = (&lab.sandboxes[0], &lab.sandboxes[1]);
    let matrix = vec![
        ("s1 -> s2".to_string(), ping(a, s2)),
        ("s2 -> s1".to_string(), ping(b, s1)),
        ("s1 -> outside".to_string(), ping(a, gateway)),
        ("s2 -> outside".to_string(), ping(b, gateway)),
        ("outside -> s1".to_string(), ping(&lab.outside, s1)),
        ("outside -> s2".to_string(), ping(&lab.outside, s2)),
        ("s1 -> host".to_string(), ping(a, host)),
        ("host -> s2".to_string(), ping(&lab.host, s2)),
    ];
    for n in 1..=2 {
        lab.call(kind, "DEL", Some(&lab.attachment(n)), &[], &config).ok(&format!("{kind} DEL {n}"));
    }
    assert!(lab.plugins.allocations("lan").is_empty(), "{kind}: addresses left");
    (results, matrix)
}

#[test]
fn the_same_conflist_gives_the_reference_macvlans_result_shape_and_reachability() {
    if !cni::reference_plugins_installed() {
        eprintln!("skipped: the reference CNI plugins are not installed (cargo xtask setup installs them)");
        return;
    }
    let (reference, reference_matrix) = attach_and_probe("macvlan");
    let (ours, our_matrix) = attach_and_probe("xlan");
    for (theirs, mine) in reference.iter().zip(&ours) {
        assert_eq!(cni::shape(mine), cni::shape(theirs), "result shapes differ:\n xlan {mine}\n macvlan {theirs}");
    }
    assert_eq!(our_matrix, reference_matrix, "reachability differs (xlan vs macvlan)");
    // And the matrix is the one a macvlan bridge LAN has: everything but the host's own address.
    for (cell, reached) in &our_matrix {
        assert_eq!(*reached, !cell.contains("host"), "{cell}");
    }
}

#[test]
fn tuning_chained_after_xlan_changes_the_interface() {
    let Some(lab) = lab(1) else { return };
    let config = lab.xlan_config("1.0.0", "lan");
    let attachment = lab.attachment(1);
    let result = lab.call("xlan", "ADD", Some(&attachment), &[], &config).ok("xlan ADD");
    let tuning = json!({ "type": "tuning", "mtu": 1400, "sysctl": { "net.ipv4.conf.eth0.arp_ignore": "1" } });
    let tuning = plugin_config("1.0.0", "lan", tuning, Some(&result));
    let tuned = lab.call("tuning", "ADD", Some(&attachment), &[], &tuning).ok("tuning ADD");
    assert_eq!(tuned["interfaces"], result["interfaces"], "tuning passes the interfaces on");
    let link: Value = serde_json::from_str(&lab.sandboxes[0].ip(&["-j", "link", "show", "eth0"]).unwrap()).unwrap();
    assert_eq!(link[0]["mtu"], 1400, "{link}");
    let arp_ignore = lab.sandboxes[0].exec("cat", &["/proc/sys/net/ipv4/conf/eth0/arp_ignore"]).unwrap();
    assert_eq!(arp_ignore.trim(), "1");
    assert!(
        xlan_tests::cmd::succeeds(&mut lab.sandboxes[0].command("ping", &["-c1", "-W2", "-n", GATEWAY])),
        "the tuned interface still reaches the gateway"
    );
    // CHECK with the chain's result: what tuning changed is no fault of xlan's interface.
    let after_chain = plugin_config("1.0.0", "lan", config, Some(&tuned));
    lab.call("xlan", "CHECK", Some(&attachment), &[], &after_chain).ok("xlan CHECK after tuning");
    // A runtime deletes the chain in reverse order.
    lab.call("tuning", "DEL", Some(&attachment), &[], &tuning).ok("tuning DEL");
    lab.call("xlan", "DEL", Some(&attachment), &[], &after_chain).ok("xlan DEL");
    assert!(lab.endpoints().is_empty() && lab.ports().is_empty(), "left: {:?} {:?}", lab.endpoints(), lab.ports());
}

#[test]
fn static_ipam_is_delegated() {
    let Some(lab) = lab(1) else { return };
    let ipam = json!({ "type": "static",
        "addresses": [{ "address": "10.88.0.50/24", "gateway": GATEWAY }],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dns": { "nameservers": ["10.88.0.53"] } });
    let plugin = json!({ "type": "xlan", "master": "uplink", "ipam": ipam });
    let config = plugin_config("1.1.0", "lan", plugin, None);
    let attachment = lab.attachment(1);
    let result = lab.call("xlan", "ADD", Some(&attachment), &[], &config).ok("ADD with static IPAM");
    assert_eq!(cni::shape_problems("1.1.0", &result), Vec::<String>::new(), "{result}");
    assert_eq!(result["ips"][0]["address"], "10.88.0.50/24");
    assert_eq!(result["dns"]["nameservers"], json!(["10.88.0.53"]));
    let routes = lab.sandboxes[0].ip(&["route", "show", "default"]).unwrap();
    assert!(routes.contains(&format!("via {GATEWAY}")), "{routes}");
    assert!(xlan_tests::cmd::succeeds(&mut lab.sandboxes[0].command("ping", &["-c1", "-W2", "-n", GATEWAY])));
    let check = plugin_config("1.1.0", "lan", config.clone(), Some(&result));
    lab.call("xlan", "CHECK", Some(&attachment), &[], &check).ok("CHECK with static IPAM");
    lab.call("xlan", "DEL", Some(&attachment), &[], &check).ok("DEL");
    assert!(lab.endpoints().is_empty() && lab.ports().is_empty());
}
