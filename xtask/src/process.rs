//! Running child processes: plain build steps, and foreground programs whose exit status xtask forwards.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{bail, Context, Result};

/// The cargo that runs xtask (rustup's stable): cargo tells its children where it is through CARGO.
pub fn host_cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cmd` with inherited stdio and fails with `what` in the message unless it succeeds.
pub fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = spawn_and_wait(cmd)?;
    if !status.success() {
        bail!("{what} failed ({})", describe(status));
    }
    Ok(())
}

/// Runs `cmd` with inherited stdio while echoing its stderr, and returns the stderr text too (for callers that
/// must recognise a particular failure, such as apt's lock messages).
pub fn run_capturing_stderr(cmd: &mut Command) -> Result<(ExitStatus, String)> {
    let mut child = cmd.stderr(Stdio::piped()).spawn().with_context(|| format!("could not start {}", program(cmd)))?;
    let mut captured = String::new();
    for line in BufReader::new(child.stderr.take().expect("stderr is piped")).lines() {
        let line = line.context("reading a child's stderr")?;
        eprintln!("{line}");
        captured.push_str(&line);
        captured.push('\n');
    }
    let status = child.wait().context("waiting for a child process")?;
    Ok((status, captured))
}

/// Runs a foreground program (the lab, the test suite) that owns the terminal: Ctrl-C goes to it, not to xtask, so
/// the program can clean up (delete namespaces, detach programs) while xtask waits for it. A failure carries the
/// child's exit status so that xtask can exit with it.
pub fn run_foreground(cmd: &mut Command, what: &str) -> Result<()> {
    // Ignored signal dispositions survive exec, so restore the default in the child before it starts.
    // SAFETY: signal() is async-signal-safe, which is all pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let previous = ignore_sigint();
    let status = spawn_and_wait(cmd);
    restore_sigint(previous);
    let status = status?;
    if !status.success() {
        return Err(ChildExit { what: what.to_owned(), status }.into());
    }
    Ok(())
}

/// A foreground program that exited unsuccessfully; xtask exits with the same status.
#[derive(Debug)]
pub struct ChildExit {
    what: String,
    status: ExitStatus,
}

impl ChildExit {
    /// The status to exit with: the child's code, or 128 + signal like a shell would.
    pub fn code(&self) -> u8 {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => u8::try_from(code).unwrap_or(1),
            (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
            (None, None) => 1,
        }
    }
}

impl fmt::Display for ChildExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed ({})", self.what, describe(self.status))
    }
}

impl std::error::Error for ChildExit {}

fn spawn_and_wait(cmd: &mut Command) -> Result<ExitStatus> {
    let mut child = cmd.spawn().with_context(|| format!("could not start {}", program(cmd)))?;
    child.wait().with_context(|| format!("waiting for {}", program(cmd)))
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

fn program(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

fn ignore_sigint() -> libc::sighandler_t {
    // SAFETY: installing SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) }
}

fn restore_sigint(previous: libc::sighandler_t) {
    // SAFETY: `previous` is the disposition signal() returned earlier.
    unsafe {
        libc::signal(libc::SIGINT, previous);
    }
}
