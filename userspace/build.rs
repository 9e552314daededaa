//! Finds the eBPF object that `cargo xtask build` makes, so the `xlan` binary can embed it.
use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=XLAN_DATAPATH_OBJ");
    let object = env::var_os("XLAN_DATAPATH_OBJ").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap())
            .join("../datapath-ebpf/target/bpfel-unknown-none/release/xlan-datapath")
    });
    if !object.exists() {
        panic!("eBPF object {} not found: build it with `cargo xtask build`", object.display());
    }
    println!("cargo:rerun-if-changed={}", object.display());
    println!("cargo:rustc-env=XLAN_DATAPATH_OBJ={}", object.display());
}
