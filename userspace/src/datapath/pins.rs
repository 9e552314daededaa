//! Where an instance keeps its datapath on bpffs: maps pinned by name in the instance's root, links under
//! `links/`, the verified programs every load shares under `programs/<key>/` (`loader`). One instance per host
//! network namespace, so several "hosts" on one machine never share state.
use std::{
    ffi::CString,
    fs, io,
    path::{Path, PathBuf},
};

use crate::error::{Error, Result};

/// The bpffs mount xlan uses; mounted by xlan when the machine has none there.
pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

#[derive(Clone, Debug)]
pub struct PinDir {
    pub root: PathBuf,
}

impl PinDir {
    pub fn for_instance(instance: &str) -> Self {
        Self { root: Path::new(BPFFS).join("xlan").join(instance) }
    }

    pub fn links(&self) -> PathBuf {
        self.root.join("links")
    }

    pub fn link(&self, name: &str) -> PathBuf {
        self.links().join(name)
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn programs(&self) -> PathBuf {
        self.root.join("programs")
    }

    /// The directory of the shared programs of key `key`, made if needed; the other keys' directories are removed,
    /// best effort (one another process is pinning into may not go yet). None when it cannot be made.
    pub fn shared_programs(&self, key: &str) -> Option<PathBuf> {
        let dir = self.programs().join(key);
        crate::store::create_dir_racing(&dir).ok()?;
        for other in fs::read_dir(self.programs()).ok()?.flatten() {
            if other.file_name().to_str() != Some(key) {
                let _ = fs::remove_dir_all(other.path());
            }
        }
        Some(dir)
    }

    /// Removes every shared program's pin: programs still attached stay (their links hold them), the others and
    /// the maps only they held are freed.
    pub fn unpin_programs(&self) -> Result<()> {
        match fs::remove_dir_all(self.programs()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", self.programs().display()), e)),
        }
    }

    /// Mounts bpffs if needed and creates the instance's directories.
    pub fn create(&self) -> Result<()> {
        ensure_bpffs()?;
        crate::store::create_dir_racing(&self.links())
            .map_err(|e| Error::io(format!("create {}", self.links().display()), e))
    }

    /// Every pinned link of the instance.
    pub fn link_pins(&self) -> Result<Vec<PathBuf>> {
        match fs::read_dir(self.links()) {
            Ok(entries) => Ok(entries.flatten().map(|entry| entry.path()).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(format!("list {}", self.links().display()), e)),
        }
    }

    /// Every map pin of the instance (`XLAN_*` files in its root): this xlan's maps, and maps of an older layout that an
    /// older xlan pinned under names this one no longer uses.
    pub fn map_pins(&self) -> Result<Vec<(String, PathBuf)>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("list {}", self.root.display()), e)),
        };
        let mut pins: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
            .map(|entry| (entry.file_name().to_string_lossy().into_owned(), entry.path()))
            .filter(|(name, _)| name.starts_with("XLAN_"))
            .collect();
        pins.sort();
        Ok(pins)
    }

    /// Removes the instance's directories once nothing is pinned in them any more, then `xlan/` if empty.
    pub fn remove_if_empty(&self) {
        let _ = fs::remove_dir(self.links());
        let _ = fs::remove_dir(&self.root);
        if let Some(parent) = self.root.parent() {
            let _ = fs::remove_dir(parent);
        }
    }
}

/// Removes a pin; a pin that is already gone is fine (teardown is idempotent).
pub fn unpin(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("remove pin {}", path.display()), e)),
    }
}

fn ensure_bpffs() -> Result<()> {
    if is_bpffs(Path::new(BPFFS)) {
        return Ok(());
    }
    let _ = fs::create_dir_all(BPFFS);
    // BPFFS as a C string.
    let target = c"/sys/fs/bpf";
    let fstype = c"bpf";
    // SAFETY: valid C strings; mounting a bpffs needs no data.
    let rc = unsafe { libc::mount(fstype.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(Error::io(format!("mount bpffs on {BPFFS}"), io::Error::last_os_error()));
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: statfs fills the zeroed struct for a valid path.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type as i64 == BPF_FS_MAGIC
}
