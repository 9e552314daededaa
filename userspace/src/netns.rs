//! Network namespaces by name (/run/netns/NAME, as ip-netns(8) makes them), entered with setns(2) on the
//! calling thread only. The mount namespace is never touched, so the bpffs at /sys/fs/bpf stays visible
//! (unlike `ip netns exec`, which remounts /sys).
use std::{
    fs::File,
    os::fd::{AsRawFd, RawFd},
    path::PathBuf,
};

use crate::error::{Error, Result};

/// An open handle on a network namespace.
pub struct Netns {
    file: File,
    pub name: String,
}

impl Netns {
    pub fn open(name: &str) -> Result<Self> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::NoSuchNetns(name.into()));
        }
        let path = PathBuf::from("/run/netns").join(name);
        let file = File::open(&path).map_err(|_| Error::NoSuchNetns(name.into()))?;
        Ok(Self { file, name: name.into() })
    }

    /// The namespace this thread is in now.
    pub fn current() -> Result<Self> {
        let file = File::open("/proc/thread-self/ns/net").map_err(|e| Error::io("open own netns", e))?;
        Ok(Self { file, name: "current".into() })
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Moves this thread into the namespace for as long as the guard lives.
    pub fn enter(&self) -> Result<NetnsGuard> {
        let previous = Netns::current()?;
        set_thread_netns(self)?;
        Ok(NetnsGuard { previous })
    }
}

fn set_thread_netns(target: &Netns) -> Result<()> {
    // SAFETY: setns on a valid namespace fd; affects only this thread.
    if unsafe { libc::setns(target.fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::io(format!("enter netns {}", target.name), std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Returns the thread to its previous namespace on drop.
pub struct NetnsGuard {
    previous: Netns,
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        // Going back to a namespace we were just in cannot fail short of the fd being closed.
        let _ = set_thread_netns(&self.previous);
    }
}

/// Moves this thread into `name` for the rest of the process (the `--netns` global option).
pub fn enter_for_good(name: &str) -> Result<()> {
    set_thread_netns(&Netns::open(name)?)
}
