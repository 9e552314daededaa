//! Named network namespaces (`ip netns`) owned by the harness, and ways to run things inside them.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::cmd;

const NETNS_DIR: &str = "/run/netns";

/// A fresh name prefix `xl<pid><letters>`: unique per process (pid) and per call (letters), so concurrent tests and
/// concurrent test processes never share a namespace. The letters also make the pid end unambiguously, which lets
/// [`sweep_stale`] recognise leftovers of dead processes.
pub fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static SWEEP: Once = Once::new();
    SWEEP.call_once(sweep_stale);

    let mut n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
        n -= 1;
    }
    letters.reverse();
    format!("xl{}{}", std::process::id(), String::from_utf8(letters).expect("ascii letters"))
}

/// Deletes namespaces named by [`unique_prefix`] whose creating process no longer exists: a test run that was killed
/// (SIGKILL, timeout) could not run its Drop guards. Namespaces of live processes are never touched.
pub fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = harness_pid(&name) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("xlan-tests: deleting namespace {name} left behind by dead process {pid}");
        crate::xlan::remove_leftover_state(&name);
        delete_namespace(&name);
    }
}

/// The pid in a harness namespace name `xl<pid><lowercase letter>...`, if `name` has that shape.
fn harness_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("xl")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let after = rest.as_bytes().get(digits)?;
    if digits == 0 || !after.is_ascii_lowercase() {
        return None;
    }
    rest[..digits].parse().ok()
}

fn delete_namespace(name: &str) {
    if let Err(err) = cmd::run(&mut cmd::command("ip", &["netns", "del", name])) {
        eprintln!("xlan-tests: warning: {err:#}");
    }
}

/// A network namespace created by the harness and deleted (with every interface in it) when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn create(name: &str) -> Result<Netns> {
        if Path::new(NETNS_DIR).join(name).exists() {
            bail!("network namespace {name} already exists; refusing to adopt it");
        }
        cmd::run(&mut cmd::command("ip", &["netns", "add", name]))?;
        let netns = Netns { name: name.to_string() };
        // Loopback is down in a new namespace; sockets bound to local addresses do not need it, but tools do.
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME args...`, returning stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        cmd::run(&mut cmd::command("ip", &[&["-n", self.name.as_str()], args].concat()))
    }

    /// A command `ip netns exec NAME program args...`, for callers that want its status or to spawn it.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        cmd::command("ip", &[&["netns", "exec", self.name.as_str(), program], args].concat())
    }

    /// Runs `program args...` inside the namespace, returning stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        cmd::run(&mut self.command(program, args))
    }

    /// Runs `f` on a dedicated thread that has entered this namespace (setns affects only the calling thread, so
    /// sockets `f` opens live in the namespace while the rest of the process stays where it was).
    pub fn run<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn(f).join().map_err(|_| anyhow!("thread in namespace {} panicked", self.name))?
    }

    /// Like [`Netns::run`], without waiting: the caller joins the thread.
    pub fn spawn<R, F>(&self, f: F) -> JoinHandle<Result<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let path = self.path();
        thread::spawn(move || {
            enter(&path)?;
            Ok(f())
        })
    }

    /// Names of all interfaces in the namespace, sorted.
    pub fn link_names(&self) -> Result<Vec<String>> {
        let links: Value = serde_json::from_str(&self.ip(&["-j", "link", "show"])?)
            .with_context(|| format!("parsing `ip -j link show` in {}", self.name))?;
        let mut names: Vec<String> = links
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|link| link["ifname"].as_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// `ip -s -j link show dev IFNAME` as JSON (with statistics).
    pub fn link(&self, ifname: &str) -> Result<Value> {
        let text = self.ip(&["-s", "-j", "link", "show", "dev", ifname])?;
        let mut links: Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing `ip -s -j link show dev {ifname}` in {}", self.name))?;
        Ok(links[0].take())
    }

    /// Waits until the interface is administratively up and has carrier (LOWER_UP), so that probes that follow
    /// measure the datapath rather than link bring-up.
    pub fn wait_link_up(&self, ifname: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let link = self.link(ifname)?;
            let flags: Vec<&str> = link["flags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            if flags.contains(&"UP") && flags.contains(&"LOWER_UP") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{ifname} in {} is not up after {timeout:?} (flags {flags:?})", self.name);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_namespace(&self.name);
    }
}

/// Moves the calling thread into the network namespace bound at `path`.
fn enter(path: &Path) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: setns on a valid, open namespace fd; it changes only this thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setns into {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_recognised_as_harness_names() {
        let prefix = unique_prefix();
        assert_eq!(harness_pid(&format!("{prefix}e1")), Some(std::process::id()));
        assert_eq!(harness_pid("xlan0"), None);
        assert_eq!(harness_pid("xl123"), None);
        assert_eq!(harness_pid("xl12X"), None);
        assert_ne!(unique_prefix(), prefix);
    }
}
