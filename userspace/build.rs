//! Finds the eBPF object that `cargo xtask build` makes, so the `xlan` binary can embed it.
use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=XLAN_DATAPATH_OBJ");
    // Cargo always sets CARGO_MANIFEST_DIR for build scripts; "." is this package's directory too.
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let object = env::var_os("XLAN_DATAPATH_OBJ")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../datapath-ebpf/target/bpfel-unknown-none/release/xlan-datapath"));
    if !object.exists() {
        panic!("eBPF object {} not found: build it with `cargo xtask build`", object.display());
    }
    println!("cargo:rerun-if-changed={}", object.display());
    println!("cargo:rustc-env=XLAN_DATAPATH_OBJ={}", object.display());
}
