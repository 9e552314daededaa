//! The bench's command line and the settings it gives.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::topology::Backend;

pub const USAGE: &str = "\
usage: xlan-bench [--scenario TEXT]... [--backend NAME]... [--runs N] [--duration SECS] [--cpu-load PPS]
                  [--fdb-sizes N,N,...] [--tiny] [--json] [--out-dir DIR] [--list]
  --scenario TEXT  run only the scenarios whose id contains TEXT (repeatable; --list shows the ids)
  --backend NAME   run only these backends (repeatable): kernel, xlan, xlan-xdp, mixed, limit, limit-xdp
  --runs N         runs per metric, reported as min / median / max (default 3)
  --duration SECS  seconds per packet-rate run (default 2); CPU runs take 1.5x, TCP runs round it up
  --cpu-load PPS   the fixed offered load of the CPU-per-packet runs (default 200000)
  --fdb-sizes LIST FDB sizes of the FDB-scale scenarios (default 10,10000,1000000)
  --tiny           one short run of everything (the smoke test's mode): numbers are not meaningful
  --json           print report.json instead of the table
  --out-dir DIR    where report.json and report.svg go (default target/bench)
  --list           print the scenario ids and exit";

/// How long and how often to measure.
#[derive(Debug, Clone)]
pub struct Settings {
    pub scenarios: Vec<String>,
    /// Backend names to run (all when empty).
    pub backends: Vec<String>,
    pub runs: u32,
    pub duration: Duration,
    pub cpu_duration: Duration,
    pub cpu_load_pps: u64,
    pub tcp_seconds: u32,
    /// Tiny mode: each TCP run sends this many bytes instead of running `tcp_seconds`.
    pub tcp_bytes: Option<u64>,
    /// Tiny mode: each packet-rate run is one call of this many frames, without probing the rate first.
    pub pps_frames: Option<u32>,
    pub ping_count: u32,
    pub request_count: u32,
    pub fdb_sizes: Vec<u32>,
    pub tiny: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::with_duration(Duration::from_secs(2), 3)
    }
}

impl Settings {
    fn with_duration(duration: Duration, runs: u32) -> Settings {
        Settings {
            scenarios: Vec::new(),
            backends: Vec::new(),
            runs,
            duration,
            cpu_duration: duration.mul_f64(1.5),
            cpu_load_pps: 200_000,
            tcp_seconds: duration.as_secs_f64().ceil() as u32,
            tcp_bytes: None,
            pps_frames: None,
            ping_count: 500,
            request_count: 2000,
            fdb_sizes: vec![10, 10_000, 1_000_000],
            tiny: false,
        }
    }

    /// One short run of everything: enough to show every path delivers and the report is whole.
    fn tiny() -> Settings {
        Settings {
            cpu_duration: Duration::from_millis(150),
            tcp_bytes: Some(16 << 20),
            pps_frames: Some(20_000),
            ping_count: 20,
            request_count: 100,
            fdb_sizes: vec![10, 1000],
            tiny: true,
            ..Settings::with_duration(Duration::from_millis(200), 1)
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "scenarios": self.scenarios, "backends": self.backends, "runs": self.runs, "duration_s": self.duration.as_secs_f64(),
            "cpu_duration_s": self.cpu_duration.as_secs_f64(), "cpu_load_pps": self.cpu_load_pps,
            "tcp_seconds": self.tcp_seconds, "tcp_bytes": self.tcp_bytes, "pps_frames": self.pps_frames,
            "ping_count": self.ping_count, "request_count": self.request_count,
            "fdb_sizes": self.fdb_sizes, "tiny": self.tiny,
        })
    }
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct Options {
    pub settings: Settings,
    pub json: bool,
    pub list: bool,
    pub out_dir: PathBuf,
}

pub fn parse(args: impl Iterator<Item = String>) -> Result<Options> {
    let (mut json, mut list, mut tiny, mut out_dir) = (false, false, false, default_out_dir());
    let (mut scenarios, mut runs, mut duration, mut cpu_load, mut fdb_sizes) = (Vec::new(), None, None, None, None);
    let mut backends = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--tiny" => tiny = true,
            "--json" => json = true,
            "--list" => list = true,
            "--scenario" => scenarios.push(value()?),
            "--backend" => {
                let name = value()?;
                if !Backend::ALL.iter().any(|backend| backend.name() == name) {
                    bail!("--backend: unknown backend {name:?} (try --help)");
                }
                backends.push(name);
            }
            "--runs" => runs = Some(number(&value()?, "--runs")?.max(1.0) as u32),
            "--duration" => duration = Some(Duration::from_secs_f64(number(&value()?, "--duration")?.max(0.1))),
            "--cpu-load" => cpu_load = Some(number(&value()?, "--cpu-load")?.max(1.0) as u64),
            "--fdb-sizes" => {
                let sizes: Result<Vec<u32>> =
                    value()?.split(',').map(|size| number(size, "--fdb-sizes").map(|n| n as u32)).collect();
                fdb_sizes = Some(sizes?);
            }
            "--out-dir" => out_dir = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let base = if tiny { Settings::tiny() } else { Settings::default() };
    let settings = Settings {
        scenarios,
        backends,
        runs: runs.unwrap_or(base.runs),
        cpu_load_pps: cpu_load.unwrap_or(base.cpu_load_pps),
        fdb_sizes: fdb_sizes.unwrap_or_else(|| base.fdb_sizes.clone()),
        ..match duration {
            Some(duration) => Settings { tiny, ..Settings::with_duration(duration, base.runs) },
            None => base,
        }
    };
    Ok(Options { settings, json, list, out_dir })
}

fn number(text: &str, what: &str) -> Result<f64> {
    let value: f64 = text.trim().parse().with_context(|| format!("{what}: {text:?} is not a number"))?;
    if !value.is_finite() || value < 0.0 {
        bail!("{what}: {text:?} is out of range");
    }
    Ok(value)
}

/// `<workspace>/target/bench`, or under CARGO_TARGET_DIR.
fn default_out_dir() -> PathBuf {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir).join("bench"),
        _ => workspace.join("target/bench"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Options> {
        parse(line.split_whitespace().map(str::to_string))
    }

    #[test]
    fn options_parse() {
        let options = parse_line("--runs 5 --duration 1 --scenario fdb --fdb-sizes 10,100 --json").unwrap();
        assert_eq!(options.settings.runs, 5);
        assert_eq!(options.settings.duration, Duration::from_secs(1));
        assert_eq!(options.settings.scenarios, ["fdb"]);
        assert_eq!(options.settings.fdb_sizes, [10, 100]);
        assert!(options.json && !options.settings.tiny);
        assert!(parse_line("--tiny").unwrap().settings.tiny);
        assert!(parse_line("--runs").is_err());
        assert!(parse_line("--bogus").is_err());
        assert_eq!(parse_line("--backend xlan-xdp").unwrap().settings.backends, ["xlan-xdp"]);
        assert!(parse_line("--backend bogus").is_err());
    }
}
