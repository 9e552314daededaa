//! `cargo xtask run`, `test` and `bench`: build everything (installing what a fresh machine lacks), then run one
//! program in the foreground with the artifacts' locations in its environment (XLAN_BIN, XLAN_DATAPATH_OBJ):
//! - run: the demo lab, `xlan-lab` (a bin of the tests package); ARGS go to it (`-- --help` lists them);
//! - test: the habits first (rustfmt over every crate, clippy with the workspace's lints, warnings denied), then the
//!   whole test suite, `cargo test --release --workspace`; ARGS go to the test harness;
//! - bench: the benchmark, `xlan-bench` (a bin of the tests package), its report going to `target/bench/`
//!   (report.json, report.svg); ARGS go to it (`-- --help` lists them);
//! - fuzz: the datapath fuzzer, the `fuzz` test of the xlan package with XLAN_FUZZ_FRAMES frames per program and the
//!   seed XLAN_FUZZ_SEED, its output shown (the seed, frames/second per program); ARGS go to the test harness.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Result};

use crate::build::{self, Artifacts, Profile, Steps};
use crate::{paths, process};

/// The tests create network namespaces and attach programs; two cores, two threads.
const TEST_THREADS: &str = "--test-threads=2";

/// What to run once the build is done.
#[derive(Clone, Copy)]
pub enum Launch {
    Lab,
    Suite,
    Bench,
    Fuzz { frames: u64, seed: u64 },
}

impl Launch {
    /// The step's banner, and the name failures are reported under.
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Launch::Lab => ("running the lab (Ctrl-C stops it and cleans up)", "xlan-lab"),
            Launch::Suite => ("running the test suite", "the test suite"),
            Launch::Bench => ("running the benchmark (Ctrl-C stops it and cleans up)", "xlan-bench"),
            Launch::Fuzz { .. } => ("running the datapath fuzzer", "the fuzzer"),
        }
    }

    /// The command line, with `args` where they belong.
    fn command(self, artifacts: &Artifacts, args: &[String]) -> Result<Command> {
        Ok(match self {
            Launch::Lab => {
                let mut cmd = Command::new(tests_bin(artifacts, "xlan-lab")?);
                cmd.args(args);
                cmd
            }
            Launch::Suite => {
                let mut cmd = process::host_cargo();
                cmd.current_dir(paths::workspace_root())
                    .args(["test", "--release", "--workspace", "--", TEST_THREADS])
                    .args(args)
                    // Setup installed docker.io: the Docker driver tests must run, not skip.
                    .env("XLAN_REQUIRE_DOCKER", "1");
                cmd
            }
            Launch::Bench => {
                let mut cmd = Command::new(tests_bin(artifacts, "xlan-bench")?);
                // First, so that an --out-dir in ARGS wins.
                cmd.arg("--out-dir").arg(paths::host_target_dir().join("bench")).args(args);
                cmd
            }
            Launch::Fuzz { frames, seed } => {
                let mut cmd = process::host_cargo();
                cmd.current_dir(paths::workspace_root())
                    .args(["test", "--release", "--package", "xlan", "--test", "fuzz", "--", "--nocapture"])
                    .args(args)
                    .env("XLAN_FUZZ_FRAMES", frames.to_string())
                    .env("XLAN_FUZZ_SEED", format!("{seed:#x}"));
                cmd
            }
        })
    }
}

/// Builds (release), then runs `launch` in the foreground; its exit status becomes xtask's.
pub fn run(launch: Launch, args: &[String]) -> Result<()> {
    let lints = matches!(launch, Launch::Suite);
    let mut steps = Steps::new(if lints { 5 } else { 4 });
    let artifacts = build::run(Profile::Release, &mut steps)?;
    if lints {
        steps.start("checking formatting (rustfmt) and lints (clippy)");
        check_habits(&artifacts)?;
    }
    let mut cmd = launch.command(&artifacts, args)?;
    let (banner, what) = launch.describe();
    steps.start(banner);
    artifacts.export_to(&mut cmd);
    process::run_foreground(&mut cmd, what)
}

/// rustfmt over every crate (the eBPF crate is outside the workspace: its sources are checked by path) and clippy
/// over the workspace with warnings denied (the product crates deny unwrap/expect, see [workspace.lints]).
fn check_habits(artifacts: &Artifacts) -> Result<()> {
    let root = paths::workspace_root();
    let mut fmt = process::host_cargo();
    fmt.current_dir(root).args(["fmt", "--all", "--check"]);
    process::run(&mut fmt, "rustfmt over the workspace (fix: cargo fmt --all)")?;
    let mut fmt_ebpf = Command::new("rustfmt");
    fmt_ebpf.current_dir(root).args(["--check", "--edition", "2021", "datapath-ebpf/src/main.rs"]);
    process::run(&mut fmt_ebpf, "rustfmt over datapath-ebpf (fix: rustfmt --edition 2021 datapath-ebpf/src/main.rs)")?;
    let mut clippy = process::host_cargo();
    clippy.current_dir(root).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    artifacts.export_to(&mut clippy);
    process::run(&mut clippy, "clippy")
}

/// A binary of the tests package (xlan-tests), which the build makes next to xlan.
fn tests_bin(artifacts: &Artifacts, name: &str) -> Result<PathBuf> {
    let path = artifacts.bin_dir.join(name);
    if !path.is_file() {
        bail!("{} was not built (the tests package should define the `{name}` bin)", path.display());
    }
    Ok(path)
}
