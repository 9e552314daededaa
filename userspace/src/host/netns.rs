//! Network namespaces by name (/run/netns/NAME, as ip-netns(8) makes them), entered with setns(2) on the calling
//! thread only. The mount namespace is never touched, so the bpffs at /sys/fs/bpf stays visible (unlike
//! `ip netns exec`, which remounts /sys).
//!
//! This is the one namespace guard of the project: the library, its datapath tests and the test harness all enter
//! namespaces through [`Netns::enter`].
use std::{
    fs::File,
    marker::PhantomData,
    os::fd::{AsFd, AsRawFd, BorrowedFd},
    path::PathBuf,
};

use crate::error::{Error, Result};

/// Where ip-netns(8) keeps its named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// An open handle on a network namespace.
#[derive(Debug)]
pub struct Netns {
    file: File,
    name: String,
}

impl Netns {
    /// The namespace /run/netns/NAME.
    pub fn open(name: &str) -> Result<Self> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::NoSuchNetns(name.into()));
        }
        let path = PathBuf::from(NETNS_DIR).join(name);
        let file = File::open(&path).map_err(|_| Error::NoSuchNetns(name.into()))?;
        Ok(Self { file, name: name.into() })
    }

    /// The namespace this thread is in now.
    pub fn current() -> Result<Self> {
        let file = File::open("/proc/thread-self/ns/net").map_err(|e| Error::io("open own netns", e))?;
        Ok(Self { file, name: "current".into() })
    }

    /// The name it was opened by ("current" for [`Netns::current`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves this thread into the namespace for as long as the guard lives.
    pub fn enter(&self) -> Result<NetnsGuard> {
        let previous = Netns::current()?;
        set_thread_netns(self)?;
        Ok(NetnsGuard { previous, _bound_to_thread: PhantomData })
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

fn set_thread_netns(target: &Netns) -> Result<()> {
    // SAFETY: setns on a valid namespace fd; affects only this thread.
    if unsafe { libc::setns(target.file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::io(format!("enter netns {}", target.name), std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Returns the thread to its previous namespace on drop. Not `Send`: a namespace belongs to the thread that entered
/// it, and a guard dropped on another thread would move that thread instead.
#[must_use = "the thread leaves the namespace when the guard is dropped"]
pub struct NetnsGuard {
    previous: Netns,
    _bound_to_thread: PhantomData<*const ()>,
}

impl Drop for NetnsGuard {
    /// A thread that cannot go back would go on working in the wrong namespace — creating devices or attaching
    /// programs in a place nobody asked for — so failing to return aborts the process.
    fn drop(&mut self) {
        if let Err(error) = set_thread_netns(&self.previous) {
            eprintln!("xlan: fatal: cannot return the thread to its network namespace: {error}");
            std::process::abort();
        }
    }
}

/// Moves this thread into `name` for the rest of the process (the `--netns` global option).
pub fn enter_for_good(name: &str) -> Result<()> {
    set_thread_netns(&Netns::open(name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_names_that_are_paths() {
        for bad in ["", "a/b", ".", ".."] {
            assert!(matches!(Netns::open(bad), Err(Error::NoSuchNetns(_))), "{bad:?}");
        }
    }
}
