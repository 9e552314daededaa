//! The bench's command line and the settings it gives.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::Parser;
use serde_json::{json, Value};

use super::topology::Backend;

/// How long and how often to measure.
#[derive(Debug, Clone)]
pub struct Settings {
    pub scenarios: Vec<String>,
    /// Backend names to run (all when empty).
    pub backends: Vec<String>,
    /// Only the measurements whose id contains one of these (all when empty): to profile one of them.
    pub measurements: Vec<String>,
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
    /// Network sizes of the broadcast bench (`broadcast`); when any, it runs instead of the scenarios.
    pub broadcast_sizes: Vec<u32>,
    /// The flooders the broadcast bench runs (`Flooder::name`); none: all of them.
    pub flooders: Vec<String>,
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
            measurements: Vec::new(),
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
            broadcast_sizes: Vec::new(),
            flooders: Vec::new(),
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
            "scenarios": self.scenarios, "backends": self.backends, "measurements": self.measurements, "runs": self.runs, "duration_s": self.duration.as_secs_f64(),
            "cpu_duration_s": self.cpu_duration.as_secs_f64(), "cpu_load_pps": self.cpu_load_pps,
            "tcp_seconds": self.tcp_seconds, "tcp_bytes": self.tcp_bytes, "pps_frames": self.pps_frames,
            "ping_count": self.ping_count, "request_count": self.request_count,
            "fdb_sizes": self.fdb_sizes, "broadcast_sizes": self.broadcast_sizes, "tiny": self.tiny,
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

/// xlan-bench: kernel vs xlan vs the limit, in namespaces, on every virtual LAN; prints a table (or --json) and writes
/// report.json and report.svg. Ctrl-C stops the load at once and tears everything down.
#[derive(Parser, Debug)]
#[command(name = "xlan-bench", args_override_self = true)]
struct Cli {
    /// Run only the scenarios whose id contains TEXT (repeatable; --list shows the ids).
    #[arg(long = "scenario", value_name = "TEXT")]
    scenarios: Vec<String>,
    /// Run only these backends (repeatable).
    #[arg(long = "backend", value_name = "NAME", value_parser = PossibleValuesParser::new(Backend::ALL.map(Backend::name)))]
    backends: Vec<String>,
    /// Run only the measurements whose id contains TEXT (repeatable): pps-1flow-v4, pps-8flows-v4, pps-1flow-v6,
    /// cpu, tcp, ping, udp-rr. For profiling one of them (`perf record` around the run).
    #[arg(long = "measurement", value_name = "TEXT")]
    measurements: Vec<String>,
    /// Runs per metric, reported as min / median / max [default: 3].
    #[arg(long, value_name = "N", value_parser = |text: &str| number(text).map(|runs| runs.max(1.0) as u32))]
    runs: Option<u32>,
    /// Seconds per packet-rate run [default: 2]; CPU runs take 1.5x, TCP runs round it up.
    #[arg(long, value_name = "SECS", value_parser = |text: &str| number(text).map(|secs| Duration::from_secs_f64(secs.max(0.1))))]
    duration: Option<Duration>,
    /// The fixed offered load of the CPU-per-packet runs, frames per second [default: 200000].
    #[arg(long = "cpu-load", value_name = "PPS", value_parser = |text: &str| number(text).map(|pps| pps.max(1.0) as u64))]
    cpu_load: Option<u64>,
    /// FDB sizes of the FDB-scale scenarios [default: 10,10000,1000000].
    #[arg(long = "fdb-sizes", value_name = "N,N,...", value_parser = fdb_sizes)]
    fdb_sizes: Option<FdbSizes>,
    /// Instead of the scenarios: the broadcast bench, one network of each of these sizes per flooder (kernel
    /// macvlan, with bcqueuelen 1000 and 100000, and xlan), e.g. 8,64,1024.
    #[arg(long = "broadcast-sizes", value_name = "N,N,...", value_parser = fdb_sizes)]
    broadcast_sizes: Option<FdbSizes>,
    /// With --broadcast-sizes: run only these flooders (repeatable), e.g. to profile one.
    #[arg(long = "flooder", value_name = "NAME", value_parser = PossibleValuesParser::new(super::broadcast::Flooder::ALL.map(super::broadcast::Flooder::name)))]
    flooders: Vec<String>,
    /// One short run of everything (the smoke test's mode): the numbers are not meaningful.
    #[arg(long)]
    tiny: bool,
    /// Print report.json instead of the table.
    #[arg(long)]
    json: bool,
    /// Where report.json and report.svg go [default: target/bench].
    #[arg(long = "out-dir", value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Print the scenario ids and exit.
    #[arg(long)]
    list: bool,
}

/// The list `--fdb-sizes` (and `--broadcast-sizes`) gives (a type of its own: clap would read a `Vec` as a repeatable option).
#[derive(Debug, Clone)]
struct FdbSizes(Vec<u32>);

/// `args` without the program's name. An error is clap's: `exit()` prints it (or the help, for --help) as clap does.
pub fn parse(args: impl Iterator<Item = String>) -> Result<Options, clap::Error> {
    let cli = Cli::try_parse_from(std::iter::once("xlan-bench".to_string()).chain(args))?;
    let base = if cli.tiny { Settings::tiny() } else { Settings::default() };
    let settings = Settings {
        scenarios: cli.scenarios,
        backends: cli.backends,
        measurements: cli.measurements,
        runs: cli.runs.unwrap_or(base.runs),
        cpu_load_pps: cli.cpu_load.unwrap_or(base.cpu_load_pps),
        fdb_sizes: cli.fdb_sizes.map_or_else(|| base.fdb_sizes.clone(), |sizes| sizes.0),
        broadcast_sizes: cli.broadcast_sizes.map_or_else(Vec::new, |sizes| sizes.0),
        flooders: cli.flooders,
        // A duration asked for gives the durations of a full run, also with --tiny.
        ..match cli.duration {
            Some(duration) => Settings { tiny: cli.tiny, ..Settings::with_duration(duration, base.runs) },
            None => base,
        }
    };
    Ok(Options { settings, json: cli.json, list: cli.list, out_dir: cli.out_dir.unwrap_or_else(default_out_dir) })
}

/// A finite, non-negative number.
fn number(text: &str) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(value)
}

fn fdb_sizes(text: &str) -> Result<FdbSizes, String> {
    text.split(',').map(|size| number(size).map(|n| n as u32)).collect::<Result<_, _>>().map(FdbSizes)
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

    fn parse_line(line: &str) -> Result<Options, clap::Error> {
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
        assert_eq!(
            parse_line("--measurement cpu --measurement pps-1flow").unwrap().settings.measurements,
            ["cpu", "pps-1flow"]
        );
        assert!(parse_line("--runs").is_err());
        assert!(parse_line("--bogus").is_err());
        assert_eq!(parse_line("--backend xlan-xdp").unwrap().settings.backends, ["xlan-xdp"]);
        assert!(parse_line("--backend bogus").is_err());
        assert_eq!(parse_line("--help").err().map(|err| err.kind()), Some(clap::error::ErrorKind::DisplayHelp));
    }
}
