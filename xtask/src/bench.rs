//! `cargo xtask bench`: to be written (issue 3). It will look like `suite::run`: build with `build::run`, then
//! run the benchmark binary with the artifacts exported.

use anyhow::{bail, Result};

pub fn run() -> Result<()> {
    bail!("bench is not implemented yet (issue 3)")
}
