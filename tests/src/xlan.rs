//! Driving the product's CLI, `xlan`, and cleaning up after it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cmd;
use crate::counters::EndpointCounters;
use crate::netns::Netns;

/// Where xlan pins its BPF objects and keeps its state, per host namespace; removed as a fallback on teardown.
const BPFFS_ROOT: &str = "/sys/fs/bpf/xlan";
const STATE_ROOT: &str = "/run/xlan";
/// Where xlan keeps each instance's configuration for `xlan restore`.
pub const CONFIG_ROOT: &str = "/var/lib/xlan";

/// The xlan binary: `$XLAN_BIN`, else `<workspace>/target/release/xlan`. Missing is an error, so that tests that
/// need the product fail instead of silently passing.
pub fn binary() -> Result<PathBuf> {
    let path = match std::env::var_os("XLAN_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests package lives in a subdirectory of the workspace")
            .join("target/release/xlan"),
    };
    if !path.is_file() {
        bail!(
            "the xlan binary is missing at {}: build it (`cargo xtask build`) or point XLAN_BIN at it",
            path.display()
        );
    }
    Ok(path)
}

/// A command `xlan args...` with a clean environment for its diagnostics (no RUST_LOG, which would add lines).
pub fn command(args: &[&str]) -> Result<Command> {
    let mut cmd = cmd::command(binary()?, args);
    cmd.env_remove("RUST_LOG");
    Ok(cmd)
}

/// The host-side veths of xlan's endpoints in `host` (the names xlan gives them).
pub fn host_ports(host: &Netns) -> Result<Vec<String>> {
    Ok(crate::link::names(host)?.into_iter().filter(|name| xlan_lib::model::VethNames::is_host_name(name)).collect())
}

/// One of the pinned maps of xlan's instance for `host` (its `map_names` name).
pub fn pinned_map(host: &Netns, name: &str) -> Result<aya::maps::MapData> {
    let pin = xlan_lib::datapath::pins::PinDir::for_instance(host.name()).map(name);
    aya::maps::MapData::from_pin(&pin).with_context(|| format!("opening {}", pin.display()))
}

/// The bpffs directory xlan uses for the host namespace `host_ns`.
pub fn bpffs_dir(host_ns: &str) -> PathBuf {
    Path::new(BPFFS_ROOT).join(host_ns)
}

/// Removes xlan's pinned objects and state for `host_ns`, for when `xlan network delete` could not.
pub fn remove_leftover_state(host_ns: &str) {
    for dir in [bpffs_dir(host_ns), Path::new(STATE_ROOT).join(host_ns), Path::new(CONFIG_ROOT).join(host_ns)] {
        if dir.exists() {
            if let Err(err) = std::fs::remove_dir_all(&dir) {
                eprintln!("xlan-tests: warning: cannot remove {}: {err}", dir.display());
            }
        }
    }
}

/// xlan's view of one host namespace: runs `xlan --netns HOST ...`, and on drop deletes every network created through
/// it and then any pinned objects or state xlan left for that namespace. Drop it before the namespace itself.
pub struct XlanHost {
    host_ns: String,
    networks: Vec<String>,
}

impl XlanHost {
    pub fn new(host: &Netns) -> Result<XlanHost> {
        binary()?;
        Ok(XlanHost { host_ns: host.name().to_string(), networks: Vec::new() })
    }

    /// A command `xlan --netns HOST args...`.
    pub fn command<S: AsRef<str>>(&self, args: &[S]) -> Result<Command> {
        let global = ["--netns", self.host_ns.as_str()];
        command(&global.into_iter().chain(args.iter().map(AsRef::as_ref)).collect::<Vec<_>>())
    }

    /// Runs `xlan --netns HOST args...`, returning stdout.
    pub fn run<S: AsRef<str>>(&self, args: &[S]) -> Result<String> {
        cmd::run(&mut self.command(args)?)
    }

    /// `xlan network create NAME args...` (the driver and its options); the network is deleted on drop. (What a
    /// failed create may have left is removed by the fallback on drop, and with the namespaces.)
    pub fn create_network(&mut self, name: &str, args: &[&str]) -> Result<()> {
        self.run(&[&["network", "create", name], args].concat())?;
        self.networks.push(name.to_string());
        Ok(())
    }

    /// `xlan network list --json`.
    pub fn network_list(&self) -> Result<Value> {
        let text = self.run(&["network", "list", "--json"])?;
        serde_json::from_str(&text).with_context(|| format!("parsing `xlan network list --json`: {text}"))
    }

    /// `xlan stats NETWORK --json`, one entry per endpoint.
    pub fn stats(&self, network: &str) -> Result<Vec<EndpointCounters>> {
        let text = self.run(&["stats", network, "--json"])?;
        let json: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing `xlan stats {network} --json`: {text}"))?;
        let entries = json.as_array().with_context(|| format!("`xlan stats --json` is not an array: {text}"))?;
        entries.iter().map(EndpointCounters::from_xlan_json).collect()
    }

    /// `xlan mdb show [NETWORK] --json` as (group, endpoint) pairs, the endpoint as ip(8) names it (ifname@netns).
    pub fn mdb(&self, network: Option<&str>) -> Result<Vec<(String, String)>> {
        let text = self.run(&[&["mdb", "show"], network.as_slice(), &["--json"]].concat())?;
        let json: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing `xlan mdb show --json`: {text}"))?;
        let rows = json.as_array().with_context(|| format!("`xlan mdb show --json` is not an array: {text}"))?;
        rows.iter()
            .map(|row| {
                let field =
                    |key: &str| row[key].as_str().map(str::to_string).with_context(|| format!("{key} in {row}"));
                Ok((field("group")?, field("endpoint")?))
            })
            .collect()
    }

    /// The entry of the endpoint `ifname` in namespace `netns` in `xlan stats NETWORK --json`.
    pub fn endpoint_stats(&self, network: &str, netns: &str, ifname: &str) -> Result<EndpointCounters> {
        self.stats(network)?
            .into_iter()
            .find(|entry| entry.netns == netns && entry.ifname == ifname)
            .with_context(|| format!("`xlan stats {network}` has no entry for {netns}/{ifname}"))
    }
}

impl Drop for XlanHost {
    fn drop(&mut self) {
        for network in self.networks.iter().rev() {
            if let Err(err) = self.run(&["network", "delete", network]) {
                eprintln!("xlan-tests: warning: {err:#}");
            }
        }
        remove_leftover_state(&self.host_ns);
    }
}
