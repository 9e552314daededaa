//! `cargo xtask`: the project's single entry point for setting up a machine, building the eBPF datapath and the
//! userspace side, running the demo lab, the test suite, the benchmark and the datapath fuzzer. On a fresh Debian 12 machine
//! `cargo xtask test` installs everything it needs (see `setup`) and runs the whole suite.

mod build;
mod launch;
mod paths;
mod process;
mod setup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::build::Profile;
use crate::launch::Launch;
use crate::process::ChildExit;

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Build, run and test xlan")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the Debian packages and bpf-linker the build needs (idempotent).
    Setup,
    /// Run setup, then build the eBPF datapath and the userspace binaries.
    Build {
        /// Build the userspace side in the debug profile (the eBPF object is always built in release).
        #[arg(long)]
        debug: bool,
    },
    /// Build, then run the demo lab (`xlan-lab`); arguments after `--` are passed to it.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then run the whole test suite; arguments after `--` are passed to the test harness.
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then run the benchmark (kernel vs xlan vs the limit); arguments after `--` go to `xlan-bench`.
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then fuzz every datapath program through BPF_PROG_TEST_RUN under every driver, checking the invariants
    /// on every frame; prints the seed and frames/second per program. Arguments after `--` go to the test harness.
    Fuzz {
        /// Frames per program (spread over the scenarios).
        #[arg(long, default_value_t = 100_000)]
        frames: u64,
        /// The seed (decimal or 0x-hex); a fresh one by default. A failure prints the seed that reproduces it.
        #[arg(long, value_parser = parse_seed)]
        seed: Option<u64>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn parse_seed(text: &str) -> Result<u64, String> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|e| format!("{text}: {e}"))
}

/// A seed nobody chose: the time, and the process.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            // `run` and `test` forward their child's exit status; every other failure is status 1.
            let code = err.downcast_ref::<ChildExit>().map_or(1, ChildExit::code);
            ExitCode::from(code)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Setup => setup::run().map(|_| ()),
        Command::Build { debug } => {
            let profile = if debug { Profile::Debug } else { Profile::Release };
            build::run(profile, &mut build::Steps::new(3)).map(|_| ())
        }
        Command::Run { args } => launch::run(Launch::Lab, &args),
        Command::Test { args } => launch::run(Launch::Suite, &args),
        Command::Bench { args } => launch::run(Launch::Bench, &args),
        Command::Fuzz { frames, seed, args } => {
            launch::run(Launch::Fuzz { frames, seed: seed.unwrap_or_else(fresh_seed) }, &args)
        }
    }
}
