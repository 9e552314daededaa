//! The results of a bench run, and report.json (schema `xlan-bench/2`, checked by tests/tests/bench_smoke.rs):
//!
//! ```text
//! { "schema": "xlan-bench/2", "machine": {...}, "settings": {...},
//!   "scenarios": [ { "id", "title", "lan", "src", "dst", "backends": { "<backend>": "what it is" }, "limit",
//!                    "fdb_entries",
//!                    "results": { "<backend>": { "<metric key>": {"min", "median", "max", "runs": [..]} } },
//!                    "failures": [ { "backend", "measurement", "metrics": [..], "runs", "error" } ] } ],
//!   "targets": [ { "scenario", "target", "value", "min", "max", "goal", "met" } ] }
//! ```
//!
//! A target's value compares two backends' medians (a ratio, or for CPU a difference in ns); min and max the same
//! comparison run by run (null when the backends' runs do not pair up).

use serde_json::{json, Map, Value};

use super::metrics::{Measurement, Metric};
use super::options::Settings;
use super::scenario::Scenario;
use super::stats::Summary;
use super::targets::{self, Target};
use super::topology::Backend;

/// 2: a target's "ratio" became "value" (a ratio, or a difference in ns), with the per-run "min" and "max".
pub const SCHEMA: &str = "xlan-bench/2";

pub struct Report {
    pub settings: Settings,
    pub scenarios: Vec<ScenarioResults>,
}

pub struct ScenarioResults {
    pub scenario: Scenario,
    /// Per backend (in the scenario's order), per metric (in measurement order).
    pub results: Vec<(Backend, Vec<(Metric, Summary)>)>,
    /// Measurements that failed on a backend, in the order they first failed.
    pub failures: Vec<Failure>,
}

/// A measurement that failed on a backend: how many of its runs, and the first error.
#[derive(Debug, Clone)]
pub struct Failure {
    pub backend: Backend,
    pub measurement: Measurement,
    pub runs: u32,
    pub error: String,
}

impl Failure {
    fn to_json(&self) -> Value {
        json!({
            "backend": self.backend.name(), "measurement": self.measurement.name(),
            "metrics": self.measurement.metrics().iter().map(|metric| metric.key()).collect::<Vec<_>>(),
            "runs": self.runs, "error": self.error,
        })
    }
}

impl ScenarioResults {
    pub fn new(scenario: Scenario) -> ScenarioResults {
        let results = scenario.backends.iter().map(|&backend| (backend, Vec::new())).collect();
        ScenarioResults { scenario, results, failures: Vec::new() }
    }

    /// Notes that a run of `measurement` failed on `backend` (the first error is kept).
    pub fn fail(&mut self, backend: Backend, measurement: Measurement, error: &str) {
        match self.failures.iter_mut().find(|f| f.backend == backend && f.measurement == measurement) {
            Some(failure) => failure.runs += 1,
            None => self.failures.push(Failure { backend, measurement, runs: 1, error: error.to_string() }),
        }
    }

    /// Adds one run's value of `metric` on `backend`.
    pub fn record(&mut self, backend: Backend, metric: Metric, value: f64) {
        let Some((_, metrics)) = self.results.iter_mut().find(|(b, _)| *b == backend) else { return };
        match metrics.iter_mut().find(|(m, _)| *m == metric) {
            Some((_, summary)) => summary.runs.push(value),
            None => metrics.push((metric, Summary { runs: vec![value] })),
        }
    }

    /// Runs of `measurement` on `backend` that gave values.
    pub fn runs_of(&self, backend: Backend, measurement: Measurement) -> u32 {
        let metric = measurement.metrics()[0];
        self.get(backend, metric).map_or(0, |summary| summary.runs.len() as u32)
    }

    pub fn get(&self, backend: Backend, metric: Metric) -> Option<&Summary> {
        let (_, metrics) = self.results.iter().find(|(b, _)| *b == backend)?;
        metrics.iter().find(|(m, _)| *m == metric).map(|(_, summary)| summary)
    }

    /// Every metric measured on any backend, in measurement order.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut all: Vec<Metric> = Vec::new();
        for metric in self.scenario.measurements.iter().flat_map(|measurement| measurement.metrics()) {
            if !all.contains(&metric) {
                all.push(metric);
            }
        }
        all
    }

    fn to_json(&self) -> Value {
        let results: Map<String, Value> = self
            .results
            .iter()
            .map(|(backend, metrics)| {
                let metrics: Map<String, Value> =
                    metrics.iter().map(|(metric, summary)| (metric.key(), summary.to_json())).collect();
                (backend.name().to_string(), Value::Object(metrics))
            })
            .collect();
        let s = &self.scenario;
        let backends: Map<String, Value> =
            s.backends.iter().map(|&backend| (backend.name().to_string(), s.lan.describe(backend).into())).collect();
        json!({
            "id": s.id, "title": s.title, "lan": s.lan.name(), "src": s.src.to_string(), "dst": s.dst.to_string(),
            "backends": backends, "limit": s.limit, "fdb_entries": s.fdb_entries, "results": results,
            "failures": self.failures.iter().map(Failure::to_json).collect::<Vec<_>>(),
        })
    }
}

impl Report {
    pub fn targets(&self) -> Vec<Target> {
        targets::evaluate(&self.scenarios)
    }

    pub fn to_json(&self) -> Value {
        let targets: Vec<Value> = self.targets().iter().map(Target::to_json).collect();
        json!({
            "schema": SCHEMA,
            "machine": machine(),
            "settings": self.settings.to_json(),
            "scenarios": self.scenarios.iter().map(ScenarioResults::to_json).collect::<Vec<_>>(),
            "targets": targets,
        })
    }
}

/// What the numbers were measured on: they only compare within one machine.
fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo.lines().find_map(|line| line.strip_prefix("model name")?.split(':').nth(1)).unwrap_or("?");
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:")?.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    json!({
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "cpu_model": model.trim(),
        "memory_gib": (memory_kib as f64 / 1048576.0).round(),
    })
}
