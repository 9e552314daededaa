//! Network namespaces by name (/run/netns/NAME, as ip-netns(8) makes them) or by the path of a namespace file (as
//! CNI runtimes give them: /proc/PID/ns/net, /var/run/netns/NAME), entered with setns(2) on the calling thread only. The mount namespace is never touched, so the bpffs at /sys/fs/bpf stays visible (unlike
//! `ip netns exec`, which remounts /sys).
//!
//! This is the one namespace guard of the project: the library, its datapath tests and the test harness all enter
//! namespaces through [`Netns::enter`].
use std::{
    fs::File,
    marker::PhantomData,
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd},
        unix::fs::MetadataExt,
    },
    path::{Path, PathBuf},
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

    /// The namespace `reference` names: a name under /run/netns, or an absolute path to a namespace file. An
    /// endpoint keeps the reference it was made with, so a path under /proc goes with its process (and `restore`
    /// skips it as a namespace that does not exist).
    pub fn locate(reference: &str) -> Result<Self> {
        if !reference.starts_with('/') {
            return Self::open(reference);
        }
        let missing = || Error::NoSuchNetnsPath(reference.into());
        let file = File::open(reference).map_err(|_| missing())?;
        // Any file opens; only a namespace file enters, and only a network namespace's enters as one. Checked here,
        // so that a wrong path is "not found" rather than a failed setns deep inside an operation.
        if !is_network_namespace(&file) {
            return Err(missing());
        }
        Ok(Self { file, name: reference.into() })
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

/// NS_GET_NSTYPE (linux/nsfs.h): the CLONE_NEW* type of the namespace behind a namespace file.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

fn is_network_namespace(file: &File) -> bool {
    // SAFETY: an ioctl without arguments on an open fd; other files answer with an error.
    let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    kind == libc::CLONE_NEWNET
}

/// The identity of a namespace file: its device and inode.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The name under /run/netns of the network namespace this thread is in, if it has one. A front end run *in* a
/// host's namespace (a CNI plugin is) names its instance by it, as `--netns NAME` would; in a namespace without a
/// name it is the "default" instance, as the CLI without `--netns` (PID 1's namespace cannot always be opened to
/// tell the initial namespace apart: not in a container without CAP_SYS_PTRACE).
pub fn current_name() -> Result<Option<String>> {
    let current = identity(Path::new("/proc/thread-self/ns/net"))
        .ok_or_else(|| Error::io("stat own netns", std::io::Error::last_os_error()))?;
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else { return Ok(None) };
    Ok(entries
        .flatten()
        .find(|entry| identity(&entry.path()) == Some(current))
        .map(|entry| entry.file_name().to_string_lossy().into_owned()))
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
    fn locates_paths_of_namespace_files_only() {
        assert!(Netns::locate("/proc/self/ns/net").is_ok());
        for bad in ["/proc/self/ns/mnt", "/etc/hostname", "/nonexistent/ns", "a/b"] {
            assert!(matches!(Netns::locate(bad), Err(Error::NoSuchNetns(_) | Error::NoSuchNetnsPath(_))), "{bad:?}");
        }
    }

    #[test]
    fn rejects_names_that_are_paths() {
        for bad in ["", "a/b", ".", ".."] {
            assert!(matches!(Netns::open(bad), Err(Error::NoSuchNetns(_))), "{bad:?}");
        }
    }
}
