//! The bench cannot rot: one tiny run of every scenario (not timed: the numbers mean nothing here), with its
//! report.json checked against the schema and every scenario shown to have delivered packets on every backend.
//!
//! The bench records a measurement that fails on one of xlan's backends (a path xlan does not forward yet) as a
//! failure in the report and goes on; that is the bench doing its job, so it is printed here, not asserted on. The
//! bench's own machinery — the kernel references, the limits, the generator and counters — must not fail.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use xlan_tests::bench::metrics::Metric;
use xlan_tests::bench::report::SCHEMA;
use xlan_tests::bench::scenario::catalog;
use xlan_tests::bench::topology::Backend;
use xlan_tests::{cmd, xlan};

/// The FDB sizes `--tiny` uses.
const TINY_FDB_SIZES: [u32; 2] = [10, 1000];
/// Keys report.json readers (the README's table, scripts) rely on; a rename must be deliberate.
const WIRE_PATH_KEYS: [&str; 12] = [
    "pps_1flow",
    "udp_pps_1flow",
    "pps_8flows",
    "udp_pps_8flows",
    "pps_1flow_v6",
    "udp_pps_1flow_v6",
    "cpu_ns_per_packet",
    "tcp_gbps",
    "ping_p50_us",
    "ping_p99_us",
    "udp_rr_p50_us",
    "udp_rr_p99_us",
];

struct OutDir(PathBuf);

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn number(value: &Value, what: &str) -> f64 {
    value.as_f64().filter(|n| n.is_finite()).unwrap_or_else(|| panic!("{what} is not a finite number: {value}"))
}

/// `{"min", "median", "max", "runs": [..]}` with min <= median <= max and at least one run.
fn check_summary(summary: &Value, what: &str) -> f64 {
    let runs = summary["runs"].as_array().unwrap_or_else(|| panic!("{what}: no runs array: {summary}"));
    assert!(!runs.is_empty(), "{what}: no runs");
    let (min, median, max) =
        (number(&summary["min"], what), number(&summary["median"], what), number(&summary["max"], what));
    assert!(min <= median && median <= max, "{what}: min/median/max out of order: {summary}");
    median
}

#[test]
fn tiny_bench_reports_every_scenario_with_packets_delivered() {
    xlan::binary().unwrap_or_else(|err| panic!("the bench needs the xlan binary: {err:#}"));
    let out = OutDir(std::env::temp_dir().join(format!("xlan-bench-smoke-{}", std::process::id())));
    let mut bench = Command::new(env!("CARGO_BIN_EXE_xlan-bench"));
    bench.args(["--tiny", "--json", "--out-dir"]).arg(&out.0);
    let output = cmd::output(&mut bench).expect("running xlan-bench");
    assert!(
        output.status.success(),
        "xlan-bench --tiny failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.0.join("report.json")).expect("report.json written"))
            .expect("report.json is JSON");
    assert_eq!(printed["scenarios"], written["scenarios"], "--json prints what report.json holds");
    let svg = std::fs::read_to_string(out.0.join("report.svg")).expect("report.svg written");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "report.svg is an SVG document");

    assert_eq!(written["schema"], SCHEMA);
    assert!(written["machine"]["kernel"].is_string() && written["machine"]["cpus"].is_u64());
    assert_eq!(written["settings"]["tiny"], true);
    let scenarios = written["scenarios"].as_array().expect("scenarios is an array");
    let expected = catalog(&TINY_FDB_SIZES);
    assert_eq!(scenarios.len(), expected.len(), "one entry per scenario");
    for (report, scenario) in scenarios.iter().zip(&expected) {
        assert_eq!(report["id"], scenario.id.as_str());
        for key in ["title", "lan", "src", "dst", "limit"] {
            assert!(report[key].is_string(), "{}: no {key}", scenario.id);
        }
        let failures = report["failures"].as_array().unwrap_or_else(|| panic!("{}: no failures array", scenario.id));
        for failure in failures {
            eprintln!("bench_smoke: {}: {failure}", scenario.id);
        }
        for backend in &scenario.backends {
            assert!(
                report["backends"][backend.name()].is_string(),
                "{}: {} is not described",
                scenario.id,
                backend.name()
            );
            let results = &report["results"][backend.name()];
            let what = format!("{} on {}", scenario.id, backend.name());
            let is_xlan = matches!(backend, Backend::Xlan | Backend::XlanXdp | Backend::Mixed);
            for measurement in scenario.measurements.iter().filter(|m| m.applies_to(*backend)) {
                let failed = failures.iter().any(|f| {
                    f["backend"] == backend.name() && f["measurement"] == measurement.name() && f["error"].is_string()
                });
                for metric in measurement.metrics() {
                    if results[metric.key()].is_null() && failed {
                        assert!(is_xlan, "{what}: {} failed: the bench's own machinery must not", metric.key());
                        continue;
                    }
                    let median = check_summary(&results[metric.key()], &format!("{what}: {}", metric.key()));
                    let must_deliver = match metric {
                        Metric::Pps { .. } => true,
                        Metric::UdpPps { .. } => !is_xlan,
                        _ => false,
                    };
                    if must_deliver {
                        assert!(median > 0.0, "{what}: {} delivered nothing", metric.key());
                    } else if matches!(metric, Metric::UdpPps { .. }) && median == 0.0 {
                        eprintln!("bench_smoke: {what}: frames reached the endpoint but none its UDP socket");
                    }
                }
            }
        }
    }
    let wire = &scenarios[0]["results"]["xlan"];
    for key in WIRE_PATH_KEYS {
        assert!(wire[key].is_object(), "report.json lost the key {key}");
    }
    for target in written["targets"].as_array().expect("targets is an array") {
        assert!(
            target["scenario"].is_string()
                && target["target"].is_string()
                && target["value"].is_number()
                && target["goal"].is_string()
                && target["met"].is_boolean(),
            "malformed target {target}"
        );
    }
}

/// The broadcast bench cannot rot either: one short run of 8 endpoints, every kind of traffic at every rate, every
/// flooder (the two limits broadcast only). Checked: broadcast.json has a row per (flooder, traffic, rate) with its
/// summaries, each flooder delivered
/// frames of every kind at the paced rate (50 k/s: the kernel's default queue keeps up there), and the stray copies
/// of the one-receiver multicast are what each design makes: none from xlan, which copies a group's multicast to the
/// members it learned from their MLD reports, and (almost) none from the kernel's hash-filtered macvlan.
#[test]
fn tiny_broadcast_bench_reports_every_kind_and_rate() {
    xlan::binary().unwrap_or_else(|err| panic!("the bench needs the xlan binary: {err:#}"));
    let out = OutDir(std::env::temp_dir().join(format!("xlan-bench-broadcast-{}", std::process::id())));
    let mut bench = Command::new(env!("CARGO_BIN_EXE_xlan-bench"));
    bench.args(["--broadcast-sizes", "8", "--runs", "1", "--duration", "0.2", "--out-dir"]).arg(&out.0);
    cmd::run(&mut bench).unwrap_or_else(|err| panic!("xlan-bench --broadcast-sizes 8: {err:#}"));
    let text = std::fs::read_to_string(out.0.join("broadcast.json")).expect("broadcast.json");
    let rows: Value = serde_json::from_str(&text).expect("broadcast.json is JSON");
    let rows = rows.as_array().expect("an array of rows");
    assert_eq!(rows.len(), 3 * 3 * 3 + 2 * 3, "flooders × kinds × rates, and limits × rates: {text}");
    for row in rows {
        let what = format!("{} {} {}", row["flooder"], row["traffic"], row["rate_fps"]);
        assert!(row["error"].is_null(), "{what}: {}", row["error"]);
        let delivered = check_summary(&row["delivered_fraction"], &what);
        check_summary(&row["copies_per_s"], &what);
        let stray = check_summary(&row["stray_per_frame"], &what);
        if row["rate_fps"] == 50_000 {
            assert!(delivered > 0.99, "{what}: delivered {delivered}");
        }
        if row["traffic"] == "one-receiver" && row["flooder"] == "xlan" {
            assert!(stray == 0.0, "{what}: stray copies a frame: {stray}");
        } else if row["traffic"] == "one-receiver" {
            // The kernel's filter is a 256-bit hash salted per device: another endpoint's few groups can collide
            // with the solicited-node group (~1 % each), and then it takes every frame.
            assert!(stray <= 2.0, "{what}: stray copies a frame");
        }
    }
}
