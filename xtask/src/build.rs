//! `cargo xtask build`: the eBPF datapath with Debian's toolchain, then the userspace side with rustup's.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use crate::setup::Toolchain;
use crate::{paths, process, setup};

/// Debian's cargo (rustc-web 1.96, LLVM 22, core's source in rust-web-src): the only toolchain here that can build
/// the eBPF crate with `-Z build-std=core`. Named by absolute path because rustup's cargo comes first on PATH.
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";

/// Variables kept although they start with `CARGO_`: they configure the user's cargo (home, network, registries,
/// output), not the toolchain that happens to be running xtask.
const KEPT_CARGO_VARS: &[&str] =
    &["CARGO_HOME", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTRIES_", "CARGO_REGISTRY_", "CARGO_TERM_"];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    fn dir_name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// Numbered progress banners, so that the long first build does not look stuck.
pub struct Steps {
    done: usize,
    total: usize,
}

impl Steps {
    pub fn new(total: usize) -> Self {
        Steps { done: 0, total }
    }

    pub fn start(&mut self, what: &str) {
        self.done += 1;
        eprintln!("xtask: [{}/{}] {what}", self.done, self.total);
    }
}

/// What a build produced, as the lab and the tests find it.
pub struct Artifacts {
    pub datapath_obj: PathBuf,
    pub bin_dir: PathBuf,
}

impl Artifacts {
    /// The environment the userspace build, the lab and the tests read the artifacts' locations from.
    pub fn export_to(&self, cmd: &mut Command) {
        cmd.env("XLAN_DATAPATH_OBJ", &self.datapath_obj).env("XLAN_BIN", self.bin_dir.join("xlan"));
    }
}

pub fn run(profile: Profile, steps: &mut Steps) -> Result<Artifacts> {
    steps.start("checking Debian packages and bpf-linker");
    let toolchain = setup::run()?;

    steps.start("building eBPF datapath (first build ~2 min)");
    let datapath_obj = build_ebpf(&toolchain)?;

    steps.start("building userspace (xlan, xlan-cni, xlan-lab)");
    let artifacts = Artifacts { datapath_obj, bin_dir: paths::host_target_dir().join(profile.dir_name()) };
    build_userspace(profile, &artifacts)?;
    Ok(artifacts)
}

fn build_ebpf(toolchain: &Toolchain) -> Result<PathBuf> {
    let crate_dir = paths::ebpf_crate();
    if !crate_dir.join("Cargo.toml").is_file() {
        bail!("the eBPF crate is missing: {} does not exist", crate_dir.join("Cargo.toml").display());
    }
    let mut cmd = debian_cargo(toolchain);
    // Always release: eBPF code built without optimisations does not pass the verifier.
    cmd.current_dir(&crate_dir).args(["build", "--release"]);
    process::run(&mut cmd, "building the eBPF datapath")?;

    let object = paths::ebpf_object();
    if !object.is_file() {
        bail!("the eBPF build succeeded but did not produce {}", object.display());
    }
    Ok(object)
}

fn build_userspace(profile: Profile, artifacts: &Artifacts) -> Result<()> {
    let mut cmd = process::host_cargo();
    cmd.current_dir(paths::workspace_root()).args(["build", "--package", "xlan", "--package", "xlan-tests", "--bins"]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    // userspace/build.rs embeds the eBPF object named by XLAN_DATAPATH_OBJ.
    artifacts.export_to(&mut cmd);
    process::run(&mut cmd, "building the userspace side")
}

/// Debian's cargo, with the environment that rustup and the outer `cargo run` leave behind removed: RUSTC,
/// RUSTUP_TOOLCHAIN, RUSTFLAGS, CARGO_* and friends would make it use rustup's rustc 1.95 (which has no core
/// source) or build into the host's target directory.
fn debian_cargo(toolchain: &Toolchain) -> Command {
    let mut cmd = Command::new(DEBIAN_CARGO);
    for (name, _) in std::env::vars_os() {
        if leaks_from_host_toolchain(&name) {
            cmd.env_remove(&name);
        }
    }
    match host_free_library_path() {
        Some(path) => cmd.env("LD_LIBRARY_PATH", path),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    cmd.env("PATH", debian_first_path(&toolchain.bpf_linker_dir))
        .env("RUSTC", DEBIAN_RUSTC)
        // Debian's rustc is a stable release; build-std and the `[unstable]` config table need this.
        .env("RUSTC_BOOTSTRAP", "1");
    cmd
}

fn leaks_from_host_toolchain(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    if name.starts_with("CARGO_") {
        return !KEPT_CARGO_VARS.iter().any(|kept| name.starts_with(kept));
    }
    name == "CARGO"
        || name == "RUSTFLAGS"
        || name == "RUST_RECURSION_COUNT"
        || name.starts_with("__CARGO")
        || name.starts_with("RUSTC") // RUSTC, RUSTC_WRAPPER, RUSTC_WORKSPACE_WRAPPER, RUSTC_LINKER, ...
        || name.starts_with("RUSTDOC")
        || name.starts_with("RUSTUP_TOOLCHAIN")
}

/// /usr/bin first so that `cargo` and `rustc` are Debian's; bpf-linker's directory last in case it is not on PATH.
fn debian_first_path(bpf_linker_dir: &Path) -> OsString {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(PathBuf::from("/usr/bin"))
        .chain(std::env::split_paths(&inherited))
        .chain(std::iter::once(bpf_linker_dir.to_owned()));
    std::env::join_paths(dirs).expect("PATH entries came from PATH")
}

/// LD_LIBRARY_PATH without the entries `cargo run` added for xtask (rustup's toolchain libraries and the host target
/// directory), which must not be visible to Debian's rustc.
fn host_free_library_path() -> Option<OsString> {
    let inherited = std::env::var_os("LD_LIBRARY_PATH")?;
    let rustup_toolchains = rustup_home().map(|home| home.join("toolchains"));
    let host_target = paths::host_target_dir();
    let kept: Vec<PathBuf> = std::env::split_paths(&inherited)
        .filter(|dir| !dir.starts_with(&host_target))
        .filter(|dir| !rustup_toolchains.as_ref().is_some_and(|toolchains| dir.starts_with(toolchains)))
        .collect();
    if kept.is_empty() {
        return None;
    }
    std::env::join_paths(kept).ok()
}

fn rustup_home() -> Option<PathBuf> {
    match std::env::var_os("RUSTUP_HOME") {
        Some(home) if !home.is_empty() => Some(home.into()),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".rustup")),
    }
}
