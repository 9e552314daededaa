//! `cargo xtask test`: build everything (installing what a fresh machine lacks), then run the whole test suite.

use anyhow::Result;

use crate::build::{self, Profile, Steps};
use crate::{paths, process};

/// The tests create network namespaces and attach programs; two cores, two threads.
const TEST_THREADS: &str = "--test-threads=2";

pub fn run(harness_args: &[String]) -> Result<()> {
    let mut steps = Steps::new(4);
    let artifacts = build::run(Profile::Release, &mut steps)?;

    steps.start("running the test suite");
    let mut cmd = process::host_cargo();
    cmd.current_dir(paths::workspace_root())
        .args(["test", "--release", "--workspace", "--", TEST_THREADS])
        .args(harness_args);
    artifacts.export_to(&mut cmd);
    process::run_foreground(&mut cmd, "the test suite")
}
