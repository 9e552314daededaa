//! `cargo xtask bench [-- ARGS]`: build, then run the benchmark (`xlan-bench`, a bin of the tests package) in the
//! foreground, with its report going to `target/bench/` (report.json, report.svg). ARGS go to xlan-bench
//! (`-- --help` lists them).

use std::process::Command;

use anyhow::{bail, Result};

use crate::build::{self, Profile, Steps};
use crate::{paths, process};

pub fn run(args: &[String]) -> Result<()> {
    let mut steps = Steps::new(4);
    let artifacts = build::run(Profile::Release, &mut steps)?;

    let bench = artifacts.bin_dir.join("xlan-bench");
    if !bench.is_file() {
        bail!("{} was not built (the tests package should define the `xlan-bench` bin)", bench.display());
    }
    steps.start("running the benchmark (Ctrl-C stops it and cleans up)");
    let mut cmd = Command::new(&bench);
    // First, so that an --out-dir in ARGS wins.
    cmd.arg("--out-dir").arg(paths::host_target_dir().join("bench")).args(args);
    artifacts.export_to(&mut cmd);
    process::run_foreground(&mut cmd, "xlan-bench")
}
