//! Where things live in the repository.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in a subdirectory of the workspace")
}

/// The eBPF crate, which is excluded from the workspace and built by Debian's cargo.
pub fn ebpf_crate() -> PathBuf {
    workspace_root().join("datapath-ebpf")
}

/// The object file the eBPF build produces (the datapath crate's binary is `xlan-datapath`).
pub fn ebpf_object() -> PathBuf {
    ebpf_crate().join("target/bpfel-unknown-none/release/xlan-datapath")
}

/// The host side's target directory: cargo honours CARGO_TARGET_DIR (relative to where cargo runs, which for us is
/// the workspace root), so the binaries must be looked up there too.
pub fn host_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}
