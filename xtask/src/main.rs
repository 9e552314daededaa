//! `cargo xtask`: the project's single entry point for setting up a machine, building the eBPF datapath and the
//! userspace side, running the demo lab and running the test suite. On a fresh Debian 12 machine
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
    }
}
