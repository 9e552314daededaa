//! `cargo xtask setup`: makes a fresh Debian 12 machine able to build and test xlan. Idempotent and quick when
//! everything is already there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::process;

/// Debian packages the build and the tests need.
const APT_PACKAGES: &[&str] = &[
    // Debian's rustc 1.96 (LLVM 22) ships core's source, so it can build the eBPF crate with build-std=core;
    // rustup's toolchains here have no rust-src.
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    // bpf-linker must link against the same LLVM major as that rustc.
    "llvm-22-dev",
    // Used by the tests and the lab.
    "bpftool",
    "iperf3",
    "iputils-ping",
    "ethtool",
    "iproute2",
    // The container tests: podman (CNI backend) with the reference CNI plugins, a real dockerd (both hermetic, in
    // test namespaces), and a static busybox for their rootfs and image.
    "podman",
    "containernetworking-plugins",
    "docker.io",
    "busybox-static",
];

/// bpf-linker is built against LLVM 22; without LLVM_PREFIX llvm-sys would find LLVM 14's llvm-config first.
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// How long to keep retrying while another process holds apt's or dpkg's lock.
const APT_LOCK_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const APT_LOCK_RETRY: Duration = Duration::from_secs(10);

/// apt-get's exit status for most failures, lock contention included.
const APT_FAILURE: i32 = 100;

/// What the later steps need from setup.
pub struct Toolchain {
    /// The directory holding bpf-linker, which Debian's cargo must find on PATH.
    pub bpf_linker_dir: PathBuf,
}

pub fn run() -> Result<Toolchain> {
    install_apt_packages()?;
    let bpf_linker = ensure_bpf_linker()?;
    eprintln!("xtask: [setup] ok");
    Ok(Toolchain { bpf_linker_dir: bpf_linker.parent().expect("an executable's path has a parent").to_owned() })
}

fn install_apt_packages() -> Result<()> {
    let missing = missing_packages()?;
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages: {}; run `cargo xtask setup` as root (or apt-get install them)",
            missing.join(" ")
        );
    }
    eprintln!("xtask: [setup] installing apt packages: {}", missing.join(" "));
    apt_get(&["update"])?;
    let mut install = vec!["install", "-y"];
    install.extend(missing.iter().map(String::as_str));
    apt_get(&install)?;
    let still_missing = missing_packages()?;
    if !still_missing.is_empty() {
        bail!("apt-get install finished but these packages are still missing: {}", still_missing.join(" "));
    }
    Ok(())
}

fn missing_packages() -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for package in APT_PACKAGES {
        if !is_installed(package)? {
            missing.push((*package).to_owned());
        }
    }
    Ok(missing)
}

fn is_installed(package: &str) -> Result<bool> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .context("could not run dpkg-query (is this a Debian machine?)")?;
    // dpkg-query fails for packages it has never heard of, which simply means "not installed".
    Ok(output.status.success() && String::from_utf8_lossy(&output.stdout).ends_with("ok installed"))
}

/// Runs apt-get, waiting and retrying while another process (unattended-upgrades, a concurrent setup) holds the lock.
fn apt_get(args: &[&str]) -> Result<()> {
    let deadline = Instant::now() + APT_LOCK_TIMEOUT;
    loop {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let (status, stderr) = process::run_capturing_stderr(&mut cmd)?;
        if status.success() {
            return Ok(());
        }
        let locked = status.code() == Some(APT_FAILURE) && is_lock_error(&stderr);
        if !locked {
            bail!("apt-get {} failed ({status})", args.join(" "));
        }
        if Instant::now() >= deadline {
            bail!("apt-get {}: apt is still locked by another process after 10 minutes", args.join(" "));
        }
        eprintln!("xtask: [setup] apt is locked by another process; retrying in {} s", APT_LOCK_RETRY.as_secs());
        thread::sleep(APT_LOCK_RETRY);
    }
}

fn is_lock_error(stderr: &str) -> bool {
    ["Could not get lock", "Unable to acquire the dpkg frontend lock", "Unable to lock"]
        .iter()
        .any(|message| stderr.contains(message))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Returns bpf-linker's path, installing it with `cargo install` (into CARGO_HOME/bin) if it is missing.
fn ensure_bpf_linker() -> Result<PathBuf> {
    if let Some(path) = find_bpf_linker() {
        return Ok(path);
    }
    eprintln!("xtask: [setup] installing bpf-linker with cargo install (takes ~2-3 min)");
    let mut cmd = process::host_cargo();
    cmd.args(["install", "bpf-linker", "--locked", "--no-default-features", "--features", "llvm-22"])
        .env("LLVM_PREFIX", LLVM_PREFIX);
    process::run(&mut cmd, "cargo install bpf-linker")?;
    find_bpf_linker()
        .context("cargo install bpf-linker succeeded but bpf-linker is neither on PATH nor in CARGO_HOME/bin")
}

/// Looks on PATH and in CARGO_HOME/bin (where cargo install puts it, and which need not be on PATH).
fn find_bpf_linker() -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect::<Vec<_>>());
    path_dirs
        .into_iter()
        .flatten()
        .chain(cargo_home().map(|home| home.join("bin")))
        .map(|dir| dir.join("bpf-linker"))
        .find(|candidate| is_executable(candidate))
}

fn cargo_home() -> Option<PathBuf> {
    match std::env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => Some(home.into()),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
