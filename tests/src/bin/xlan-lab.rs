//! xlan-lab: the demo lab (`cargo xtask run [-- ARGS]`; `--help` lists the options). Builds one virtual LAN in
//! namespaces from the test topologies, prints it and its reachability matrix, then prints the per-endpoint counters
//! every 2 s while pings run once a second, until Ctrl-C or SIGTERM. Everything is removed on the way out.
//!
//! - macvlan (default): the conformance topology, bridge mode, with xlan (`--kernel`: the kernel's driver); the
//!   outside node pings every endpoint.
//! - ipvlan: the ipvlan scenarios' topology, l2 bridge by default (`--mode l3`, `--flag private|vepa`); xlan only
//!   (this kernel has no ipvlan driver); the outside node pings every endpoint.
//! - vxlan: three VTEP hosts on an underlay switch, one endpoint behind each, VNI 42 with head-end replication;
//!   xlan on every host (`--kernel`: the kernel's vxlan); every endpoint pings the next one.

use std::fmt;
use std::net::IpAddr;
use std::process::{Child, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};
use serde_json::{json, Value};
use xlan_tests::counters::{self, EndpointCounters};
use xlan_tests::ipvlan::{IpvlanFlag, IpvlanMode, IpvlanTopology};
use xlan_tests::topology::NETWORK;
use xlan_tests::vxlan::{EndpointSpec, NetworkSpec, Vtep, VxlanLab};
use xlan_tests::{cmd, program, xlan, Backend, Family, Matrix, Mode, Netns, Node, Probed, Topology};

const COUNTERS_INTERVAL: Duration = Duration::from_secs(2);
/// The vxlan lab's hosts (A, B, C), one endpoint behind each.
const VXLAN_HOSTS: usize = 3;
const VXLAN_VNI: u32 = 42;

/// xlan-lab: a virtual LAN in namespaces (xlan's macvlan, bridge mode, by default), its reachability matrix, then
/// per-endpoint counters every 2 s under pings until Ctrl-C; everything is removed on the way out.
#[derive(Parser, Debug)]
#[command(name = "xlan-lab", args_override_self = true)]
struct Cli {
    /// Build, measure, print one counters table, clean up and exit.
    #[arg(long)]
    once: bool,
    /// Print the topology, matrix and counters as JSON (one object per line) instead of text.
    #[arg(long)]
    json: bool,
    /// The virtual LAN to build.
    #[arg(long, value_enum, default_value_t = Driver::Macvlan)]
    driver: Driver,
    /// macvlan: bridge (default), private, vepa, passthru, source; ipvlan: l2 (default), l3.
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// ipvlan: bridge (default), private, vepa.
    #[arg(long, value_name = "FLAG")]
    flag: Option<String>,
    /// macvlan: let the host reach its endpoints (xlan only).
    #[arg(long, conflicts_with = "kernel")]
    host_access: bool,
    /// Use the kernel's driver instead of xlan, the reference (macvlan, vxlan; this kernel has no ipvlan);
    /// counters then come from the endpoints' interfaces.
    #[arg(long)]
    kernel: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Driver {
    Macvlan,
    Ipvlan,
    Vxlan,
}

/// The lab the command line asks for.
enum Lab {
    Macvlan { mode: Mode, backend: Backend },
    Ipvlan { mode: IpvlanMode, flag: IpvlanFlag },
    Vxlan { vtep: Vtep },
}

impl Cli {
    /// The lab, or clap's usage error for options that do not go with the driver.
    fn lab(&self) -> Result<Lab, clap::Error> {
        let only_for = |option: &str, drivers: &str| {
            Cli::command().error(ErrorKind::ArgumentConflict, format!("{option} is for {drivers} only"))
        };
        let (macvlan, ipvlan) = (self.driver == Driver::Macvlan, self.driver == Driver::Ipvlan);
        if self.flag.is_some() && !ipvlan {
            return Err(only_for("--flag", "--driver ipvlan"));
        }
        if self.mode.is_some() && !(macvlan || ipvlan) {
            return Err(only_for("--mode", "--driver macvlan and ipvlan"));
        }
        if self.host_access && !macvlan {
            return Err(only_for("--host-access", "--driver macvlan"));
        }
        if self.kernel && ipvlan {
            let message = "--kernel is for --driver macvlan and vxlan only: this kernel has no ipvlan driver";
            return Err(Cli::command().error(ErrorKind::ArgumentConflict, message));
        }
        Ok(match self.driver {
            Driver::Macvlan => Lab::Macvlan {
                mode: parse(self.mode.as_ref(), Mode::Bridge)?,
                backend: match self.kernel {
                    true => Backend::Kernel,
                    false => Backend::Xlan { host_access: self.host_access, xdp_hook: false },
                },
            },
            Driver::Ipvlan => Lab::Ipvlan {
                mode: parse(self.mode.as_ref(), IpvlanMode::L2)?,
                flag: parse(self.flag.as_ref(), IpvlanFlag::Bridge)?,
            },
            Driver::Vxlan => Lab::Vxlan { vtep: if self.kernel { Vtep::Kernel } else { Vtep::Xlan } },
        })
    }
}

/// The value of an option that has a default, or clap's usage error for a value that does not parse.
fn parse<T: FromStr<Err = anyhow::Error>>(value: Option<&String>, default: T) -> Result<T, clap::Error> {
    value.map_or(Ok(default), |text| {
        text.parse().map_err(|err| Cli::command().error(ErrorKind::InvalidValue, format!("{err}")))
    })
}

impl Lab {
    /// Where the counters come from, for the text output.
    fn counters_source(&self) -> String {
        match self {
            Lab::Macvlan { backend: Backend::Kernel, .. } | Lab::Vxlan { vtep: Vtep::Kernel } => {
                "endpoint interface statistics".to_string()
            }
            Lab::Vxlan { vtep: Vtep::Xlan } => format!("xlan stats {NETWORK} on each host"),
            Lab::Macvlan { .. } | Lab::Ipvlan { .. } => format!("xlan stats {NETWORK}"),
        }
    }
}

/// What the lab shows of a topology, whichever driver built it.
trait Shown: Probed + fmt::Display {
    fn to_json(&self) -> Value;
    fn counters(&self) -> Result<Vec<(Node, EndpointCounters)>>;
}

/// `Shown` for the one-host topologies, whose own `to_json` and `endpoint_counters` say it all.
macro_rules! shown_as_is {
    ($($topology:ty),+) => {
        $(
            impl Shown for $topology {
                fn to_json(&self) -> Value {
                    <$topology>::to_json(self)
                }

                fn counters(&self) -> Result<Vec<(Node, EndpointCounters)>> {
                    self.endpoint_counters()
                }
            }
        )+
    };
}
shown_as_is!(Topology, IpvlanTopology);

/// The background pings (source, destination), one a second each: the outside node pings every endpoint; without
/// one (vxlan), every endpoint pings the next one (the last the first), so that each one sends and receives.
fn pings(lab: &impl Shown) -> Vec<(Node, Node)> {
    let nodes = lab.probed_nodes();
    let endpoints: Vec<Node> = nodes.iter().copied().filter(|node| matches!(node, Node::Endpoint(_))).collect();
    if nodes.contains(&Node::Outside) {
        endpoints.iter().map(|&endpoint| (Node::Outside, endpoint)).collect()
    } else {
        endpoints.iter().zip(endpoints.iter().cycle().skip(1)).map(|(&src, &dst)| (src, dst)).collect()
    }
}

/// The vxlan lab with its one network, as the lab shows it.
struct VxlanDemo(VxlanLab);

impl VxlanDemo {
    /// Hosts A, B, C (every one `vtep`), network `net0` with head-end replication, endpoint eN behind the Nth host.
    fn build(vtep: Vtep) -> Result<VxlanDemo> {
        let mut lab = VxlanLab::build(&[vtep; VXLAN_HOSTS])?;
        lab.add_network(NetworkSpec::new(NETWORK, VXLAN_VNI))?;
        for host in 0..VXLAN_HOSTS {
            let node = Node::Endpoint(host as u8 + 1);
            lab.add_endpoint(host, NETWORK, EndpointSpec::new(node))?;
        }
        Ok(VxlanDemo(lab))
    }
}

impl Probed for VxlanDemo {
    fn probed_nodes(&self) -> Vec<Node> {
        self.0.view(NETWORK).probed_nodes()
    }

    fn probed_netns(&self, node: Node) -> &Netns {
        self.0.endpoint(NETWORK, node).map(|endpoint| endpoint.netns()).unwrap_or_else(|err| panic!("{err:#}"))
    }
}

impl fmt::Display for VxlanDemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Shown for VxlanDemo {
    fn to_json(&self) -> Value {
        self.0.to_json()
    }

    fn counters(&self) -> Result<Vec<(Node, EndpointCounters)>> {
        self.0.endpoint_counters(NETWORK)
    }
}

/// Background pings, one a second each; killed on drop, before the namespaces go (a process left in a namespace
/// would keep it alive after `ip netns del`).
struct Pingers(Vec<Child>);

impl Pingers {
    fn start(lab: &impl Shown, pings: &[(Node, Node)]) -> Result<Pingers> {
        let mut pingers = Pingers(Vec::new());
        for &(src, dst) in pings {
            let addr: IpAddr = lab.probed_addr(dst, Family::V4);
            let mut ping = lab.probed_netns(src).command("ping", &["-n", "-q", "-i", "1", &addr.to_string()]);
            let child = ping
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting `{}`", cmd::describe(&ping)))?;
            pingers.0.push(child);
        }
        Ok(pingers)
    }
}

impl Drop for Pingers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn print_counters(lab: &impl Shown, source: &str, json: bool, started: Instant) -> Result<()> {
    let rows = lab.counters()?;
    let elapsed = started.elapsed().as_secs();
    if json {
        println!("{}", json!({"elapsed_s": elapsed, "counters": counters::to_json(&rows)}));
    } else {
        println!("counters at +{elapsed}s ({source}):\n{}", counters::table(&rows));
    }
    Ok(())
}

/// Shows a built lab: the topology and its matrix, then the counters (once, or every 2 s under pings until a signal).
fn show(lab: &impl Shown, cli: &Cli, counters_source: &str, started: Instant) -> Result<()> {
    if program::stopped() {
        return Ok(());
    }
    if !cli.json {
        println!("{lab}");
    }
    let matrix = Matrix::measure(lab)?;
    if cli.json {
        let mut document = json!({"topology": lab.to_json(), "matrix": matrix.to_json()});
        if cli.once {
            document["counters"] = counters::to_json(&lab.counters()?);
        }
        println!("{document}");
    } else {
        println!("reachability:\n{matrix}");
    }
    if cli.once {
        if !cli.json {
            print_counters(lab, counters_source, cli.json, started)?;
        }
        return Ok(());
    }

    let pings = pings(lab);
    let _pingers = Pingers::start(lab, &pings)?;
    if !cli.json {
        let pairs: Vec<String> = pings.iter().map(|(src, dst)| format!("{src} -> {dst}")).collect();
        println!("pinging once a second ({}); Ctrl-C stops and cleans up\n", pairs.join(", "));
    }
    while program::sleep_unless_stopped(COUNTERS_INTERVAL) {
        print_counters(lab, counters_source, cli.json, started)?;
    }
    Ok(())
}

fn run(cli: &Cli, lab: Lab) -> Result<()> {
    program::stop_on_signals()?;
    let uses_xlan = !matches!(lab, Lab::Macvlan { backend: Backend::Kernel, .. } | Lab::Vxlan { vtep: Vtep::Kernel });
    if uses_xlan {
        xlan::binary()?;
    }
    let (started, source) = (Instant::now(), lab.counters_source());
    // Each topology is dropped (and so removed) when `show` returns.
    match lab {
        Lab::Macvlan { mode, backend } => show(&Topology::build(mode, backend)?, cli, &source, started),
        Lab::Ipvlan { mode, flag } => show(&IpvlanTopology::build(mode, flag)?, cli, &source, started),
        Lab::Vxlan { vtep } => show(&VxlanDemo::build(vtep)?, cli, &source, started),
    }
}

fn main() {
    let cli = Cli::parse();
    // Options that do not go with the driver end here, as clap ends a bad command line (stderr, status 2).
    let lab = cli.lab().unwrap_or_else(|err| err.exit());
    // run() returns only after its guards (pingers, xlan networks, namespaces) have cleaned up.
    program::exit("xlan-lab", run(&cli, lab));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(line: &str) -> Result<Lab, clap::Error> {
        Cli::try_parse_from(std::iter::once("xlan-lab").chain(line.split_whitespace()))?.lab()
    }

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn each_driver_takes_its_own_options() {
        let is_default_macvlan =
            |lab| matches!(lab, Lab::Macvlan { mode: Mode::Bridge, backend: Backend::Xlan { host_access: false, .. } });
        assert!(is_default_macvlan(lab("").unwrap()));
        assert!(matches!(
            lab("--mode source --kernel").unwrap(),
            Lab::Macvlan { mode: Mode::Source, backend: Backend::Kernel }
        ));
        assert!(matches!(
            lab("--driver ipvlan --mode l3 --flag vepa").unwrap(),
            Lab::Ipvlan { mode: IpvlanMode::L3, flag: IpvlanFlag::Vepa }
        ));
        assert!(matches!(lab("--driver vxlan --kernel").unwrap(), Lab::Vxlan { vtep: Vtep::Kernel }));
        for bad in [
            "--kernel --host-access",
            "--mode l3",
            "--flag private",
            "--driver ipvlan --kernel",
            "--driver ipvlan --mode bridge",
            "--driver ipvlan --host-access",
            "--driver vxlan --mode l2",
            "--driver bogus",
        ] {
            assert!(lab(bad).is_err(), "{bad:?} must be rejected");
        }
        assert_eq!(lab("--help").err().map(|err| err.kind()), Some(ErrorKind::DisplayHelp));
    }
}
