//! Running CNI plugins as a runtime runs them: in the host's network namespace (`nsenter --net=` of the test's host
//! namespace, never `ip netns exec`, which would also remount /sys), parameters in CNI_* variables, the
//! configuration on stdin, the answer on stdout. xlan's plugin (`xlan-cni`, linked as `xlan` into a plugin directory
//! of the test's own) and Debian's reference plugins in /usr/lib/cni alike. Also: results checked against the
//! spec's shape, and the directories a test needs (plugins, host-local's `dataDir`), removed on drop.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::netns::Netns;
use crate::scratch::ScratchDir;

/// Where Debian's containernetworking-plugins puts the reference plugins.
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

/// The spec versions xlan's plugin speaks.
pub const VERSIONS: [&str; 4] = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// xlan's plugin: `$XLAN_CNI_BIN`, else `xlan-cni` next to the xlan binary the tests use.
pub fn plugin_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("XLAN_CNI_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => crate::xlan::binary()?.with_file_name("xlan-cni"),
    };
    if !path.is_file() {
        bail!(
            "the CNI plugin is missing at {}: build it (`cargo build --release`) or set XLAN_CNI_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// Whether the reference plugins are installed (`cargo xtask setup` installs them).
pub fn reference_plugins_installed() -> bool {
    Path::new(REFERENCE_DIR).join("macvlan").is_file()
}

/// The plugin directories of one test: `bin/xlan` (a link to xlan-cni) first in CNI_PATH, then the reference
/// plugins; `ipam/` for host-local's allocations (`dataDir`), so nothing goes to /var/lib/cni.
pub struct Plugins {
    dir: ScratchDir,
}

impl Plugins {
    pub fn new(tag: &str) -> Result<Plugins> {
        let dir = ScratchDir::create(&format!("{tag}-cni"))?;
        std::fs::create_dir_all(dir.path().join("bin"))?;
        std::fs::create_dir_all(dir.path().join("ipam"))?;
        std::os::unix::fs::symlink(plugin_binary()?, dir.path().join("bin/xlan"))?;
        Ok(Plugins { dir })
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    pub fn cni_path(&self) -> String {
        format!("{}:{REFERENCE_DIR}", self.bin_dir().display())
    }

    /// host-local's `dataDir`.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// host-local IPAM on `subnet` (with `gateway`), its allocations under this test's directory; a default route.
    pub fn host_local(&self, subnet: &str, gateway: &str) -> Value {
        json!({
            "type": "host-local",
            "ranges": [[{ "subnet": subnet, "gateway": gateway }]],
            "routes": [{ "dst": "0.0.0.0/0" }],
            "dataDir": self.ipam_dir(),
        })
    }

    /// The addresses host-local holds for network `name` (its files named by address).
    pub fn allocations(&self, name: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.ipam_dir().join(name)) else { return Vec::new() };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<IpAddr>().is_ok())
            .collect()
    }

    /// The executable of plugin `kind` as the runtime finds it in CNI_PATH.
    pub fn find(&self, kind: &str) -> PathBuf {
        let ours = self.bin_dir().join(kind);
        if ours.exists() {
            ours
        } else {
            Path::new(REFERENCE_DIR).join(kind)
        }
    }
}

/// One attachment: the container id, its namespace and the interface name.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
}

impl Attachment {
    /// `eth0` in the test namespace `sandbox`, given by path as runtimes give it.
    pub fn in_netns(container_id: &str, sandbox: &Netns) -> Attachment {
        Attachment {
            container_id: container_id.into(),
            netns: format!("/run/netns/{}", sandbox.name()),
            ifname: "eth0".into(),
        }
    }
}

/// What a plugin answered.
#[derive(Debug)]
pub struct Reply {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Reply {
    /// stdout as JSON (a result, a version answer or an error object).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}; stderr: {}", self.stdout, self.stderr))
    }

    /// The result of a command that must have succeeded.
    pub fn ok(&self, doing: &str) -> Value {
        assert!(self.success, "{doing} failed: {} {}", self.stdout, self.stderr);
        if self.stdout.trim().is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// The error code of a command that must have failed with the spec's error object.
    pub fn error_code(&self, doing: &str) -> u64 {
        assert!(!self.success, "{doing} succeeded: {}", self.stdout);
        let error = self.json();
        assert!(error["msg"].as_str().is_some_and(|m| !m.is_empty()), "{doing}: error without msg: {error}");
        assert!(error["cniVersion"].is_string(), "{doing}: error without cniVersion: {error}");
        error["code"].as_u64().unwrap_or_else(|| panic!("{doing}: error without code: {error}"))
    }

    pub fn message(&self) -> String {
        let error = self.json();
        format!("{} {}", error["msg"].as_str().unwrap_or(""), error["details"].as_str().unwrap_or(""))
    }
}

/// Runs the plugin `kind` with `command` in the host namespace `host`, as a runtime does.
pub fn run(
    host: &Netns,
    plugins: &Plugins,
    kind: &str,
    command: &str,
    attachment: Option<&Attachment>,
    extra_env: &[(&str, &str)],
    config: &Value,
) -> Result<Reply> {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{}", host.name()))
        .arg(plugins.find(kind))
        .env_remove("RUST_LOG")
        .env("CNI_COMMAND", command)
        .env("CNI_PATH", plugins.cni_path());
    for key in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"] {
        cmd.env_remove(key);
    }
    if let Some(a) = attachment {
        cmd.env("CNI_CONTAINERID", &a.container_id).env("CNI_NETNS", &a.netns).env("CNI_IFNAME", &a.ifname);
    }
    for (key, value) in extra_env {
        cmd.env(key, value);
    }
    run_with_stdin(cmd, config)
}

/// Runs `cmd` with `config` on stdin.
pub fn run_with_stdin(mut cmd: Command, config: &Value) -> Result<Reply> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", crate::cmd::describe(&cmd)))?;
    let input = serde_json::to_vec(config)?;
    match child.stdin.take().context("stdin")?.write_all(&input) {
        // A plugin that answers without reading stdin may be gone already.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written?,
    }
    let output = child.wait_with_output()?;
    Ok(Reply {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The configuration a runtime derives for one plugin of a conflist: the plugin's keys with the list's version and
/// name (and `prevResult` when chained).
pub fn plugin_config(version: &str, name: &str, plugin: Value, prev_result: Option<&Value>) -> Value {
    let mut config = plugin;
    config["cniVersion"] = json!(version);
    config["name"] = json!(name);
    if let Some(prev) = prev_result {
        config["prevResult"] = prev.clone();
    }
    config
}

/// Checks an ADD result against the spec's shape for `version` (SPEC.md section 5 and the 0.3/0.4 specs): its
/// version; interfaces with a name, a MAC, a sandbox; IPs in CIDR form with their interface's index (and, before
/// 1.0.0, their family as `version`); routes with a CIDR destination; nothing else at the top. Returns the problems.
pub fn shape_problems(version: &str, result: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(text);
    if result["cniVersion"] != json!(version) {
        problem(format!("cniVersion {} (asked {version})", result["cniVersion"]));
    }
    let Some(object) = result.as_object() else { return vec![format!("not an object: {result}")] };
    for key in object.keys() {
        if !["cniVersion", "interfaces", "ips", "routes", "dns"].contains(&key.as_str()) {
            problem(format!("unexpected key {key}"));
        }
    }
    let interfaces = result["interfaces"].as_array().cloned().unwrap_or_default();
    for interface in &interfaces {
        if !interface["name"].is_string() {
            problem(format!("interface without name: {interface}"));
        }
        if let Some(mac) = interface.get("mac") {
            let ok =
                mac.as_str().is_some_and(|m| m.len() == 17 && m.split(':').all(|b| u8::from_str_radix(b, 16).is_ok()));
            if !ok {
                problem(format!("bad mac {mac}"));
            }
        }
        if interface.get("sandbox").is_some_and(|s| !s.is_string()) {
            problem(format!("bad sandbox in {interface}"));
        }
    }
    for ip in result["ips"].as_array().cloned().unwrap_or_default() {
        let address = ip["address"].as_str().unwrap_or("");
        let cidr = address.split_once('/').is_some_and(|(a, p)| a.parse::<IpAddr>().is_ok() && p.parse::<u8>().is_ok());
        if !cidr {
            problem(format!("ip address not CIDR: {ip}"));
        }
        if let Some(gateway) = ip.get("gateway") {
            if gateway.as_str().and_then(|g| g.parse::<IpAddr>().ok()).is_none() {
                problem(format!("bad gateway: {ip}"));
            }
        }
        match ip.get("interface").map(Value::as_u64) {
            Some(Some(index)) if (index as usize) < interfaces.len() => {}
            other => problem(format!("ip interface index {other:?} of {} interfaces", interfaces.len())),
        }
        let family = if address.contains(':') { "6" } else { "4" };
        let versioned = version.starts_with("0.");
        match (versioned, ip.get("version")) {
            (true, Some(v)) if *v == json!(family) => {}
            (false, None) => {}
            (_, v) => problem(format!("ip version key {v:?} in a {version} result")),
        }
    }
    for route in result["routes"].as_array().cloned().unwrap_or_default() {
        if !route["dst"].as_str().is_some_and(|d| d.contains('/')) {
            problem(format!("route without CIDR dst: {route}"));
        }
    }
    problems
}

/// The shape of a JSON value: every leaf replaced by its type, arrays by their first element's shape, so that two
/// plugins' results compare by structure, not values.
pub fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

/// The IPv4 address (without prefix) of the result's first IP.
pub fn first_ipv4(result: &Value) -> Result<IpAddr> {
    let address = result["ips"]
        .as_array()
        .and_then(|ips| ips.iter().find_map(|ip| ip["address"].as_str().filter(|a| !a.contains(':'))))
        .with_context(|| format!("no IPv4 address in {result}"))?;
    Ok(address.split('/').next().unwrap_or_default().parse()?)
}

/// The subnet of the labs' LAN, and its gateway (the outside node).
pub const SUBNET: &str = "10.88.0.0/24";
pub const GATEWAY: &str = "10.88.0.1";

/// A host namespace whose `uplink` is the wire to an outside node (the LAN's gateway, 10.88.0.1), and sandboxes
/// for containers. On drop: the xlan networks the plugin made in the host are deleted, then xlan's state for the
/// host, the plugin directories and the namespaces.
pub struct CniLab {
    pub plugins: Plugins,
    pub sandboxes: Vec<Netns>,
    pub outside: Netns,
    pub host: Netns,
    prefix: String,
}

impl CniLab {
    pub fn build(sandboxes: u8) -> Result<CniLab> {
        let prefix = crate::unique_prefix();
        let (host, outside) = Netns::host_and_outside(&prefix)?;
        let sandboxes = Netns::create_numbered(&prefix, "s", sandboxes)?;
        crate::link::configure(&outside, "wire", None, &[format!("{GATEWAY}/24")])?;
        crate::link::tx_checksum_offload_off(&outside, "wire")?;
        crate::link::up(&host, "uplink")?;
        let plugins = Plugins::new(&prefix)?;
        Ok(CniLab { plugins, sandboxes, outside, host, prefix })
    }

    /// The attachment of container `n` (1-based) in sandbox `n`, as `eth0`.
    pub fn attachment(&self, n: usize) -> Attachment {
        Attachment::in_netns(&format!("c{n}{}", self.prefix), &self.sandboxes[n - 1])
    }

    /// Runs plugin `kind` in the host namespace.
    pub fn call(
        &self,
        kind: &str,
        command: &str,
        attachment: Option<&Attachment>,
        extra_env: &[(&str, &str)],
        config: &Value,
    ) -> Reply {
        run(&self.host, &self.plugins, kind, command, attachment, extra_env, config).expect("run the plugin")
    }

    /// xlan's plugin configuration (macvlan bridge on `uplink`, host-local IPAM on the lab's subnet) for a network.
    pub fn xlan_config(&self, version: &str, name: &str) -> Value {
        let plugin = json!({ "type": "xlan", "master": "uplink", "mode": "bridge",
            "ipam": self.plugins.host_local(SUBNET, GATEWAY) });
        plugin_config(version, name, plugin, None)
    }

    /// `xlan --netns HOST args...`.
    pub fn xlan(&self, args: &[&str]) -> Result<String> {
        let global = ["--netns", self.host.name()];
        crate::cmd::run(&mut crate::xlan::command(&[&global[..], args].concat())?)
    }

    /// The xlan networks of the host, as `network list --json`.
    pub fn networks(&self) -> Value {
        serde_json::from_str(&self.xlan(&["network", "list", "--json"]).expect("network list")).expect("json")
    }

    /// The endpoints (netns/ifname) of every xlan network of the host, from `network show NAME --json`.
    pub fn endpoints(&self) -> Vec<String> {
        let mut found = Vec::new();
        for name in self.networks().as_array().into_iter().flatten().filter_map(|n| n["name"].as_str()) {
            let show = self.xlan(&["network", "show", name, "--json"]).expect("network show");
            let network: Value = serde_json::from_str(&show).expect("json");
            for endpoint in network["endpoints"].as_array().into_iter().flatten() {
                found.push(format!("{}/{}", endpoint["netns"].as_str().unwrap_or("?"), endpoint["ifname"]));
            }
        }
        found
    }

    /// The host-side veths of xlan endpoints in the host namespace.
    pub fn ports(&self) -> Vec<String> {
        crate::xlan::host_ports(&self.host).expect("host links")
    }

    /// `xlan doctor --json`'s remaining findings (none: state = pins = maps = links).
    pub fn doctor_findings(&self) -> Value {
        let report: Value = serde_json::from_str(&self.xlan(&["doctor", "--json"]).expect("doctor")).expect("json");
        report["remaining"].clone()
    }
}

impl Drop for CniLab {
    fn drop(&mut self) {
        if let Ok(list) = self.xlan(&["network", "list", "--json"]) {
            let names: Vec<String> = serde_json::from_str::<Value>(&list)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|n| n["name"].as_str().map(str::to_string))
                .collect();
            for name in names {
                if let Err(err) = self.xlan(&["network", "delete", &name]) {
                    eprintln!("xlan-tests: warning: {err:#}");
                }
            }
        }
        crate::xlan::remove_leftover_state(self.host.name());
    }
}
