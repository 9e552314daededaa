//! The CNI plugin (issue #12) run as runtimes run it — CNI_* variables, the configuration on stdin, in the host's
//! network namespace — for every command and spec version: ADD results checked against each version's shape and
//! reached for real (the gateway is an outside node), CHECK passing and then catching a removed address and route,
//! DEL twice (and after the namespace is gone), GC by `cni.dev/valid-attachments`, STATUS (50 without the right to
//! load BPF), VERSION; errors as the spec's object with its codes, and nothing half-made after any of them.

use serde_json::{json, Value};
use xlan_tests::cni::{self, plugin_config, CniLab, GATEWAY, VERSIONS};
use xlan_tests::sniff::Sniffer;

fn lab(sandboxes: u8) -> CniLab {
    xlan_tests::ok(CniLab::build(sandboxes), "build the lab")
}

fn ping(lab: &CniLab, sandbox: usize, address: &str) -> bool {
    xlan_tests::cmd::succeeds(&mut lab.sandboxes[sandbox - 1].command("ping", &["-c1", "-W2", "-n", address]))
}

/// Nothing of an attachment left: no endpoint in xlan's state, no port in the host, no eth0 in the sandboxes, no
/// address held by host-local, and the instance consistent.
fn assert_nothing_left(lab: &CniLab, network: &str, doing: &str) {
    assert_eq!(lab.endpoints(), Vec::<String>::new(), "{doing}: endpoints left");
    assert_eq!(lab.ports(), Vec::<String>::new(), "{doing}: ports left in the host");
    for sandbox in &lab.sandboxes {
        let links = xlan_tests::link::names(sandbox).expect("links");
        assert_eq!(links, vec!["lo".to_string()], "{doing}: links left in {}", sandbox.name());
    }
    assert_eq!(lab.plugins.allocations(network), Vec::<String>::new(), "{doing}: IPAM allocations left");
    assert_eq!(lab.doctor_findings(), json!([]), "{doing}: the doctor finds problems");
}

/// Waits until the host has `count` xlan ports: a deleted namespace's devices go a moment later (the kernel cleans
/// namespaces up in a work queue).
fn wait_for_ports(lab: &CniLab, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lab.ports().len() != count {
        assert!(std::time::Instant::now() < deadline, "ports: {:?}", lab.ports());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn version_lists_the_supported_versions_and_echoes_the_asked_one() {
    let lab = lab(0);
    for version in VERSIONS {
        let reply = lab.call("xlan", "VERSION", None, &[], &json!({ "cniVersion": version }));
        let answer = reply.ok("VERSION");
        assert_eq!(answer["cniVersion"], json!(version));
        assert_eq!(answer["supportedVersions"], json!(VERSIONS));
    }
}

#[test]
fn add_check_del_in_every_version() {
    let lab = lab(1);
    for version in VERSIONS {
        // One network for all versions: kept between attachments, it must fit every version's configuration.
        let name = "lan";
        let config = lab.xlan_config(version, name);
        let attachment = lab.attachment(1);
        let result = lab.call("xlan", "ADD", Some(&attachment), &[], &config).ok("ADD");
        assert_eq!(cni::shape_problems(version, &result), Vec::<String>::new(), "{version}: {result}");
        assert_eq!(result["interfaces"][0]["name"], "eth0");
        assert_eq!(result["interfaces"][0]["sandbox"], json!(attachment.netns));
        assert_eq!(result["ips"][0]["gateway"], GATEWAY);
        assert_eq!(result["ips"][0]["interface"], 0);
        let address = cni::first_ipv4(&result).unwrap();
        let shown = lab.sandboxes[0].ip(&["-j", "addr", "show", "eth0"]).unwrap();
        assert!(shown.contains(&address.to_string()), "{version}: {address} not on eth0: {shown}");
        assert!(ping(&lab, 1, GATEWAY), "{version}: the gateway is unreachable from the container");
        assert_eq!(lab.plugins.allocations(name).len(), 1, "{version}: host-local holds the address");

        let check = plugin_config(version, name, config.clone(), Some(&result));
        let reply = lab.call("xlan", "CHECK", Some(&attachment), &[], &check);
        if version == "0.3.1" {
            assert_eq!(reply.error_code("CHECK in 0.3.1"), 1, "CHECK came with 0.4.0");
        } else {
            reply.ok(&format!("CHECK {version}"));
        }
        for round in ["DEL", "DEL again"] {
            lab.call("xlan", "DEL", Some(&attachment), &[], &check).ok(&format!("{version}: {round}"));
            assert_nothing_left(&lab, name, &format!("{version}: {round}"));
        }
    }
}

#[test]
fn concurrent_first_adds_share_the_network_they_race_to_create() {
    let lab = lab(4);
    let config = lab.xlan_config("1.0.0", "lan");
    let results: Vec<Value> = std::thread::scope(|scope| {
        let adds: Vec<_> = (1..=4)
            .map(|n| {
                let (lab, config) = (&lab, &config);
                scope.spawn(move || lab.call("xlan", "ADD", Some(&lab.attachment(n)), &[], config).ok("ADD"))
            })
            .collect();
        adds.into_iter().map(|add| add.join().unwrap()).collect()
    });
    let mut addresses: Vec<_> = results.iter().map(|r| cni::first_ipv4(r).unwrap()).collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 4, "{results:?}");
    for n in 1..=4 {
        assert!(ping(&lab, n, GATEWAY), "container {n} does not reach the gateway");
    }
    for n in 1..=4 {
        lab.call("xlan", "DEL", Some(&lab.attachment(n)), &[], &config).ok("DEL");
    }
    assert_nothing_left(&lab, "lan", "DELs");
}

#[test]
fn without_a_master_the_interface_of_the_default_route_is_the_parent() {
    let lab = lab(1);
    xlan_tests::link::add_address(&lab.host, "uplink", "10.88.0.250/24").unwrap();
    lab.host.ip(&["route", "add", "default", "via", GATEWAY]).unwrap();
    let mut config = lab.xlan_config("1.0.0", "lan");
    config.as_object_mut().unwrap().remove("master");
    lab.call("xlan", "ADD", Some(&lab.attachment(1)), &[], &config).ok("ADD without master");
    let show: Value = serde_json::from_str(&lab.xlan(&["network", "show", "lan", "--json"]).unwrap()).unwrap();
    assert_eq!(show["parent"]["name"], "uplink", "{show}");
    assert!(ping(&lab, 1, GATEWAY));
    lab.call("xlan", "DEL", Some(&lab.attachment(1)), &[], &config).ok("DEL");
    assert_nothing_left(&lab, "lan", "DEL");
}

#[test]
fn a_network_made_with_the_cli_beforehand_is_used_with_its_own_ipam() {
    let lab = lab(2);
    let create = ["network", "create", "lan", "--driver", "macvlan", "--parent", "uplink", "--subnet", cni::SUBNET];
    lab.xlan(&[&create[..], &["--gateway", GATEWAY]].concat()).unwrap();
    let mut config = lab.xlan_config("1.0.0", "lan");
    config.as_object_mut().unwrap().remove("ipam");
    let attachment = lab.attachment(1);
    let result = lab.call("xlan", "ADD", Some(&attachment), &[], &config).ok("ADD on the CLI's network");
    assert_eq!(cni::shape_problems("1.0.0", &result), Vec::<String>::new(), "{result}");
    assert!(result["ips"][0]["address"].as_str().unwrap().starts_with("10.88.0."), "{result}");
    assert_eq!(result["ips"][0]["gateway"], GATEWAY, "{result}");
    assert!(ping(&lab, 1, GATEWAY), "xlan's IPAM routes through the subnet's gateway");
    let check = plugin_config("1.0.0", "lan", config.clone(), Some(&result));
    lab.call("xlan", "CHECK", Some(&attachment), &[], &check).ok("CHECK");
    // The same network asked for in another mode is refused, naming the difference.
    let mut private = config.clone();
    private["mode"] = json!("private");
    let reply = lab.call("xlan", "ADD", Some(&lab.attachment(2)), &[], &private);
    assert_eq!(reply.error_code("another mode"), 7);
    lab.call("xlan", "DEL", Some(&attachment), &[], &check).ok("DEL");
    assert_nothing_left(&lab, "lan", "DEL");
}

#[test]
fn check_catches_a_removed_address_and_a_removed_route() {
    let lab = lab(1);
    let config = lab.xlan_config("1.0.0", "lan");
    let attachment = lab.attachment(1);
    let result = lab.call("xlan", "ADD", Some(&attachment), &[], &config).ok("ADD");
    let check = plugin_config("1.0.0", "lan", config.clone(), Some(&result));
    lab.call("xlan", "CHECK", Some(&attachment), &[], &check).ok("CHECK after ADD");

    lab.sandboxes[0].ip(&["route", "del", "default"]).unwrap();
    let reply = lab.call("xlan", "CHECK", Some(&attachment), &[], &check);
    assert_eq!(reply.error_code("CHECK without the default route"), 101);
    assert!(reply.message().contains("route to 0.0.0.0/0"), "{}", reply.message());
    lab.sandboxes[0].ip(&["route", "add", "default", "via", GATEWAY]).unwrap();
    lab.call("xlan", "CHECK", Some(&attachment), &[], &check).ok("CHECK with the route back");

    let address = result["ips"][0]["address"].as_str().unwrap();
    lab.sandboxes[0].ip(&["addr", "del", address, "dev", "eth0"]).unwrap();
    let reply = lab.call("xlan", "CHECK", Some(&attachment), &[], &check);
    assert_eq!(reply.error_code("CHECK without the address"), 101);
    assert!(reply.message().contains(address), "{}", reply.message());

    lab.call("xlan", "DEL", Some(&attachment), &[], &check).ok("DEL");
    assert_nothing_left(&lab, "lan", "DEL after failed CHECKs");
}

#[test]
fn del_succeeds_when_the_namespace_is_gone_and_without_cni_netns() {
    let mut lab = lab(2);
    let config = lab.xlan_config("1.0.0", "lan");
    let (first, second) = (lab.attachment(1), lab.attachment(2));
    lab.call("xlan", "ADD", Some(&first), &[], &config).ok("ADD 1");
    lab.call("xlan", "ADD", Some(&second), &[], &config).ok("ADD 2");
    // The runtime lost the first sandbox before DEL: the kernel took the veth pair with it.
    drop(lab.sandboxes.remove(0));
    wait_for_ports(&lab, 1);
    lab.call("xlan", "DEL", Some(&first), &[], &config).ok("DEL with the namespace gone");
    lab.call("xlan", "DEL", Some(&first), &[], &config).ok("DEL again");
    // DEL without CNI_NETNS (optional for DEL).
    let mut no_netns = second.clone();
    no_netns.netns = String::new();
    lab.call("xlan", "DEL", Some(&no_netns), &[], &config).ok("DEL without CNI_NETNS");
    assert_nothing_left(&lab, "lan", "DELs");
}

#[test]
fn an_attachment_whose_namespace_vanished_does_not_block_the_next_add() {
    let mut lab = lab(2);
    let config = lab.xlan_config("1.0.0", "lan");
    lab.call("xlan", "ADD", Some(&lab.attachment(1)), &[], &config).ok("ADD 1");
    let second = lab.attachment(2);
    drop(lab.sandboxes.remove(0));
    wait_for_ports(&lab, 0);
    lab.call("xlan", "ADD", Some(&second), &[], &config).ok("ADD 2 after sandbox 1 vanished without DEL");
    assert_eq!(lab.plugins.allocations("lan").len(), 1, "the vanished attachment's address is released");
    lab.call("xlan", "DEL", Some(&second), &[], &config).ok("DEL 2");
    assert_nothing_left(&lab, "lan", "DEL");
}

/// A process the test started, killed (by its handle) when the test is done with it or fails.
struct Child(std::process::Child);

impl Child {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}

/// After a reboot (/run, bpffs and the veths gone) `xlan restore` brings back the endpoint whose namespace path
/// exists again and skips the one given as /proc/PID/ns/net, whose process is gone; the restored endpoint keeps its
/// container id, so DEL finds it, and DEL of the skipped one still releases its address.
#[test]
fn restore_keeps_container_ids_and_skips_namespaces_given_by_a_gone_process() {
    let lab = lab(2);
    let config = lab.xlan_config("1.0.0", "lan");
    let named = lab.attachment(1);
    lab.call("xlan", "ADD", Some(&named), &[], &config).ok("ADD by /run/netns path");
    // A process of the test's own in sandbox 2, whose /proc path names the namespace.
    let mut holder = Child(lab.sandboxes[1].command("sleep", &["600"]).spawn().expect("sleep in sandbox 2"));
    let mut by_process = lab.attachment(2);
    by_process.netns = format!("/proc/{}/ns/net", holder.0.id());
    let result = lab.call("xlan", "ADD", Some(&by_process), &[], &config).ok("ADD by /proc path");
    assert_eq!(result["interfaces"][0]["sandbox"], json!(by_process.netns));
    assert!(ping(&lab, 2, GATEWAY), "the endpoint in the namespace given by /proc path works");

    // The reboot: the process is gone, /run and bpffs are empty, the veths are gone.
    holder.stop();
    std::fs::remove_dir_all(xlan_tests::xlan::bpffs_dir(lab.host.name())).expect("pins");
    std::fs::remove_dir_all(format!("/run/xlan/{}", lab.host.name())).expect("state");
    for port in lab.ports() {
        xlan_tests::link::delete(&lab.host, &port).expect("an endpoint's veth");
    }
    let report: Value = serde_json::from_str(&lab.xlan(&["restore", "--json"]).unwrap()).unwrap();
    assert_eq!(report["networks"], json!(["lan"]), "{report}");
    assert_eq!(report["endpoints"], json!([{ "netns": named.netns, "ifname": "eth0" }]), "{report}");
    assert_eq!(report["skipped"][0]["endpoint"]["netns"], json!(by_process.netns), "{report}");
    assert!(ping(&lab, 1, GATEWAY), "the restored endpoint works");

    lab.call("xlan", "DEL", Some(&named), &[], &config).ok("DEL of the restored attachment");
    lab.call("xlan", "DEL", Some(&by_process), &[], &config).ok("DEL of the skipped attachment");
    assert_nothing_left(&lab, "lan", "DELs after restore");
}

#[test]
fn gc_removes_the_attachments_not_listed() {
    let lab = lab(2);
    let config = lab.xlan_config("1.1.0", "lan");
    let (keep, stale) = (lab.attachment(1), lab.attachment(2));
    lab.call("xlan", "ADD", Some(&keep), &[], &config).ok("ADD kept");
    lab.call("xlan", "ADD", Some(&stale), &[], &config).ok("ADD stale");
    let mut gc = config.clone();
    gc["cni.dev/valid-attachments"] = json!([{ "containerID": keep.container_id, "ifname": "eth0" }]);
    lab.call("xlan", "GC", None, &[], &gc).ok("GC");
    let endpoints = lab.endpoints();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert!(endpoints[0].contains(lab.sandboxes[0].name()), "{endpoints:?}");
    assert_eq!(lab.plugins.allocations("lan").len(), 1, "the stale attachment's address is released");
    assert!(ping(&lab, 1, GATEWAY), "the kept attachment still works");
    // GC is 1.1.0's.
    let old = plugin_config("1.0.0", "lan", gc.clone(), None);
    assert_eq!(lab.call("xlan", "GC", None, &[], &old).error_code("GC in 1.0.0"), 1);
    gc["cni.dev/valid-attachments"] = json!([]);
    lab.call("xlan", "GC", None, &[], &gc).ok("GC of everything");
    assert_nothing_left(&lab, "lan", "GC");
}

#[test]
fn status_answers_50_when_the_datapath_cannot_be_loaded() {
    let lab = lab(0);
    let config = lab.xlan_config("1.1.0", "lan");
    lab.call("xlan", "STATUS", None, &[], &config).ok("STATUS as root");
    let old = lab.xlan_config("1.0.0", "lan");
    assert_eq!(lab.call("xlan", "STATUS", None, &[], &old).error_code("STATUS in 1.0.0"), 1);
    // Without the capabilities to load BPF programs, as an unprivileged user.
    let mut cmd = std::process::Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{}", lab.host.name()))
        .args(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"])
        .arg(lab.plugins.find("xlan"))
        .env("CNI_COMMAND", "STATUS")
        .env("CNI_PATH", lab.plugins.cni_path());
    let reply = cni::run_with_stdin(cmd, &config).unwrap();
    assert_eq!(reply.error_code("STATUS unprivileged"), 50, "{}", reply.stderr);
    assert!(std::fs::read_dir("/sys/fs/bpf/xlan")
        .map_or(true, |dir| dir.flatten().all(|e| !e.file_name().to_string_lossy().starts_with("probe_"))));
}

#[test]
fn errors_are_the_spec_object_with_its_codes_and_leave_nothing() {
    let lab = lab(1);
    let attachment = lab.attachment(1);
    let good = lab.xlan_config("1.0.0", "lan");
    let with = |key: &str, value: Value| {
        let mut config = good.clone();
        config[key] = value;
        config
    };
    // (what, configuration, environment beyond the attachment's, expected code)
    type Case<'a> = (&'a str, Value, Vec<(&'a str, &'a str)>, u64);
    let cases: Vec<Case> = vec![
        ("unknown command", good.clone(), vec![("CNI_COMMAND", "FROB")], 4),
        ("unsupported version", with("cniVersion", json!("0.2.0")), vec![], 1),
        ("not JSON", json!("{"), vec![], 6),
        ("no CNI_CONTAINERID", good.clone(), vec![("CNI_CONTAINERID", "")], 4),
        ("a CNI_CONTAINERID that is no id", good.clone(), vec![("CNI_CONTAINERID", "-x/y")], 4),
        ("unknown mode", with("mode", json!("l3")), vec![], 7),
        ("a network name xlan cannot take", with("name", json!("a".repeat(65))), vec![], 7),
        ("unknown driver", with("driver", json!("bridge")), vec![], 7),
        ("missing master", with("master", json!("nope0")), vec![], 7),
        ("VLAN 4095 master", with("master", json!("uplink.4095")), vec![], 7),
        ("vxlan key on macvlan", with("vni", json!(5)), vec![], 7),
        ("unknown CNI_ARGS", good.clone(), vec![("CNI_ARGS", "K8S_POD_NAME=x")], 4),
        ("bad MAC in CNI_ARGS", good.clone(), vec![("CNI_ARGS", "MAC=zz")], 4),
        ("multicast MAC", with("mac", json!("01:00:5e:00:00:01")), vec![], 7),
        ("mtu above the master's", with("mtu", json!(9000)), vec![], 7),
        ("missing IPAM plugin", with("ipam", json!({ "type": "nope" })), vec![], 7),
        ("no CNI_PATH to find the IPAM plugin in", good.clone(), vec![("CNI_PATH", "")], 4),
        // host-local's own error, its code passed on.
        ("IPAM plugin's own error", with("ipam", json!({ "type": "host-local" })), vec![], 999),
        ("namespace that does not exist", good.clone(), vec![("CNI_NETNS", "/run/netns/xl-none")], 4),
        ("a file that is no namespace", good.clone(), vec![("CNI_NETNS", "/etc/hostname")], 4),
    ];
    for (what, config, env, code) in cases {
        let reply = lab.call("xlan", "ADD", Some(&attachment), &env, &config);
        assert_eq!(reply.error_code(what), code, "{what}: {}", reply.stdout);
        assert_eq!(lab.networks(), json!([]), "{what}: a network was left");
        assert_nothing_left(&lab, "lan", what);
    }
    // An interface of the name already in the container (SPEC.md: ADD must fail).
    lab.sandboxes[0].ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "peer0"]).unwrap();
    let reply = lab.call("xlan", "ADD", Some(&attachment), &[], &good);
    assert_eq!(reply.error_code("eth0 exists in the container"), 4);
    assert!(reply.message().contains("CNI_IFNAME"), "{}", reply.message());
    lab.sandboxes[0].ip(&["link", "del", "eth0"]).unwrap();
    assert_eq!(lab.networks(), json!([]), "eth0 exists: a network was left");
    assert_nothing_left(&lab, "lan", "eth0 exists");
    // IgnoreUnknown=1 lets podman's and Kubernetes' arguments through; MAC= sets the MAC.
    let args = [("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:00:00:00:00:42")];
    let result = lab.call("xlan", "ADD", Some(&lab.attachment(1)), &args, &good).ok("ADD with CNI_ARGS");
    assert_eq!(result["interfaces"][0]["mac"], "02:00:00:00:00:42");
    lab.call("xlan", "DEL", Some(&lab.attachment(1)), &[], &good).ok("DEL");
    let runtime = with("runtimeConfig", json!({ "mac": "02:00:00:00:00:43" }));
    let result = lab.call("xlan", "ADD", Some(&lab.attachment(1)), &args, &runtime).ok("ADD with runtimeConfig.mac");
    assert_eq!(result["interfaces"][0]["mac"], "02:00:00:00:00:43");
    lab.call("xlan", "DEL", Some(&lab.attachment(1)), &[], &good).ok("DEL");
    assert_nothing_left(&lab, "lan", "DEL");
}

#[test]
fn conflicting_configurations_for_one_master_are_refused() {
    let lab = lab(2);
    let first = lab.xlan_config("1.0.0", "lana");
    lab.call("xlan", "ADD", Some(&lab.attachment(1)), &[], &first).ok("ADD lana");
    let mut other_network = lab.xlan_config("1.0.0", "lanb");
    other_network["ipam"]["dataDir"] = first["ipam"]["dataDir"].clone();
    let reply = lab.call("xlan", "ADD", Some(&lab.attachment(2)), &[], &other_network);
    assert_eq!(reply.error_code("a second network on the master"), 7);
    assert!(reply.message().contains("lana"), "{}", reply.message());
    let mut other_mode = first.clone();
    other_mode["mode"] = json!("private");
    let reply = lab.call("xlan", "ADD", Some(&lab.attachment(2)), &[], &other_mode);
    assert_eq!(reply.error_code("the same network in another mode"), 7);
    assert!(reply.message().contains("mode bridge (asked: private)"), "{}", reply.message());
    // Another container id for the first attachment's namespace and interface.
    let mut impostor = lab.attachment(1);
    impostor.container_id = "other".into();
    let reply = lab.call("xlan", "ADD", Some(&impostor), &[], &first);
    assert_eq!(reply.error_code("another container at the same place"), 4);
    assert!(reply.message().contains("CNI_NETNS/CNI_IFNAME"), "{}", reply.message());
    // Nothing of the refused ADDs: sandbox 2 is empty, only the first attachment's address is held.
    assert_eq!(xlan_tests::link::names(&lab.sandboxes[1]).unwrap(), vec!["lo".to_string()]);
    assert_eq!(lab.plugins.allocations("lana").len() + lab.plugins.allocations("lanb").len(), 1);
    lab.call("xlan", "DEL", Some(&lab.attachment(1)), &[], &first).ok("DEL");
    assert_nothing_left(&lab, "lana", "DEL");
}

#[test]
fn a_prev_result_is_kept_and_extended_when_chained() {
    let lab = lab(1);
    let prev = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{ "name": "host0", "mac": "02:00:00:00:00:99" }],
        "ips": [{ "address": "192.0.2.5/24", "interface": 0 }],
        "dns": { "nameservers": ["192.0.2.53"] },
    });
    let config = plugin_config("1.0.0", "lan", lab.xlan_config("1.0.0", "lan"), Some(&prev));
    let result = lab.call("xlan", "ADD", Some(&lab.attachment(1)), &[], &config).ok("ADD chained");
    assert_eq!(cni::shape_problems("1.0.0", &result), Vec::<String>::new(), "{result}");
    assert_eq!(result["interfaces"][0]["name"], "host0");
    assert_eq!(result["interfaces"][1]["name"], "eth0");
    assert_eq!(result["ips"][0]["address"], "192.0.2.5/24");
    assert_eq!(result["ips"][1]["interface"], 1);
    assert_eq!(result["dns"]["nameservers"], json!(["192.0.2.53"]));
    lab.call("xlan", "DEL", Some(&lab.attachment(1)), &[], &config).ok("DEL");
    assert_nothing_left(&lab, "lan", "DEL");
}

#[test]
fn every_driver_attaches_checks_and_detaches() {
    let lab = lab(1);
    // The local VTEP address of the VXLAN network.
    xlan_tests::link::add_address(&lab.host, "uplink", "10.99.0.2/24").unwrap();
    let drivers = [
        ("ipvlan l2", json!({ "driver": "ipvlan", "mode": "l2" }), true),
        // l3: the endpoint's traffic is routed by the host, which this lab does not set up: attached and checked.
        ("ipvlan l3", json!({ "driver": "ipvlan", "mode": "l3", "flag": "private" }), false),
        (
            "vxlan",
            json!({ "driver": "vxlan", "mode": null, "vni": 42, "remotes": ["10.99.0.7"], "dstport": 4789 }),
            false,
        ),
        ("macvlan private", json!({ "mode": "private", "mtu": 1400 }), true),
    ];
    for (what, settings, reaches_gateway) in drivers {
        let name = what.replace(' ', "");
        let mut config = lab.xlan_config("1.0.0", &name);
        for (key, value) in settings.as_object().unwrap() {
            config[key] = value.clone();
        }
        let attachment = lab.attachment(1);
        let result = lab.call("xlan", "ADD", Some(&attachment), &[], &config).ok(&format!("{what}: ADD"));
        assert_eq!(cni::shape_problems("1.0.0", &result), Vec::<String>::new(), "{what}: {result}");
        if reaches_gateway {
            assert!(ping(&lab, 1, GATEWAY), "{what}: the gateway is unreachable");
        }
        if let Some(mtu) = config.get("mtu") {
            let link: Value =
                serde_json::from_str(&lab.sandboxes[0].ip(&["-j", "link", "show", "eth0"]).unwrap()).unwrap();
            assert_eq!(&link[0]["mtu"], mtu, "{what}");
            assert_eq!(&result["interfaces"][0]["mtu"], mtu, "{what}");
        }
        let check = plugin_config("1.0.0", &name, config.clone(), Some(&result));
        lab.call("xlan", "CHECK", Some(&attachment), &[], &check).ok(&format!("{what}: CHECK"));
        lab.call("xlan", "DEL", Some(&attachment), &[], &check).ok(&format!("{what}: DEL"));
        assert_nothing_left(&lab, &name, what);
        // The master takes one macvlan or ipvlan network: this one goes before the next driver's.
        lab.xlan(&["network", "delete", &name]).unwrap();
    }
}

/// Two networks on VLANs of one master (`uplink.10`, `uplink.20`), done in BPF, with the same subnet: each VLAN's
/// sandboxes reach each other, nothing crosses to the other VLAN (a sniffer in its sandboxes sees no frame of the
/// sender), and the untagged outside node (the gateway) is on neither.
#[test]
fn networks_on_two_vlans_of_one_master_are_apart() {
    let lab = lab(4);
    let mut results = Vec::new();
    for n in 1..=4 {
        let name = if n <= 2 { "lan10" } else { "lan20" };
        let mut config = lab.xlan_config("1.0.0", name);
        config["master"] = json!(if n <= 2 { "uplink.10" } else { "uplink.20" });
        results.push(lab.call("xlan", "ADD", Some(&lab.attachment(n)), &[], &config).ok(&format!("ADD {n} on {name}")));
    }
    let address = |n: usize| cni::first_ipv4(&results[n - 1]).expect("an address").to_string();
    let mac = |n: usize| results[n - 1]["interfaces"][0]["mac"].as_str().expect("mac").to_string();
    let vlans: Vec<_> = lab.networks().as_array().expect("networks").iter().map(|n| n["vlan"].clone()).collect();
    assert_eq!(vlans, [json!(10), json!(20)], "one network per VLAN");
    // The same subnet on both VLANs: host-local hands out the same addresses in each.
    assert_eq!((address(1), address(2)), (address(3), address(4)), "the same addresses on both VLANs");
    let watch: Vec<_> =
        [3, 4].iter().map(|n| Sniffer::start(&lab.sandboxes[n - 1], "eth0").expect("sniffer")).collect();
    assert!(ping(&lab, 1, &address(2)), "VLAN 10: sandbox 1 reaches sandbox 2");
    assert!(!ping(&lab, 1, GATEWAY), "VLAN 10 does not reach the untagged outside node");
    for (sniffer, n) in watch.into_iter().zip([3, 4]) {
        let seen = sniffer.finish().expect("sniffer");
        assert!(!seen.contains_key(&mac(1)), "a frame of VLAN 10's sandbox 1 reached VLAN 20's sandbox {n}: {seen:?}");
    }
    assert!(ping(&lab, 3, &address(4)), "VLAN 20: sandbox 3 reaches sandbox 4");
    for n in 1..=4 {
        let name = if n <= 2 { "lan10" } else { "lan20" };
        let mut config = lab.xlan_config("1.0.0", name);
        config["master"] = json!(if n <= 2 { "uplink.10" } else { "uplink.20" });
        lab.call("xlan", "DEL", Some(&lab.attachment(n)), &[], &config).ok(&format!("DEL {n}"));
    }
    assert_eq!(lab.endpoints(), Vec::<String>::new(), "endpoints left");
}
