//! Named network namespaces (`ip netns`) owned by the harness, and ways to run things inside them.
//!
//! This is the harness's one namespace type. A thread enters a namespace only through [`enter`], which is the
//! library's guard (`xlan_lib::host::netns`): the same setns(2) discipline as the product, and a guard that is not
//! `Send` and returns the thread (or aborts) when dropped.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::thread::{self, JoinHandle};

use anyhow::{anyhow, bail, Context, Result};
use xlan_lib::host::netns::{Netns as NamespaceHandle, NetnsGuard, NETNS_DIR};

use crate::{cmd, link};

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
        link::up(&netns, "lo")?;
        Ok(netns)
    }

    /// A lab's host and outside namespaces, `<prefix>h` and `<prefix>o`, joined by a veth: `uplink` in the host (the
    /// networks' parent), `wire` outside (the LAN's other nodes), both left down for the lab to configure.
    pub fn host_and_outside(prefix: &str) -> Result<(Netns, Netns)> {
        let host = Netns::create(&format!("{prefix}h"))?;
        let outside = Netns::create(&format!("{prefix}o"))?;
        link::add_veth(&host, "uplink", "wire", &outside)?;
        Ok((host, outside))
    }

    /// `count` namespaces `<prefix><role>1` to `<prefix><role><count>` (the endpoints e1, e2, ... of a topology).
    pub fn create_numbered(prefix: &str, role: &str, count: u8) -> Result<Vec<Netns>> {
        (1..=count).map(|index| Netns::create(&format!("{prefix}{role}{index}"))).collect()
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
        let name = self.name.clone();
        thread::spawn(move || {
            let _inside = enter(&name)?;
            Ok(f())
        })
    }

    /// Writes the sysctl `key` (dotted, as sysctl(8) names it) of this namespace, from a thread inside it:
    /// /proc/sys/net belongs to the network namespace of the thread that opens it, so no process is needed.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let value = value.to_string();
        self.run(move || std::fs::write(&path, value).with_context(|| format!("writing {path}")))?
            .with_context(|| format!("sysctl {key} in {}", self.name))
    }

    /// IPv6 off on every interface of the namespace, those made later too: nothing of its own (DAD, router and
    /// neighbour solicitations, MLD) is sent meanwhile.
    pub fn disable_ipv6(&self) -> Result<()> {
        for scope in ["all", "default"] {
            self.sysctl(&format!("net.ipv6.conf.{scope}.disable_ipv6"), "1")?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_namespace(&self.name);
    }
}

/// Moves the calling thread into the namespace `name` until the guard drops: sockets it opens then live there, and
/// interface names and indexes resolve there (attaching programs, BPF_PROG_TEST_RUN). The one way the harness enters
/// a namespace.
pub fn enter(name: &str) -> Result<NetnsGuard> {
    let guard = NamespaceHandle::open(name)?.enter().with_context(|| format!("entering namespace {name}"))?;
    Ok(guard)
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
