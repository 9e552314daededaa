//! A directory of the test's own under the system's temp dir, removed with everything in it on drop: the CNI
//! plugins' directories, dockerd's and podman's roots. What a daemon stopped in a hurry left mounted under it (its
//! overlay mounts, the netns files of its containers) is unmounted first.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cmd;

pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// `$TMPDIR/name`, emptied if an earlier run left it.
    pub fn create(name: &str) -> Result<ScratchDir> {
        let path = std::env::temp_dir().join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path).with_context(|| format!("removing an old {}", path.display()))?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.0.to_string_lossy().into_owned();
        let mut ours: Vec<&str> =
            mounts.lines().filter_map(|line| line.split(' ').nth(4)).filter(|m| m.starts_with(&root)).collect();
        // Innermost first.
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in ours {
            let _ = cmd::run(&mut cmd::command("umount", &["-l", mount]));
        }
        if let Err(err) = std::fs::remove_dir_all(&self.0) {
            eprintln!("xlan-tests: warning: cannot remove {}: {err}", self.0.display());
        }
    }
}
