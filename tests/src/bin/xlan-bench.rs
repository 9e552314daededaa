//! xlan-bench: kernel macvlan vs xlan vs the limit, in namespaces; prints a table (or `--json`) and writes
//! report.json and report.svg. `cargo xtask bench [-- ARGS]` builds and runs it; `--help` lists the options.
//! Ctrl-C (or SIGTERM) stops the load at once and tears everything down before exiting.

use anyhow::Result;
use xlan_tests::bench::{options, runner, scenario, table, write_outputs, Options};
use xlan_tests::program;

fn run(options: Options) -> Result<()> {
    if options.list {
        for scenario in scenario::catalog(&options.settings.fdb_sizes) {
            println!("{:<36} {}", scenario.id, scenario.title);
        }
        return Ok(());
    }
    program::stop_on_signals()?;
    let report = runner::run(&options.settings, program::stop_flag())?;
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
    // --help, and a command line clap rejects, end here, as clap ends them (stdout and 0, stderr and 2).
    let options = options::parse(std::env::args().skip(1)).unwrap_or_else(|err| err.exit());
    // run() returns only after its guards (topologies, servers) have cleaned up.
    program::exit("xlan-bench", run(options));
}
