//! xlan-bench: kernel macvlan vs xlan vs the limit, in namespaces; prints a table (or `--json`) and writes
//! report.json and report.svg. `cargo xtask bench [-- ARGS]` builds and runs it; `--help` lists the options.
//! Ctrl-C (or SIGTERM) stops the load at once and tears everything down before exiting.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use xlan_tests::bench::{options, runner, scenario, table, write_outputs};
use xlan_tests::cmd;

/// Set by SIGINT/SIGTERM; the generator and the runner check it, and the guards clean up on the way out.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn run() -> Result<()> {
    let options = options::parse(std::env::args().skip(1))?;
    if options.list {
        for scenario in scenario::catalog(&options.settings.fdb_sizes) {
            println!("{:<36} {}", scenario.id, scenario.title);
        }
        return Ok(());
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if unsafe { libc::signal(signal, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) }
            == libc::SIG_ERR
        {
            return Err(std::io::Error::last_os_error()).context("installing the signal handler");
        }
    }
    let report = runner::run(&options.settings, &STOP)?;
    write_outputs(&report, &options.out_dir)?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", table::render(&report));
        println!("\nwrote {0}/report.json and {0}/report.svg", options.out_dir.display());
    }
    Ok(())
}

fn main() {
    // run() returns only after its guards (topologies, servers) have cleaned up.
    let status = match run() {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("xlan-bench: {}", cmd::one_line(&format!("{err:#}")));
            1
        }
    };
    std::process::exit(status);
}
