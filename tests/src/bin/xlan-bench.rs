//! xlan-bench: kernel macvlan vs xlan vs the limit, in namespaces; prints a table (or `--json`) and writes
//! report.json and report.svg. `cargo xtask bench [-- ARGS]` builds and runs it; `--help` lists the options.
//! Ctrl-C (or SIGTERM) stops the load at once and tears everything down before exiting.

use anyhow::Result;
use xlan_tests::bench::{broadcast, options, runner, scenario, table, write_outputs, Options};
use xlan_tests::program;

fn run(options: Options) -> Result<()> {
    if options.list {
        for scenario in scenario::catalog(&options.settings.fdb_sizes) {
            println!("{:<36} {}", scenario.id, scenario.title);
        }
        return Ok(());
    }
    program::stop_on_signals()?;
    let settings = &options.settings;
    if !settings.broadcast_sizes.is_empty() {
        let sizes: Vec<usize> = settings.broadcast_sizes.iter().map(|&size| size as usize).collect();
        let rows = broadcast::run(&sizes, &settings.flooders, settings.runs, settings.duration, program::stop_flag())?;
        std::fs::create_dir_all(&options.out_dir)?;
        let path = options.out_dir.join("broadcast.json");
        std::fs::write(&path, serde_json::to_string_pretty(&broadcast::to_json(&rows))? + "\n")?;
        print!("{}", broadcast::render(&rows));
        println!("\nwrote {}", path.display());
        return Ok(());
    }
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
