//! podman (Debian's 4.3, its CNI backend) running containers on an xlan network through the CNI plugin (issue #12),
//! hermetic as ../shared/docs/containers.md describes: podman run with `nsenter --net=` in the test's host namespace
//! (so the plugin runs there and its master is the host's `uplink`), its root, runroot, containers.conf, conflist
//! directory and plugin directory all the test's own, containers made from a busybox rootfs directory. Two containers
//! reach each other and the outside node; `podman rm` leaves no endpoint, port, address or cached result.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::json;
use xlan_tests::cmd;
use xlan_tests::cni::{CniLab, GATEWAY};

/// Where libcni (in podman) caches ADD results; not configurable through containers.conf.
const RESULT_CACHE: &str = "/var/lib/cni/results";

/// One podman at a time: the podmans of two tests at once have been seen to time out waiting for each other's
/// container exit files (their defaults are shared host-wide, /run/libpod, beyond what the options below move).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// podman with everything under the lab's directory (its tmp_dir too); `podman rm -f --all` on drop.
struct Podman {
    lab: CniLab,
    _alone: std::sync::MutexGuard<'static, ()>,
    network: String,
    root: PathBuf,
    /// The network namespaces podman made for the test's containers (/run/netns/netns-UUID): removed on drop if
    /// podman could not (a container it failed to stop leaves its namespace behind).
    sandboxes: std::cell::RefCell<Vec<String>>,
}

impl Podman {
    fn start() -> Option<Podman> {
        let missing: Vec<&str> = ["/usr/bin/podman", "/bin/busybox", "/usr/lib/cni/host-local"]
            .into_iter()
            .filter(|path| !Path::new(path).exists())
            .collect();
        if !missing.is_empty() {
            eprintln!("skipped: {} missing (cargo xtask setup installs podman and busybox-static)", missing.join(", "));
            return None;
        }
        let alone = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let lab = xlan_tests::ok(CniLab::build(0), "build the lab");
        let root = lab.plugins.root().join("podman");
        let network = format!("{}lan", lab.host.name());
        let podman = Podman { lab, _alone: alone, network, root, sandboxes: Default::default() };
        xlan_tests::ok(podman.prepare(), "prepare podman's directories");
        Some(podman)
    }

    /// containers.conf, the conflist and a busybox rootfs.
    fn prepare(&self) -> Result<()> {
        let cni_dir = self.root.join("cni");
        let rootfs = self.rootfs();
        for dir in [cni_dir.clone(), rootfs.join("etc"), rootfs.join("proc"), rootfs.join("sys")] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        xlan_tests::docker::busybox_rootfs(&rootfs)?;
        let conf = format!(
            "[engine]\ntmp_dir = \"{}\"\n[network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"{}\"\n\
             cni_plugin_dirs = [\"{}\", \"{}\"]\n",
            self.root.join("tmp").display(),
            cni_dir.display(),
            self.lab.plugins.bin_dir().display(),
            xlan_tests::cni::REFERENCE_DIR,
        );
        std::fs::write(self.root.join("containers.conf"), conf)?;
        self.add_conflist(&self.network, "uplink")
    }

    /// A conflist for network `name` on `master` (macvlan bridge, host-local on the lab's subnet).
    fn add_conflist(&self, name: &str, master: &str) -> Result<()> {
        let conflist = json!({
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [{ "type": "xlan", "master": master, "mode": "bridge",
                "ipam": self.lab.plugins.host_local(xlan_tests::cni::SUBNET, GATEWAY) }],
        });
        let path = self.root.join("cni").join(format!("{name}.conflist"));
        std::fs::write(path, serde_json::to_vec_pretty(&conflist)?)?;
        Ok(())
    }

    fn rootfs(&self) -> PathBuf {
        self.root.join("rootfs")
    }

    /// `podman ARGS` in the host namespace.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = cmd::command("nsenter", &[format!("--net=/run/netns/{}", self.lab.host.name())]);
        command
            .env("CONTAINERS_CONF", self.root.join("containers.conf"))
            .arg("podman")
            .arg("--root")
            .arg(self.root.join("root"))
            .arg("--runroot")
            .arg(self.root.join("run"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        cmd::run(&mut self.command(args))
    }

    /// A container `name` on the xlan network, sleeping; `options` go before `--rootfs` (podman reads what follows
    /// the rootfs as the command).
    fn start_container(&self, name: &str, options: &[&str]) -> Result<()> {
        self.start_container_on(&self.network, name, options)
    }

    /// `start_container` on the network `network`.
    fn start_container_on(&self, network: &str, name: &str, options: &[&str]) -> Result<()> {
        let rootfs = self.rootfs();
        let rootfs = rootfs.to_str().context("rootfs path")?;
        let args = ["run", "-d", "--name", name, "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
        let network = ["--network", network];
        let args = [&args[..], &network, options, &["--rootfs", rootfs, "/bin/sleep", "600"]].concat();
        self.run(&args)?;
        let sandbox = self.run(&["inspect", "--format", "{{.NetworkSettings.SandboxKey}}", name])?;
        self.sandboxes.borrow_mut().push(sandbox.trim().to_string());
        Ok(())
    }

    /// The container's IPv4 address on eth0.
    fn address(&self, name: &str) -> Result<String> {
        let shown = self.run(&["exec", name, "ip", "-4", "-o", "addr", "show", "eth0"])?;
        let cidr = shown.split_whitespace().skip_while(|w| *w != "inet").nth(1).context("no inet")?;
        Ok(cidr.split('/').next().unwrap_or_default().to_string())
    }

    fn pings(&self, name: &str, address: &str) -> bool {
        cmd::succeeds(&mut self.command(&["exec", name, "ping", "-c1", "-W2", address]))
    }

    /// Result files libcni cached for this network.
    fn cached_results(&self) -> Vec<String> {
        std::fs::read_dir(RESULT_CACHE)
            .map(|dir| {
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&self.network))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Err(err) = self.run(&["rm", "-f", "--all"]) {
            eprintln!("xlan-tests: warning: {err:#}");
        }
        // podman's storage may hold mounts under its root; `system reset` unmounts and removes them.
        if let Err(err) = self.run(&["system", "reset", "-f"]) {
            eprintln!("xlan-tests: warning: {err:#}");
        }
        // What podman left of the test's own containers when it failed: their namespaces, and the results libcni
        // cached for the test's networks (all named after the lab's host namespace, unique to the run).
        for sandbox in self.sandboxes.borrow().iter() {
            let Some(name) = sandbox.strip_prefix("/run/netns/") else { continue };
            if Path::new(sandbox).exists() {
                let _ = cmd::run(&mut cmd::command("ip", &["netns", "delete", name]));
            }
        }
        let ours = self.lab.host.name().to_string();
        for entry in std::fs::read_dir(RESULT_CACHE).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&ours) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[test]
fn two_podman_containers_on_an_xlan_network_reach_each_other_and_the_outside() {
    let Some(podman) = Podman::start() else { return };
    let names = [format!("{}a", podman.network), format!("{}b", podman.network)];
    xlan_tests::ok(podman.start_container(&names[0], &[]), "podman run (first)");
    // --mac-address and --ip reach the plugin as CNI_ARGS MAC= (xlan's) and IP= (host-local's).
    let options = ["--mac-address", "02:00:00:00:00:42", "--ip", "10.88.0.77"];
    xlan_tests::ok(podman.start_container(&names[1], &options), "podman run (second, with MAC and IP)");
    let a = xlan_tests::ok(podman.address(&names[0]), "address of the first container");
    let b = xlan_tests::ok(podman.address(&names[1]), "address of the second container");
    assert_eq!(b, "10.88.0.77", "--ip");
    let link = xlan_tests::ok(podman.run(&["exec", &names[1], "ip", "link", "show", "eth0"]), "ip link in b");
    assert!(link.contains("02:00:00:00:00:42"), "--mac-address: {link}");
    assert!(podman.pings(&names[0], &b), "container a → b ({b})");
    assert!(podman.pings(&names[1], &a), "container b → a ({a})");
    assert!(podman.pings(&names[0], GATEWAY), "container a → the outside");
    let outside = &podman.lab.outside;
    assert!(cmd::succeeds(&mut outside.command("ping", &["-c1", "-W2", &b])), "the outside → container b");
    assert_eq!(podman.lab.endpoints().len(), 2, "{:?}", podman.lab.endpoints());

    for name in &names {
        xlan_tests::ok(podman.run(&["rm", "-f", name]), format!("podman rm {name}"));
    }
    assert_eq!(podman.lab.endpoints(), Vec::<String>::new(), "endpoints left after podman rm");
    assert_eq!(podman.lab.ports(), Vec::<String>::new(), "ports left after podman rm");
    assert_eq!(podman.lab.plugins.allocations(&podman.network), Vec::<String>::new(), "addresses left");
    assert_eq!(podman.cached_results(), Vec::<String>::new(), "cached results left");
    assert_eq!(podman.lab.doctor_findings(), json!([]), "the doctor finds problems");
    // The network itself stays (README, "CNI plugin"): made on the first ADD, kept for the next container.
    assert_eq!(podman.lab.networks()[0]["name"], json!(podman.network));
}

/// One network on `uplink.10` and one on `uplink.20` (VLANs done in BPF), the same subnet on both: containers of
/// one VLAN reach each other (on both VLANs: the failed ping across is no broken container), a container of the
/// other VLAN reaches neither (not even the address its own VLAN does not have), and `podman rm` leaves nothing.
#[test]
fn networks_on_two_vlans_of_one_master_are_isolated() {
    let Some(podman) = Podman::start() else { return };
    let (net10, net20) = (format!("{}v10", podman.lab.host.name()), format!("{}v20", podman.lab.host.name()));
    xlan_tests::ok(podman.add_conflist(&net10, "uplink.10"), "conflist on uplink.10");
    xlan_tests::ok(podman.add_conflist(&net20, "uplink.20"), "conflist on uplink.20");
    // d20 gets an address no container of VLAN 10 has (each network's IPAM hands out .2, .3 alike): c20 reaching it
    // says nothing about the VLANs' isolation.
    let containers =
        [(&net10, "a10", None), (&net10, "b10", None), (&net20, "c20", None), (&net20, "d20", Some("10.88.0.99"))];
    for (network, name, ip) in containers {
        let options: Vec<&str> = ip.map_or_else(Vec::new, |ip| vec!["--ip", ip]);
        xlan_tests::ok(podman.start_container_on(network, name, &options), format!("container {name} on {network}"));
    }
    let b10 = xlan_tests::ok(podman.address("b10"), "address of b10");
    let d20 = xlan_tests::ok(podman.address("d20"), "address of d20");
    assert!(podman.pings("a10", &b10), "VLAN 10: a10 → b10 ({b10})");
    assert!(podman.pings("c20", &d20), "VLAN 20: c20 → d20 ({d20})");
    assert!(!podman.pings("c20", &b10), "VLAN 20's c20 reached VLAN 10's b10 ({b10})");
    assert!(!podman.pings("a10", GATEWAY), "VLAN 10 reached the untagged outside node");
    let vlans: Vec<_> = podman.lab.networks().as_array().expect("networks").iter().map(|n| n["vlan"].clone()).collect();
    assert_eq!(vlans, [json!(10), json!(20)], "one xlan network per VLAN");
    for name in ["a10", "b10", "c20", "d20"] {
        xlan_tests::ok(podman.run(&["rm", "-f", name]), format!("podman rm {name}"));
    }
    assert_eq!(podman.lab.endpoints(), Vec::<String>::new(), "endpoints left after podman rm");
    assert_eq!(podman.lab.doctor_findings(), json!([]), "the doctor finds problems");
}
