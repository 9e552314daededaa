//! What the harness's programs (xlan-lab, xlan-bench) share: an orderly stop on Ctrl-C or SIGTERM, and one line on
//! stderr when they fail.
//!
//! The signal handler only sets a flag. The programs' loops (and the bench's generator) check it and return, and
//! the guards they hold on the way out (namespaces, xlan networks, child processes, attached programs) clean up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cmd;

/// Set by SIGINT/SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

/// How often [`sleep_unless_stopped`] looks at the flag.
const POLL: Duration = Duration::from_millis(100);

extern "C" fn on_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn stop_on_signals() -> Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let previous = unsafe { libc::signal(signal, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
        if previous == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error()).context("installing the signal handler");
        }
    }
    Ok(())
}

/// The flag the handler sets, for code that takes it as a parameter (the bench's runner and generator).
pub fn stop_flag() -> &'static AtomicBool {
    &STOP
}

/// Whether a signal asked the program to stop.
pub fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Sleeps for `duration` unless a signal arrives first; returns whether to go on.
pub fn sleep_unless_stopped(duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    while !stopped() && Instant::now() < deadline {
        thread::sleep(POLL.min(deadline - Instant::now()));
    }
    !stopped()
}

/// Ends the program `name` with what `run` returned: status 0, or its error on one line and status 1. Call it with
/// the result of a function that has returned, so that its guards have cleaned up already.
pub fn exit(name: &str, result: Result<()>) -> ! {
    let status = match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("{name}: {}", cmd::one_line(&format!("{err:#}")));
            1
        }
    };
    std::process::exit(status);
}
