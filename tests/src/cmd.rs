//! Running external commands (`ip`, `bridge`, `ethtool`, `ping`, `xlan`) with errors that say what failed.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// A command builder for `program args...`, in its own process group: a Ctrl-C at the terminal then reaches only the
/// harness process (xlan-lab turns it into an orderly cleanup) instead of killing a half-done `ip` or `xlan` command.
/// Every child the harness starts is short-lived or owned by a guard that kills it.
pub fn command<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).process_group(0);
    cmd
}

/// The command line as a shell user would type it, for error messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the command to completion (stdin closed) and returns its output, whatever its exit status.
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot run `{}`", describe(cmd)))
}

/// Runs the command and returns its stdout; a non-zero exit is an error carrying the command's stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    if !out.status.success() {
        bail!("`{}` failed ({}): {}", describe(cmd), out.status, one_line(&String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs the command with all output discarded and tells whether it exited 0 (for probes, where failure is an answer).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// Multi-line tool output folded into one line, so that error messages (and xlan-lab's error line) stay one line.
pub fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        "(no output)".to_string()
    } else {
        lines.join(" | ")
    }
}
