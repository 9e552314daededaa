//! Bad input to `xlan`: exactly one line on stderr, exit status 1, and nothing left behind — no new interfaces in the
//! host or endpoint namespaces, no new pinned BPF objects, no change in `xlan network list`.

use std::path::Path;
use std::process::Output;

use anyhow::Result;
use serde_json::Value;
use xlan_tests::{cmd, unique_prefix, xlan, Netns, XlanHost};

/// A namespace name nobody creates (asserted absent before use).
const MISSING_NETNS: &str = "nosuchns";

/// A host namespace with three veth parents and two xlan networks:
/// - `net0`: bridge mode on `uplink`, with endpoint `eth0` in `endpoint`;
/// - `pt0`: passthru mode on `uplink2`, with its one endpoint `eth0` in `passthru_endpoint`;
/// - `spare`: a parent no network uses; `fresh`: an endpoint namespace with no endpoint yet.
struct Fixture {
    // Dropped first: deletes the networks while the namespaces still exist.
    xlan: XlanHost,
    endpoint: Netns,
    fresh: Netns,
    passthru_endpoint: Netns,
    host: Netns,
}

impl Fixture {
    fn build() -> Result<Fixture> {
        let prefix = unique_prefix();
        let host = Netns::create(&format!("{prefix}h"))?;
        let endpoint = Netns::create(&format!("{prefix}e1"))?;
        let fresh = Netns::create(&format!("{prefix}e2"))?;
        let passthru_endpoint = Netns::create(&format!("{prefix}e3"))?;
        for parent in ["uplink", "uplink2", "spare"] {
            let peer = format!("{parent}-p");
            host.ip(&["link", "add", parent, "type", "veth", "peer", "name", &peer])?;
            host.ip(&["link", "set", parent, "up"])?;
            host.ip(&["link", "set", &peer, "up"])?;
        }
        let mut xlan = XlanHost::new(&host)?;
        xlan.create_network("net0", "uplink", "bridge", &[])?;
        xlan.run(&endpoint_add(
            "net0",
            endpoint.name(),
            Some("02:77:00:00:00:11"),
            "10.77.0.11/24",
        ))?;
        xlan.create_network("pt0", "uplink2", "passthru", &[])?;
        xlan.run(&endpoint_add(
            "pt0",
            passthru_endpoint.name(),
            None,
            "10.77.1.11/24",
        ))?;
        Ok(Fixture {
            xlan,
            endpoint,
            fresh,
            passthru_endpoint,
            host,
        })
    }

    /// Everything a rejected command must leave as it was.
    fn snapshot(&self) -> Result<Snapshot> {
        let links = [
            &self.host,
            &self.endpoint,
            &self.fresh,
            &self.passthru_endpoint,
        ]
        .into_iter()
        .map(|netns| Ok((netns.name().to_string(), netns.link_names()?)))
        .collect::<Result<_>>()?;
        Ok(Snapshot {
            links,
            pinned: list_tree(&xlan::bpffs_dir(self.host.name())),
            networks: self.xlan.network_list()?,
        })
    }

    /// (what is wrong, the whole xlan command line)
    fn cases(&self) -> Vec<(&'static str, Vec<String>)> {
        let (host, endpoint, fresh) = (self.host.name(), self.endpoint.name(), self.fresh.name());
        let add =
            |network, netns, mac, ip| with_netns(host, &endpoint_add(network, netns, mac, ip));
        let create =
            |host, name, parent, mode| with_netns(host, &network_create(name, parent, mode));
        vec![
            (
                "bad MAC string",
                add("net0", fresh, Some("02:77:zz:00:00:21"), "10.77.0.21/24"),
            ),
            (
                "multicast MAC",
                add("net0", fresh, Some("01:00:5e:00:00:21"), "10.77.0.21/24"),
            ),
            (
                "all-zero MAC",
                add("net0", fresh, Some("00:00:00:00:00:00"), "10.77.0.21/24"),
            ),
            (
                "missing parent interface",
                create(host, "bad0", "nosuchdev", "bridge"),
            ),
            (
                "duplicate network name",
                create(host, "net0", "spare", "bridge"),
            ),
            (
                "duplicate endpoint (same netns, ifname)",
                add("net0", endpoint, Some("02:77:00:00:00:22"), "10.77.0.22/24"),
            ),
            (
                "unknown network",
                add(
                    "nosuchnet",
                    fresh,
                    Some("02:77:00:00:00:23"),
                    "10.77.0.23/24",
                ),
            ),
            (
                "missing host namespace",
                create(MISSING_NETNS, "bad1", "spare", "bridge"),
            ),
            (
                "missing endpoint namespace",
                add(
                    "net0",
                    MISSING_NETNS,
                    Some("02:77:00:00:00:24"),
                    "10.77.0.24/24",
                ),
            ),
            (
                "second endpoint on a passthru network",
                add("pt0", fresh, None, "10.77.1.12/24"),
            ),
            (
                "macaddr add on a non-source network",
                with_netns(host, &["macaddr", "add", "net0", "02:77:00:00:00:01"]),
            ),
            ("unknown mode", create(host, "bad2", "spare", "bogus")),
        ]
    }
}

/// `endpoint add NETWORK --netns NS --ifname eth0 [--mac MAC] --ip IP`.
fn endpoint_add<'a>(
    network: &'a str,
    netns: &'a str,
    mac: Option<&'a str>,
    ip: &'a str,
) -> Vec<&'a str> {
    let mut args = vec![
        "endpoint", "add", network, "--netns", netns, "--ifname", "eth0",
    ];
    if let Some(mac) = mac {
        args.extend(["--mac", mac]);
    }
    args.extend(["--ip", ip]);
    args
}

/// `network create NAME --driver macvlan --parent PARENT --mode MODE`.
fn network_create<'a>(name: &'a str, parent: &'a str, mode: &'a str) -> Vec<&'a str> {
    vec![
        "network", "create", name, "--driver", "macvlan", "--parent", parent, "--mode", mode,
    ]
}

/// `--netns HOST args...`: xlan's global options go before the subcommand.
fn with_netns(host: &str, args: &[&str]) -> Vec<String> {
    ["--netns", host]
        .iter()
        .chain(args)
        .map(|arg| arg.to_string())
        .collect()
}

struct Snapshot {
    /// (namespace, its interface names)
    links: Vec<(String, Vec<String>)>,
    /// Paths under xlan's bpffs directory for the host namespace.
    pinned: Vec<String>,
    networks: Value,
}

impl Snapshot {
    /// What differs in `after`, one message per change.
    fn changes_to(&self, after: &Snapshot) -> Vec<String> {
        let mut changes = Vec::new();
        for ((netns, links_before), (_, links_after)) in self.links.iter().zip(&after.links) {
            changes.extend(set_changes(
                &format!("interfaces in {netns}"),
                links_before,
                links_after,
            ));
        }
        changes.extend(set_changes("pinned paths", &self.pinned, &after.pinned));
        if self.networks != after.networks {
            changes.push(format!(
                "`network list --json` changed from {} to {}",
                self.networks, after.networks
            ));
        }
        changes
    }
}

/// "WHAT: added [..], removed [..]" if the two sorted lists differ.
fn set_changes(what: &str, before: &[String], after: &[String]) -> Option<String> {
    let added: Vec<&String> = after.iter().filter(|item| !before.contains(item)).collect();
    let removed: Vec<&String> = before.iter().filter(|item| !after.contains(item)).collect();
    (!added.is_empty() || !removed.is_empty())
        .then(|| format!("{what}: added {added:?}, removed {removed:?}"))
}

/// All paths below `dir`, relative to it and sorted; empty if `dir` does not exist.
fn list_tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            found.push(
                path.strip_prefix(root)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
            );
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                walk(root, &path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found.sort();
    found
}

/// What is wrong with how xlan rejected the input (empty if it did it right).
fn rejection_problems(output: &Output) -> Vec<String> {
    let mut problems = Vec::new();
    if output.status.code() != Some(1) {
        let status = output
            .status
            .code()
            .map_or_else(|| output.status.to_string(), |code| code.to_string());
        problems.push(format!("exit status {status} (want 1)"));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    if lines.len() != 1 || lines[0].trim().is_empty() {
        problems.push(format!(
            "stderr has {} lines (want exactly one message line): {stderr:?}",
            lines.len()
        ));
    }
    problems
}

#[test]
fn bad_input_is_rejected_with_one_line_and_leaves_nothing_behind() {
    if let Err(err) = xlan::binary() {
        panic!("the CLI error tests need the xlan binary: {err:#}");
    }
    let missing_paths = [
        Path::new("/run/netns").join(MISSING_NETNS),
        xlan::bpffs_dir(MISSING_NETNS),
        Path::new("/run/xlan").join(MISSING_NETNS),
    ];
    assert!(
        missing_paths.iter().all(|path| !path.exists()),
        "precondition: none of {missing_paths:?} may exist"
    );
    let fixture = Fixture::build().unwrap_or_else(|err| panic!("building the fixture: {err:#}"));

    let mut failures = Vec::new();
    for (what, args) in fixture.cases() {
        let before = fixture
            .snapshot()
            .unwrap_or_else(|err| panic!("snapshot before {what:?}: {err:#}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = xlan::command(&args).expect("binary checked above");
        let output = cmd::output(&mut command).unwrap_or_else(|err| panic!("{err:#}"));
        let mut problems = rejection_problems(&output);
        let after = fixture
            .snapshot()
            .unwrap_or_else(|err| panic!("snapshot after {what:?}: {err:#}"));
        problems.extend(before.changes_to(&after));
        problems.extend(
            missing_paths
                .iter()
                .filter(|path| path.exists())
                .map(|path| format!("created {path:?}")),
        );
        if !problems.is_empty() {
            failures.push(format!(
                "{what}: `xlan {}`\n    {}",
                args.join(" "),
                problems.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the bad inputs were mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
