//! State that cannot lie (issue #9), through the real `xlan` binary in namespaces of the test's own: each accident a
//! user can have — a second state directory for one namespace, a lost state directory, lost pins, a garbled state
//! file, a re-created parent, a device that happens to carry xlan's next name, kill -9 in the middle of a command —
//! is reproduced, then what xlan does about it is checked: normal commands refuse with one line pointing at
//! `xlan doctor`, the doctor names the disagreement, `--repair` leaves state = pins = maps = links (the doctor finds
//! nothing) and traffic flows again, and nothing that xlan did not make is ever deleted.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use xlan_tests::{cmd, link, unique_prefix, xlan, Netns, XlanHost};

const SUBNET: &str = "10.66.0";

/// A host namespace with one macvlan bridge network `lan` on `uplink` (whose peer is in `outside`, addressed
/// SUBNET.1), two endpoint namespaces, and a spare parent.
struct Lab {
    // Dropped first: deletes the networks while the namespaces still exist.
    xlan: XlanHost,
    endpoints: Vec<Netns>,
    outside: Netns,
    host: Netns,
}

impl Lab {
    fn build() -> Result<Lab> {
        xlan::binary()?;
        let prefix = unique_prefix();
        let (host, outside) = Netns::host_and_outside(&prefix)?;
        let endpoints = Netns::create_numbered(&prefix, "e", 2)?;
        link::configure(&outside, "wire", None, &[format!("{SUBNET}.1/24")])?;
        link::tx_checksum_offload_off(&outside, "wire")?;
        link::up(&host, "uplink")?;
        link::add_veth_pair(&host, "spare", "spare-p")?;
        let mut xlan = XlanHost::new(&host)?;
        xlan.create_network("lan", &["--driver", "macvlan", "--parent", "uplink"])?;
        let lab = Lab { xlan, endpoints, outside, host };
        lab.add_endpoint(0)?;
        Ok(lab)
    }

    /// Endpoint `n` (0 or 1) of `lan`, addressed SUBNET.(11 + n).
    fn add_endpoint(&self, n: usize) -> Result<String> {
        self.xlan.run(&self.endpoint_add_args(n))
    }

    fn endpoint_add_args(&self, n: usize) -> Vec<String> {
        let ip = format!("{SUBNET}.{}/24", 11 + n);
        ["endpoint", "add", "lan", "--netns", self.endpoints[n].name(), "--ip", &ip].map(String::from).to_vec()
    }

    /// `xlan --netns HOST args...`, whatever its exit status.
    fn output(&self, args: &[&str]) -> Output {
        let mut command = self.xlan.command(args).expect("binary checked by build()");
        cmd::output(&mut command).unwrap_or_else(|err| panic!("{err:#}"))
    }

    /// The doctor's findings (`xlan doctor --json`), and with `repair` what it repaired and what remains.
    fn doctor(&self, extra: &[&str]) -> Value {
        let json = self.xlan.run(&[&["doctor", "--json"], extra].concat()).unwrap_or_else(|err| panic!("{err:#}"));
        serde_json::from_str(&json).unwrap_or_else(|err| panic!("doctor --json: {err}: {json}"))
    }

    /// The kinds of the doctor's findings (a list under `key`: findings, repaired or remaining).
    fn doctor_says(report: &Value, key: &str) -> Vec<String> {
        let findings = report[key].as_array().unwrap_or_else(|| panic!("no {key} in {report}"));
        findings.iter().map(|f| f["finding"].as_str().unwrap_or("?").to_string()).collect()
    }

    fn assert_healthy(&self, after: &str) {
        let report = self.doctor(&[]);
        assert!(Self::doctor_says(&report, "findings").is_empty(), "after {after}, the doctor finds {report}");
    }

    /// Whether `from` pings SUBNET.`host`.
    fn pings(&self, from: &Netns, host: u8) -> bool {
        from.exec("ping", &["-c", "1", "-W", "1", &format!("{SUBNET}.{host}")]).is_ok()
    }

    fn state_dir(&self) -> PathBuf {
        Path::new("/run/xlan").join(self.host.name())
    }
}

/// One line on stderr, exit status 1, pointing at the doctor.
fn assert_refused_with_doctor_pointer(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
    assert!(stderr.contains("xlan doctor"), "{what}: points at the doctor: {stderr}");
}

/// The id-reuse leak: a second state directory for the same namespace used to start its network ids at 1 again while
/// the pinned datapath still held network 1 — its endpoints landed in the first network's LAN. Now the second state
/// disagrees with the datapath and nothing is made through it.
#[test]
fn a_second_state_dir_for_one_namespace_cannot_reuse_a_live_network_id() {
    let lab = Lab::build().expect("lab");
    let other = std::env::temp_dir().join(format!("{}-other-state", lab.host.name()));
    let other = other.to_str().expect("utf-8 path");
    let create = ["--state-dir", other, "network", "create", "lan2", "--driver", "macvlan", "--parent", "spare"];
    assert_refused_with_doctor_pointer(&lab.output(&create), "create through a second state dir");
    let report: Value =
        serde_json::from_str(&lab.xlan.run(&["--state-dir", other, "doctor", "--json"]).expect("doctor"))
            .expect("json");
    // The other state's view: the datapath's network 1 (and its port) are not its own.
    let findings = Lab::doctor_says(&report, "findings");
    assert_eq!(findings, ["unknown_network", "unknown_port"], "{report}");
    assert_eq!(report["findings"][0]["id"], 1);
    // The first network is untouched and still forwards.
    lab.assert_healthy("a refused create through another state dir");
    assert!(lab.pings(&lab.outside, 11), "the outside still reaches the endpoint");
    assert!(!Path::new(other).join("state.json").exists(), "nothing recorded in the second state dir");
}

/// With the state directory lost the datapath went on forwarding while `list` showed nothing and nothing could
/// remove it. Now every command points at the doctor; with the kept configuration lost too, `--repair` removes what
/// xlan made.
#[test]
fn a_lost_state_dir_is_found_and_what_xlan_made_is_removed() {
    let lab = Lab::build().expect("lab");
    std::fs::remove_dir_all(lab.state_dir()).expect("remove the state dir");
    std::fs::remove_dir_all(Path::new(xlan::CONFIG_ROOT).join(lab.host.name())).expect("remove the kept configuration");
    assert_refused_with_doctor_pointer(&lab.output(&["network", "list"]), "list after the state dir is lost");
    let report = lab.doctor(&["--repair"]);
    assert!(Lab::doctor_says(&report, "findings").contains(&"unknown_network".to_string()), "{report}");
    assert!(Lab::doctor_says(&report, "remaining").is_empty(), "{report}");
    assert!(!xlan::bpffs_dir(lab.host.name()).exists(), "the pins are gone");
    let links = link::names(&lab.host).expect("links");
    assert!(!links.iter().any(|name| name.starts_with("xl")), "the endpoint's host-side veth is gone: {links:?}");
    assert!(link::names(&lab.endpoints[0]).expect("links").iter().all(|name| name == "lo"), "its eth0 too");
    assert!(links.contains(&"uplink".to_string()) && links.contains(&"spare".to_string()), "the user's devices stay");
    lab.assert_healthy("the repair");
}

/// With the state directory lost (a wiped /run) but the kept configuration there, `--repair` takes the configuration
/// back as the state, since the datapath runs exactly its networks: nothing is removed, traffic never stops, and
/// the instance is whole again (`list` shows the network, an endpoint can be added).
#[test]
fn a_lost_state_dir_is_taken_back_from_the_kept_configuration() {
    let lab = Lab::build().expect("lab");
    std::fs::remove_dir_all(lab.state_dir()).expect("remove the state dir");
    assert_refused_with_doctor_pointer(&lab.output(&["network", "list"]), "list after the state dir is lost");
    let report = lab.doctor(&["--repair"]);
    assert_eq!(Lab::doctor_says(&report, "findings"), ["unknown_network", "unknown_port"], "{report}");
    assert_eq!(Lab::doctor_says(&report, "repaired"), ["unknown_network"], "{report}");
    assert!(Lab::doctor_says(&report, "remaining").is_empty(), "{report}");
    lab.assert_healthy("taking the configuration back");
    assert!(lab.pings(&lab.outside, 11), "the endpoint was never removed");
    assert!(lab.xlan.run(&["network", "list"]).expect("list").contains("lan"), "the network is the state's again");
    lab.add_endpoint(1).expect("a new endpoint on the recovered network");
    assert!(lab.pings(&lab.endpoints[0], 12), "endpoint to the new endpoint");
}

/// With the pins removed, `list`/`endpoint add`/`network create` used to report success while nothing forwarded.
/// Now they refuse, and `--repair` rebuilds the datapath from the state: traffic flows again.
#[test]
fn lost_pins_are_rebuilt_from_the_state() {
    let lab = Lab::build().expect("lab");
    lab.add_endpoint(1).expect("second endpoint");
    assert!(lab.pings(&lab.endpoints[0], 12), "before: endpoint to endpoint");
    std::fs::remove_dir_all(xlan::bpffs_dir(lab.host.name())).expect("remove the pins");
    assert_refused_with_doctor_pointer(&lab.output(&["network", "list"]), "list without pins");
    let create = ["network", "create", "lan2", "--driver", "macvlan", "--parent", "spare"];
    assert_refused_with_doctor_pointer(&lab.output(&create), "create without pins");
    let report = lab.doctor(&["--repair"]);
    assert_eq!(Lab::doctor_says(&report, "findings"), ["maps_missing"], "{report}");
    assert_eq!(Lab::doctor_says(&report, "repaired"), ["maps_missing"], "{report}");
    lab.assert_healthy("the rebuild");
    assert!(lab.pings(&lab.outside, 11), "after: the outside reaches endpoint 1");
    assert!(lab.pings(&lab.endpoints[0], 12), "after: endpoint to endpoint");
}

/// An entry of a network's record that the datapath lost (here an allowed source MAC, deleted from its map behind
/// xlan's back, as a crash between a map update and the state's save would leave it) is found, and put back.
#[test]
fn a_lost_map_entry_is_found_and_put_back() {
    let lab = Lab::build().expect("lab");
    lab.xlan
        .run(&["network", "create", "src0", "--driver", "macvlan", "--parent", "spare", "--mode", "source"])
        .expect("create");
    lab.xlan.run(&["macaddr", "add", "src0", "02:66:00:00:00:aa"]).expect("macaddr");
    lab.assert_healthy("macaddr add");
    // src0 is network 2: its MacKey is network id 2 (u32, host order), the MAC, two bytes of padding.
    let pin = xlan::bpffs_dir(lab.host.name()).join("XLAN_SOURCE_MACS");
    let key = "key hex 02 00 00 00 02 66 00 00 00 aa 00 00";
    let mut bpftool = std::process::Command::new("bpftool");
    bpftool.args(["map", "delete", "pinned", pin.to_str().expect("utf-8")]).args(key.split(' '));
    cmd::run(&mut bpftool).expect("delete the entry behind xlan's back");
    assert_refused_with_doctor_pointer(&lab.output(&["network", "list"]), "list with a lost entry");
    let report = lab.doctor(&["--repair"]);
    assert_eq!(Lab::doctor_says(&report, "findings"), ["entries_missing"], "{report}");
    assert_eq!(Lab::doctor_says(&report, "repaired"), ["entries_missing"], "{report}");
    lab.assert_healthy("putting the entry back");
    lab.xlan.run(&["network", "delete", "src0"]).expect("delete src0");
}

/// A parent deleted and re-created with the same name used to leave the network bound to the old ifindex, silently.
#[test]
fn a_recreated_parent_is_bound_again() {
    let lab = Lab::build().expect("lab");
    link::delete(&lab.host, "uplink").expect("delete the parent");
    link::add_veth(&lab.host, "uplink", "wire", &lab.outside).expect("re-create it");
    link::configure(&lab.outside, "wire", None, &[format!("{SUBNET}.1/24")]).expect("address");
    link::tx_checksum_offload_off(&lab.outside, "wire").expect("offload");
    link::up(&lab.host, "uplink").expect("up");
    assert_refused_with_doctor_pointer(&lab.output(&["network", "list"]), "list with a re-created parent");
    let report = lab.doctor(&["--repair"]);
    assert_eq!(Lab::doctor_says(&report, "findings"), ["parent_replaced"], "{report}");
    assert_eq!(Lab::doctor_says(&report, "repaired"), ["parent_replaced"], "{report}");
    lab.assert_healthy("rebinding the parent");
    assert!(lab.pings(&lab.outside, 11), "the outside reaches the endpoint through the new parent");
}

/// A truncated or garbled state file stopped every command. Now they point at the doctor, which names it, and
/// `--repair` keeps it aside and takes the kept configuration back as the state (the datapath runs its networks):
/// nothing forwarding is lost.
#[test]
fn a_garbled_state_file_is_set_aside() {
    let lab = Lab::build().expect("lab");
    let file = lab.state_dir().join("state.json");
    let text = std::fs::read_to_string(&file).expect("state file");
    std::fs::write(&file, &text[..text.len() / 2]).expect("truncate it");
    assert_refused_with_doctor_pointer(&lab.output(&["network", "list"]), "list with a truncated state file");
    let report = lab.doctor(&[]);
    assert_eq!(Lab::doctor_says(&report, "findings"), ["state_unreadable"], "{report}");
    let report = lab.doctor(&["--repair"]);
    assert!(Lab::doctor_says(&report, "remaining").is_empty(), "{report}");
    assert!(lab.state_dir().join("state.json.unreadable").exists(), "the file is kept for inspection");
    assert_eq!(Lab::doctor_says(&report, "repaired"), ["state_unreadable", "unknown_network"], "{report}");
    lab.assert_healthy("setting the file aside");
    assert!(lab.pings(&lab.outside, 11), "the endpoint forwards on, the state's again");
    let _ = std::fs::remove_file(lab.state_dir().join("state.json.unreadable"));
}

/// After a reboot /run and bpffs are empty and the endpoints' veths are gone; the configuration under /var/lib/xlan
/// is not. `xlan restore` makes the networks again, and the endpoints whose namespaces exist, with their MACs and
/// addresses: traffic flows as before.
#[test]
fn restore_brings_networks_and_endpoints_back_after_a_reboot() {
    let lab = Lab::build().expect("lab");
    lab.add_endpoint(1).expect("second endpoint");
    let mac_of = |netns: &Netns| link::mac_text(netns, "eth0").ok();
    let macs_before = (mac_of(&lab.endpoints[0]), mac_of(&lab.endpoints[1]));
    // The reboot: what lives in /run, bpffs and the host's devices is gone; the namespaces come back (their owners
    // make them again), empty.
    std::fs::remove_dir_all(xlan::bpffs_dir(lab.host.name())).expect("pins");
    std::fs::remove_dir_all(lab.state_dir()).expect("state");
    for port in ["xl1p0", "xl1p1"] {
        link::delete(&lab.host, port).expect("the endpoint's veth");
    }
    let report: Value = serde_json::from_str(&lab.xlan.run(&["restore", "--json"]).expect("restore")).expect("json");
    assert_eq!(report["networks"], serde_json::json!(["lan"]), "{report}");
    assert_eq!(report["endpoints"].as_array().map(Vec::len), Some(2), "{report}");
    assert!(report["skipped"].as_array().is_some_and(Vec::is_empty), "{report}");
    lab.assert_healthy("restore");
    assert_eq!((mac_of(&lab.endpoints[0]), mac_of(&lab.endpoints[1])), macs_before, "the endpoints keep their MACs");
    assert!(lab.pings(&lab.outside, 11), "the outside reaches endpoint 1");
    assert!(lab.pings(&lab.endpoints[0], 12), "endpoint to endpoint");
    let again = lab.output(&["restore"]);
    assert_eq!(again.status.code(), Some(1), "a running instance is not restored over");
}

/// A device of the user's that carries the name xlan would give the next endpoint's veth: the add is refused, and
/// its rollback no longer deletes the user's device (nor a live endpoint).
#[test]
fn a_foreign_device_with_xlans_next_name_is_left_alone() {
    let lab = Lab::build().expect("lab");
    // lan is network 1; its first endpoint took port 0, so the next add would name its pair xl1p1/xl1t1.
    link::add_veth_pair(&lab.host, "xl1p1", "users-own").expect("the user's device");
    let output = lab.output(&lab.endpoint_add_args(1).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let links = link::names(&lab.host).expect("links");
    assert!(links.contains(&"xl1p1".to_string()) && links.contains(&"users-own".to_string()), "{links:?}");
    assert!(links.contains(&"xl1p0".to_string()), "the live endpoint stays: {links:?}");
    lab.assert_healthy("a refused add");
    assert!(lab.pings(&lab.outside, 11), "the live endpoint still forwards");
}

/// kill -9 at many points of `endpoint add`, `endpoint del` and `network create`: the next command (here
/// `network list`) finishes or undoes what was cut off, and the doctor then finds state = pins = maps = links, with
/// no stray devices on the host or in the endpoint's namespace.
#[test]
fn kill_nine_at_any_point_is_finished_or_undone_by_the_next_command() {
    let lab = Lab::build().expect("lab");
    let delays_ms = [0, 2, 5, 10, 20, 35, 50, 75, 100, 130, 160, 200, 250, 300, 400, 600];
    let mut outcomes = Vec::new();
    let mut cut_mid_mutation = 0;
    for (round, delay) in delays_ms.iter().enumerate() {
        let add = lab.endpoint_add_args(1);
        let del = ["endpoint", "del", "lan", "--netns", lab.endpoints[1].name()].map(String::from).to_vec();
        let create =
            ["network", "create", "lan2", "--driver", "macvlan", "--parent", "spare"].map(String::from).to_vec();
        for (what, args) in [("endpoint add", &add), ("endpoint del", &del), ("network create", &create)] {
            // `del` is cut off while it has something to delete.
            let has_endpoint =
                || lab.xlan.run(&["network", "show", "lan", "--json"]).expect("show").contains(lab.endpoints[1].name());
            if what == "endpoint del" && !has_endpoint() {
                lab.xlan.run(&add).expect("add the endpoint to delete");
            }
            let mut command = lab.xlan.command(args).expect("binary");
            // A cut-off command has nothing to say; one that ran to its end may refuse (`del` of no endpoint).
            command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
            let mut child = command.spawn().expect("spawn xlan");
            std::thread::sleep(Duration::from_millis(*delay));
            // SAFETY: kill(2) on the pid of the child this test spawned and has not reaped yet.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let status = child.wait().expect("wait");
            // A mutation recorded but not complete: the kill hit it in the middle, and the next command must deal.
            let state = std::fs::read_to_string(lab.state_dir().join("state.json")).unwrap_or_default();
            let pending = state.contains("\"pending\"");
            cut_mid_mutation += usize::from(pending);
            let outcome = match (status.success(), pending) {
                (true, _) => "completed",
                (false, true) => "killed mid-mutation",
                (false, false) => "killed before or after its mutation",
            };
            outcomes.push(format!("{what}@{delay}ms: {outcome}"));
            let list = lab.output(&["network", "list", "--json"]);
            assert!(
                list.status.success(),
                "round {round}, {what} killed after {delay} ms: the next command fails: {}",
                String::from_utf8_lossy(&list.stderr)
            );
            let report = lab.doctor(&[]);
            assert!(
                Lab::doctor_says(&report, "findings").is_empty(),
                "round {round}, {what} killed after {delay} ms: {report}"
            );
            let networks: Value = serde_json::from_slice(&list.stdout).expect("list json");
            let has_lan2 = networks.as_array().expect("array").iter().any(|n| n["name"] == "lan2");
            let host_links = link::names(&lab.host).expect("links");
            assert!(
                !host_links.iter().any(|l| l.starts_with("xl") && l.contains('t')),
                "stray transit: {host_links:?}"
            );
            let endpoint_links = link::names(&lab.endpoints[1]).expect("links");
            let lan = lab.xlan.run(&["network", "show", "lan", "--json"]).expect("show");
            let endpoint_in_state = lan.contains(lab.endpoints[1].name());
            assert_eq!(
                endpoint_links.iter().any(|l| l == "eth0"),
                endpoint_in_state,
                "round {round}, {what} after {delay} ms: eth0 in the endpoint's namespace iff the state has it"
            );
            if has_lan2 {
                lab.xlan.run(&["network", "delete", "lan2"]).expect("delete lan2");
            }
        }
        // Back to one endpoint for the next round.
        if lab.xlan.run(&["network", "show", "lan", "--json"]).expect("show").contains(lab.endpoints[1].name()) {
            lab.xlan.run(&["endpoint", "del", "lan", "--netns", lab.endpoints[1].name()]).expect("del");
        }
    }
    println!("{}", outcomes.join("\n"));
    assert!(
        cut_mid_mutation >= 3,
        "the kills hit only {cut_mid_mutation} mutations in the middle:\n{}",
        outcomes.join("\n")
    );
    lab.assert_healthy("the kill loop");
    assert!(lab.pings(&lab.outside, 11), "the first endpoint forwards throughout");
}
