//! Bad input to `xlan`: exactly one line on stderr, exit status 1, and nothing left behind — no new interfaces in the
//! host or endpoint namespaces, no new pinned BPF objects, no change in `xlan network list` or in the networks' own
//! views (an ipvlan network's endpoints and routes, the VXLAN forwarding tables).

use std::path::Path;
use std::process::Output;

use anyhow::Result;
use serde_json::Value;
use xlan_tests::{cmd, link, unique_prefix, xlan, Netns, XlanHost};

/// The MAC of net0's parent, which no endpoint may take.
const UPLINK_MAC: &str = "02:77:00:00:00:fe";

/// A namespace name nobody creates (asserted absent before use).
const MISSING_NETNS: &str = "nosuchns";

const VXLAN_PARENT: &str = "vxul";
const VXLAN_NETWORK: &str = "vx0";
const IPVLAN_PARENT: &str = "ipvul";
const IPVLAN_NETWORK: &str = "ipv0";

/// (what is wrong, the whole xlan command line)
type Cases = Vec<(&'static str, Vec<String>)>;

/// A host namespace with five veth parents and four xlan networks, one fixture for every driver's cases:
/// - `net0`: macvlan bridge mode on `uplink`, with endpoint `eth0` in `endpoint`;
/// - `pt0`: macvlan passthru mode on `uplink2`, with its one endpoint `eth0` in `passthru_endpoint`;
/// - `vx0`: VXLAN, VNI 42, on `vxul` (which has an IPv4 address, the VTEP's), no flood list, no endpoint;
/// - `ipv0`: l3 ipvlan on `ipvul`, with endpoint `eth0` in `ipvlan_endpoint`, owning 10.78.0.11/24 and fd78::11/64,
///   with route 10.210.0.0/24 behind it;
/// - `spare`: a parent no network uses; `fresh`: an endpoint namespace with no endpoint yet.
struct Fixture {
    // Dropped first: deletes the networks (every driver's) while the namespaces still exist.
    xlan: XlanHost,
    endpoint: Netns,
    ipvlan_endpoint: Netns,
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
        let ipvlan_endpoint = Netns::create(&format!("{prefix}e4"))?;
        for parent in ["uplink", "uplink2", "spare", VXLAN_PARENT, IPVLAN_PARENT] {
            link::add_veth_pair(&host, parent, &format!("{parent}-p"))?;
        }
        link::add_address(&host, VXLAN_PARENT, "10.99.0.1/24")?;
        link::set(&host, "uplink", &["address", UPLINK_MAC])?;
        let mut xlan = XlanHost::new(&host)?;
        xlan.create_network("net0", &macvlan_options("uplink", "bridge"))?;
        xlan.run(&endpoint_add("net0", endpoint.name(), Some("02:77:00:00:00:11"), "10.77.0.11/24"))?;
        xlan.create_network("pt0", &macvlan_options("uplink2", "passthru"))?;
        xlan.run(&endpoint_add("pt0", passthru_endpoint.name(), None, "10.77.1.11/24"))?;
        xlan.create_network(VXLAN_NETWORK, &vxlan_options("42", &["--subnet", "10.42.0.0/24"]))?;
        xlan.create_network(IPVLAN_NETWORK, &["--driver", "ipvlan", "--parent", IPVLAN_PARENT, "--mode", "l3"])?;
        let fixture = Fixture { xlan, endpoint, ipvlan_endpoint, fresh, passthru_endpoint, host };
        let ipvlan_endpoint = fixture.ipvlan_endpoint.name();
        fixture.xlan.run(&[
            "endpoint",
            "add",
            IPVLAN_NETWORK,
            "--netns",
            ipvlan_endpoint,
            "--ip",
            "10.78.0.11/24",
            "--ip",
            "fd78::11/64",
        ])?;
        fixture.xlan.run(&["route", "add", IPVLAN_NETWORK, "10.210.0.0/24", "--endpoint", ipvlan_endpoint])?;
        Ok(fixture)
    }

    /// Everything a rejected command must leave as it was: interfaces, pins, the network list, the ipvlan network's
    /// own view (endpoints with their addresses, routes) and every VXLAN network's forwarding table.
    fn snapshot(&self) -> Result<Snapshot> {
        let links = [&self.host, &self.endpoint, &self.ipvlan_endpoint, &self.fresh, &self.passthru_endpoint]
            .into_iter()
            .map(|netns| Ok((netns.name().to_string(), link::names(netns)?)))
            .collect::<Result<_>>()?;
        let json = |args: &[&str]| -> Result<Value> { Ok(serde_json::from_str(&self.xlan.run(args)?)?) };
        Ok(Snapshot {
            links,
            pinned: list_tree(&xlan::bpffs_dir(self.host.name())),
            views: vec![
                ("network list --json", self.xlan.network_list()?),
                ("network show ipv0 --json", json(&["network", "show", IPVLAN_NETWORK, "--json"])?),
                ("route show ipv0 --json", json(&["route", "show", IPVLAN_NETWORK, "--json"])?),
                ("fdb show --json", json(&["fdb", "show", "--json"])?),
            ],
        })
    }

    fn macvlan_cases(&self) -> Cases {
        let (host, endpoint, fresh) = (self.host.name(), self.endpoint.name(), self.fresh.name());
        let add = |network, netns, mac, ip| with_netns(host, &endpoint_add(network, netns, mac, ip));
        let create = |host, name, parent, mode| with_netns(host, &network_create(name, &macvlan_options(parent, mode)));
        let ipam = |extra: &[&str]| {
            with_netns(host, &[&network_create("bad7", &macvlan_options("spare", "bridge"))[..], extra].concat())
        };
        vec![
            ("bad MAC string", add("net0", fresh, Some("02:77:zz:00:00:21"), "10.77.0.21/24")),
            ("multicast MAC", add("net0", fresh, Some("01:00:5e:00:00:21"), "10.77.0.21/24")),
            ("all-zero MAC", add("net0", fresh, Some("00:00:00:00:00:00"), "10.77.0.21/24")),
            ("missing parent interface", create(host, "bad0", "nosuchdev", "bridge")),
            ("duplicate network name", create(host, "net0", "spare", "bridge")),
            (
                "duplicate endpoint (same netns, ifname)",
                add("net0", endpoint, Some("02:77:00:00:00:22"), "10.77.0.22/24"),
            ),
            ("unknown network", add("nosuchnet", fresh, Some("02:77:00:00:00:23"), "10.77.0.23/24")),
            ("missing host namespace", create(MISSING_NETNS, "bad1", "spare", "bridge")),
            ("missing endpoint namespace", add("net0", MISSING_NETNS, Some("02:77:00:00:00:24"), "10.77.0.24/24")),
            ("second endpoint on a passthru network", add("pt0", fresh, None, "10.77.1.12/24")),
            ("macaddr add on a non-source network", with_netns(host, &["macaddr", "add", "net0", "02:77:00:00:00:01"])),
            ("unknown mode", create(host, "bad2", "spare", "bogus")),
            ("loopback parent", create(host, "bad3", "lo", "bridge")),
            ("--gateway outside the subnet", ipam(&["--subnet", "10.50.0.0/24", "--gateway", "10.51.0.1"])),
            ("--ip-range outside the subnet", ipam(&["--subnet", "10.50.0.0/24", "--ip-range", "10.51.0.0/25"])),
            ("--ip-range wider than the subnet", ipam(&["--subnet", "10.50.0.0/24", "--ip-range", "10.50.0.0/16"])),
            ("--aux-address outside the subnet", ipam(&["--subnet", "10.50.0.0/24", "--aux-address", "r=10.51.0.2"])),
            ("--aux-address without a name", ipam(&["--subnet", "10.50.0.0/24", "--aux-address", "10.50.0.2"])),
            ("two IPv4 --subnets", ipam(&["--subnet", "10.50.0.0/24", "--subnet", "10.52.0.0/24"])),
            ("--subnet with host bits", ipam(&["--subnet", "10.50.0.9/24"])),
            // net0 is the fixture's first network (id 1): its endpoint's host-side veth is xl1p0.
            ("an xlan endpoint's host-side veth as the parent", create(host, "bad3", "xl1p0", "bridge")),
            ("endpoint MAC equal to the parent's", add("net0", fresh, Some(UPLINK_MAC), "10.77.0.21/24")),
            ("an IPv4 address another endpoint of the LAN has", add("net0", fresh, None, "10.77.0.11/24")),
            ("the subnet's network address", add("net0", fresh, None, "10.77.0.0/24")),
            ("the subnet's broadcast address", add("net0", fresh, None, "10.77.0.255/24")),
            ("a /0 address", add("net0", fresh, None, "10.77.0.21/0")),
        ]
    }

    fn vxlan_cases(&self) -> Cases {
        let host = self.host.name();
        let vxlan = |vni, extra: &[&str]| with_netns(host, &network_create("bad3", &vxlan_options(vni, extra)));
        vec![
            ("VNI 0", vxlan("0", &[])),
            ("VNI 16777216 (2^24)", vxlan("16777216", &[])),
            (
                "vxlan without --vni",
                with_netns(host, &["network", "create", "bad3", "--driver", "vxlan", "--parent", VXLAN_PARENT]),
            ),
            (
                "--vni on a macvlan network",
                with_netns(
                    host,
                    &network_create("bad3", &[&macvlan_options("spare", "bridge")[..], &["--vni", "5"]].concat()),
                ),
            ),
            ("--remote together with --group", vxlan("43", &["--remote", "10.99.0.2", "--group", "239.1.1.1"])),
            ("non-multicast --group", vxlan("43", &["--group", "10.99.0.5"])),
            ("--remote 300.1.1.1", vxlan("43", &["--remote", "300.1.1.1"])),
            ("multicast --remote", vxlan("43", &["--remote", "239.1.1.1"])),
            ("--local nonsense", vxlan("43", &["--local", "nonsense"])),
            ("--local 0.0.0.0", vxlan("43", &["--local", "0.0.0.0"])),
            ("--dstport 0", vxlan("43", &["--dstport", "0"])),
            ("a subnet overlapping another network's on the parent", vxlan("43", &["--subnet", "10.42.0.0/16"])),
            ("--learning with --no-learning", vxlan("43", &["--learning", "--no-learning"])),
            ("duplicate VNI on a parent", vxlan("42", &[])),
            ("fdb add without --dst", with_netns(host, &["fdb", "add", VXLAN_NETWORK, "02:77:00:00:00:31"])),
            (
                "fdb add with --dst 0.0.0.0",
                with_netns(host, &["fdb", "add", VXLAN_NETWORK, "02:77:00:00:00:31", "--dst", "0.0.0.0"]),
            ),
            (
                "fdb add of a multicast MAC",
                with_netns(host, &["fdb", "add", VXLAN_NETWORK, "01:00:5e:00:00:31", "--dst", "10.99.0.2"]),
            ),
            ("fdb del of a missing entry", with_netns(host, &["fdb", "del", VXLAN_NETWORK, "02:77:00:00:00:32"])),
            (
                "fdb add on a macvlan network",
                with_netns(host, &["fdb", "add", "net0", "02:77:00:00:00:31", "--dst", "10.99.0.2"]),
            ),
            ("fdb show of a macvlan network", with_netns(host, &["fdb", "show", "net0"])),
            (
                "fdb add on an unknown network",
                with_netns(host, &["fdb", "add", "nosuchnet", "02:77:00:00:00:31", "--dst", "10.99.0.2"]),
            ),
        ]
    }

    fn ipvlan_cases(&self) -> Cases {
        let (host, ipvlan_endpoint, fresh) = (self.host.name(), self.ipvlan_endpoint.name(), self.fresh.name());
        let ipvlan = |args: &[&str]| with_netns(host, args);
        vec![
            (
                "ipvlan address in use (another endpoint owns it)",
                ipvlan(&["endpoint", "add", "ipv0", "--netns", fresh, "--ip", "10.78.0.11/24"]),
            ),
            (
                "ipvlan address in use (the second of two addresses)",
                ipvlan(&["endpoint", "add", "ipv0", "--netns", fresh, "--ip", "10.78.0.22/24", "--ip", "fd78::11/64"]),
            ),
            (
                "--flag with a macvlan network",
                ipvlan(&["network", "create", "mv9", "--driver", "macvlan", "--parent", "spare", "--flag", "private"]),
            ),
            (
                "unknown ipvlan mode",
                ipvlan(&["network", "create", "ipv9", "--driver", "ipvlan", "--parent", "spare", "--mode", "l4"]),
            ),
            ("ipvlan endpoint without --ip", ipvlan(&["endpoint", "add", "ipv0", "--netns", fresh])),
            (
                "--mac on an ipvlan endpoint",
                ipvlan(&[
                    "endpoint",
                    "add",
                    "ipv0",
                    "--netns",
                    fresh,
                    "--mac",
                    "02:78:00:00:00:21",
                    "--ip",
                    "10.78.0.21/24",
                ]),
            ),
            ("route del of a route that does not exist", ipvlan(&["route", "del", "ipv0", "10.200.0.0/24"])),
            (
                "route add for an endpoint that does not exist (namespace without one)",
                ipvlan(&["route", "add", "ipv0", "10.201.0.0/24", "--endpoint", fresh]),
            ),
            (
                "route add for an endpoint that does not exist (wrong interface name)",
                ipvlan(&["route", "add", "ipv0", "10.202.0.0/24", "--endpoint", ipvlan_endpoint, "--ifname", "eth9"]),
            ),
            (
                "route add for an endpoint that does not exist (missing namespace)",
                ipvlan(&["route", "add", "ipv0", "10.203.0.0/24", "--endpoint", MISSING_NETNS]),
            ),
        ]
    }
}

/// `--driver vxlan --vni VNI --parent vxul [extra...]`.
fn vxlan_options<'a>(vni: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&["--driver", "vxlan", "--vni", vni, "--parent", VXLAN_PARENT][..], extra].concat()
}

/// `endpoint add NETWORK --netns NS --ifname eth0 [--mac MAC] --ip IP`.
fn endpoint_add<'a>(network: &'a str, netns: &'a str, mac: Option<&'a str>, ip: &'a str) -> Vec<&'a str> {
    let mut args = vec!["endpoint", "add", network, "--netns", netns, "--ifname", "eth0"];
    if let Some(mac) = mac {
        args.extend(["--mac", mac]);
    }
    args.extend(["--ip", ip]);
    args
}

/// `--driver macvlan --parent PARENT --mode MODE`.
fn macvlan_options<'a>(parent: &'a str, mode: &'a str) -> Vec<&'a str> {
    vec!["--driver", "macvlan", "--parent", parent, "--mode", mode]
}

/// `network create NAME options...`.
fn network_create<'a>(name: &'a str, options: &[&'a str]) -> Vec<&'a str> {
    [&["network", "create", name][..], options].concat()
}

/// `--netns HOST args...`: xlan's global options go before the subcommand.
fn with_netns(host: &str, args: &[&str]) -> Vec<String> {
    ["--netns", host].iter().chain(args).map(|arg| arg.to_string()).collect()
}

struct Snapshot {
    /// (namespace, its interface names)
    links: Vec<(String, Vec<String>)>,
    /// Paths under xlan's bpffs directory for the host namespace.
    pinned: Vec<String>,
    /// (xlan command, its JSON output)
    views: Vec<(&'static str, Value)>,
}

impl Snapshot {
    /// What differs in `after`, one message per change.
    fn changes_to(&self, after: &Snapshot) -> Vec<String> {
        let mut changes = Vec::new();
        for ((netns, links_before), (_, links_after)) in self.links.iter().zip(&after.links) {
            changes.extend(set_changes(&format!("interfaces in {netns}"), links_before, links_after));
        }
        changes.extend(set_changes("pinned paths", &self.pinned, &after.pinned));
        for ((command, before), (_, after)) in self.views.iter().zip(&after.views) {
            if before != after {
                changes.push(format!("`{command}` changed from {before} to {after}"));
            }
        }
        changes
    }
}

/// "WHAT: added [..], removed [..]" if the two sorted lists differ.
fn set_changes(what: &str, before: &[String], after: &[String]) -> Option<String> {
    let added: Vec<&String> = after.iter().filter(|item| !before.contains(item)).collect();
    let removed: Vec<&String> = before.iter().filter(|item| !after.contains(item)).collect();
    (!added.is_empty() || !removed.is_empty()).then(|| format!("{what}: added {added:?}, removed {removed:?}"))
}

/// All paths below `dir`, relative to it and sorted; empty if `dir` does not exist.
fn list_tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            found.push(path.strip_prefix(root).unwrap_or(&path).display().to_string());
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
        let status = output.status.code().map_or_else(|| output.status.to_string(), |code| code.to_string());
        problems.push(format!("exit status {status} (want 1)"));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    if lines.len() != 1 || lines[0].trim().is_empty() {
        problems.push(format!("stderr has {} lines (want exactly one message line): {stderr:?}", lines.len()));
    }
    problems
}

fn fixture() -> Fixture {
    if let Err(err) = xlan::binary() {
        panic!("the CLI error tests need the xlan binary: {err:#}");
    }
    Fixture::build().unwrap_or_else(|err| panic!("building the fixture: {err:#}"))
}

/// Runs each (what, command line) against the fixture; returns one message per mishandled case.
fn rejection_failures(fixture: &Fixture, cases: Cases) -> Vec<String> {
    let missing_paths = [
        Path::new("/run/netns").join(MISSING_NETNS),
        xlan::bpffs_dir(MISSING_NETNS),
        Path::new("/run/xlan").join(MISSING_NETNS),
        Path::new(xlan::CONFIG_ROOT).join(MISSING_NETNS),
    ];
    assert!(missing_paths.iter().all(|path| !path.exists()), "precondition: none of {missing_paths:?} may exist");
    let mut failures = Vec::new();
    for (what, args) in cases {
        let before = fixture.snapshot().unwrap_or_else(|err| panic!("snapshot before {what:?}: {err:#}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = xlan::command(&args).expect("binary checked by fixture()");
        let output = cmd::output(&mut command).unwrap_or_else(|err| panic!("{err:#}"));
        let mut problems = rejection_problems(&output);
        let after = fixture.snapshot().unwrap_or_else(|err| panic!("snapshot after {what:?}: {err:#}"));
        problems.extend(before.changes_to(&after));
        problems.extend(missing_paths.iter().filter(|path| path.exists()).map(|path| format!("created {path:?}")));
        if problems.is_empty() {
            println!("{what}: {}", String::from_utf8_lossy(&output.stderr).trim_end());
        } else {
            failures.push(format!("{what}: `xlan {}`\n    {}", args.join(" "), problems.join("\n    ")));
        }
    }
    failures
}

#[test]
fn bad_input_is_rejected_with_one_line_and_leaves_nothing_behind() {
    let fixture = fixture();
    let failures = rejection_failures(&fixture, [fixture.macvlan_cases(), fixture.vxlan_cases()].concat());
    assert!(failures.is_empty(), "{} of the bad inputs were mishandled:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn bad_ipvlan_input_is_rejected_with_one_line_and_leaves_nothing_behind() {
    let fixture = fixture();
    let failures = rejection_failures(&fixture, fixture.ipvlan_cases());
    assert!(
        failures.is_empty(),
        "{} of the bad ipvlan inputs were mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A prefix is a prefix whatever host bits it is written with: 10.210.0.9/24 is the 10.210.0.0/24 the fixture
/// already routes to `ipvlan_endpoint`. Accepting it would give two routes in the state for one entry in the datapath's
/// trie — the second overwriting the first's endpoint, and deleting either removing both from the datapath while
/// `route show` still lists the other.
#[test]
fn ipvlan_route_add_of_an_already_routed_prefix_is_rejected() {
    let fixture = fixture();
    let (host, endpoint) = (fixture.host.name(), fixture.ipvlan_endpoint.name());
    let cases = vec![(
        "route add of the routed prefix with host bits set (10.210.0.9/24 for 10.210.0.0/24)",
        with_netns(host, &["route", "add", "ipv0", "10.210.0.9/24", "--endpoint", endpoint]),
    )];
    let failures = rejection_failures(&fixture, cases);
    assert!(failures.is_empty(), "{} aliased routes were mishandled:\n{}", failures.len(), failures.join("\n"));
}

/// `xlan … | head` is normal use: a reader that has gone away is no error. Every printing command, into a pipe
/// whose read end is already closed, exits 0 without a word on stderr (no "Broken pipe" panic).
#[test]
fn output_to_a_closed_pipe_is_not_an_error() {
    let fixture = fixture();
    let host = fixture.host.name();
    let commands: [&[&str]; 6] = [
        &["network", "list"],
        &["network", "show", "net0", "--json"],
        &["stats", "--json"],
        &["fdb", "show"],
        &["route", "show", IPVLAN_NETWORK],
        &["--help"],
    ];
    let mut failures = Vec::new();
    for args in commands {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe(2)");
        // SAFETY: both descriptors are ours and open; the read end is closed at once, the write end handed over.
        let (read_end, write_end) = unsafe {
            use std::os::fd::FromRawFd;
            (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1]))
        };
        drop(read_end);
        let args = with_netns(host, args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = xlan::command(&args).expect("binary checked by fixture()");
        command.stdout(write_end);
        let output = cmd::output(&mut command).unwrap_or_else(|err| panic!("{err:#}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() || !stderr.is_empty() {
            failures.push(format!("`xlan {}`: {} with stderr {stderr:?}", args.join(" "), output.status));
        }
    }
    assert!(failures.is_empty(), "output into a closed pipe:\n{}", failures.join("\n"));
}
