//! `cargo xtask run`: build, then run the demo lab in the foreground.

use std::process::Command;

use anyhow::{bail, Result};

use crate::build::{self, Profile, Steps};
use crate::process;

pub fn run(args: &[String]) -> Result<()> {
    let mut steps = Steps::new(4);
    let artifacts = build::run(Profile::Release, &mut steps)?;

    // xlan-lab is a bin of the tests package (xlan-tests).
    let lab = artifacts.bin_dir.join("xlan-lab");
    if !lab.is_file() {
        bail!("{} was not built (the tests package should define the `xlan-lab` bin)", lab.display());
    }
    steps.start("running the lab (Ctrl-C stops it and cleans up)");
    let mut cmd = Command::new(&lab);
    cmd.args(args);
    artifacts.export_to(&mut cmd);
    process::run_foreground(&mut cmd, "xlan-lab")
}
