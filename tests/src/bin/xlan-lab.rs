//! xlan-lab: the demo lab. Builds the macvlan topology with xlan (bridge mode by default: outside node, switch, host,
//! three endpoints), prints it and its reachability matrix, then prints the per-endpoint counters every 2 s while the
//! outside node pings each endpoint once a second, until Ctrl-C or SIGTERM. Everything is removed on the way out.
//!
//! Usage: xlan-lab [--once] [--json] [--mode MODE] [--host-access] [--kernel]
//!   --once         build, measure, print one counters table, clean up and exit
//!   --json         print the topology, matrix and counters as JSON (one object per line) instead of text
//!   --mode MODE    macvlan mode: bridge (default), private, vepa, passthru, source
//!   --host-access  let the host reach its endpoints (xlan only)
//!   --kernel       use the kernel's macvlan driver instead of xlan (the reference; counters from the interfaces)

use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use xlan_tests::{cmd, counters, xlan, Backend, Matrix, Mode, Node, Topology};

const COUNTERS_INTERVAL: Duration = Duration::from_secs(2);
/// How often the wait between counter tables checks for a signal.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Set by the SIGINT/SIGTERM handler; the main loop then returns and the guards clean up.
static STOP: AtomicBool = AtomicBool::new(false);

struct Options {
    once: bool,
    json: bool,
    mode: Mode,
    backend: Backend,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options> {
    let (mut once, mut json, mut mode, mut kernel, mut host_access) = (false, false, Mode::Bridge, false, false);
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--once" => once = true,
            "--json" => json = true,
            "--kernel" => kernel = true,
            "--host-access" => host_access = true,
            "--mode" => mode = args.next().context("--mode needs a value")?.parse()?,
            "-h" | "--help" => {
                println!("usage: xlan-lab [--once] [--json] [--mode MODE] [--host-access] [--kernel]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let backend = match (kernel, host_access) {
        (true, true) => {
            bail!("--host-access is an xlan feature; it cannot be combined with --kernel")
        }
        (true, false) => Backend::Kernel,
        (false, _) => Backend::Xlan { host_access, xdp_hook: false },
    };
    Ok(Options { once, json, mode, backend })
}

extern "C" fn on_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() -> Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let previous = unsafe { libc::signal(signal, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
        if previous == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error()).context("installing the signal handler");
        }
    }
    Ok(())
}

fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Sleeps for `duration` unless a signal arrives first; returns whether to go on.
fn sleep_unless_stopped(duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    while !stopped() && Instant::now() < deadline {
        thread::sleep(SIGNAL_POLL.min(deadline - Instant::now()));
    }
    !stopped()
}

/// Background pings from the outside node to every endpoint, one per second each; killed on drop, before the
/// namespaces go (a process left in a namespace would keep it alive after `ip netns del`).
struct Pingers(Vec<Child>);

impl Pingers {
    fn start(topology: &Topology) -> Result<Pingers> {
        let mut pingers = Pingers(Vec::new());
        let outside = topology.netns(Node::Outside);
        for node in topology.endpoint_nodes() {
            let mut ping = outside.command("ping", &["-n", "-q", "-i", "1", &node.ipv4().to_string()]);
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

fn print_counters(topology: &Topology, options: &Options, started: Instant) -> Result<()> {
    let rows = topology.endpoint_counters()?;
    let elapsed = started.elapsed().as_secs();
    if options.json {
        println!("{}", json!({"elapsed_s": elapsed, "counters": counters::to_json(&rows)}));
    } else {
        let source = match topology.backend() {
            Backend::Kernel => "endpoint interface statistics".to_string(),
            Backend::Xlan { .. } => format!("xlan stats {}", xlan_tests::topology::NETWORK),
        };
        println!("counters at +{elapsed}s ({source}):\n{}", counters::table(&rows));
    }
    Ok(())
}

fn run() -> Result<()> {
    let options = parse_args(std::env::args().skip(1))?;
    install_signal_handlers()?;
    if matches!(options.backend, Backend::Xlan { .. }) {
        xlan::binary()?;
    }
    let started = Instant::now();
    let topology = Topology::build(options.mode, options.backend)?;
    if stopped() {
        return Ok(());
    }
    if !options.json {
        println!("{topology}");
    }
    let matrix = Matrix::measure(&topology)?;
    if options.json {
        let mut document = json!({"topology": topology.to_json(), "matrix": matrix.to_json()});
        if options.once {
            document["counters"] = counters::to_json(&topology.endpoint_counters()?);
        }
        println!("{document}");
    } else {
        println!("reachability:\n{matrix}");
    }
    if options.once {
        if !options.json {
            print_counters(&topology, &options, started)?;
        }
        return Ok(());
    }

    let _pingers = Pingers::start(&topology)?;
    if !options.json {
        println!("pinging every endpoint from the outside node once a second; Ctrl-C stops and cleans up\n");
    }
    while sleep_unless_stopped(COUNTERS_INTERVAL) {
        print_counters(&topology, &options, started)?;
    }
    Ok(())
}

fn main() {
    // run() returns only after its guards (pingers, xlan network, namespaces) have cleaned up.
    let status = match run() {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("xlan-lab: {}", cmd::one_line(&format!("{err:#}")));
            1
        }
    };
    std::process::exit(status);
}
