//! The bench run: every topology the chosen scenarios need is built once (all backends of all LANs, side by side),
//! then each scenario's measurements run `runs` times with the backends interleaved inside each round, so that the
//! machine's slow drifts (it is shared and noisy) touch all backends alike.
//!
//! A backend that cannot be built, or a measurement that fails on one backend (a path that does not forward, a tool
//! that gets no answer), is recorded in the report as a failure with its error, and the run goes on: a bench
//! reports what works and what does not, the tests judge behaviour.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;

use anyhow::{anyhow, bail, Result};

use super::measure::measure;
use super::metrics::Measurement;
use super::options::Settings;
use super::report::{Report, ScenarioResults};
use super::scenario::{self, Scenario};
use super::topology::{Backend, BenchTopology, LanKind};
use crate::cmd;

/// Topologies built at once: this machine has two CPUs, and building is mostly process start-up.
const BUILDERS: usize = 3;

pub fn run(settings: &Settings, stop: &AtomicBool) -> Result<Report> {
    let mut scenarios = scenario::select(scenario::catalog(&settings.fdb_sizes), &settings.scenarios);
    if !settings.backends.is_empty() {
        for scenario in &mut scenarios {
            scenario.backends.retain(|backend| settings.backends.iter().any(|name| name == backend.name()));
        }
        scenarios.retain(|scenario| !scenario.backends.is_empty());
    }
    if !settings.measurements.is_empty() {
        for scenario in &mut scenarios {
            let wanted =
                |measurement: &Measurement| settings.measurements.iter().any(|id| measurement.id().contains(id));
            scenario.measurements.retain(wanted);
        }
        scenarios.retain(|scenario| !scenario.measurements.is_empty());
    }
    if scenarios.is_empty() {
        bail!(
            "no scenario id contains any of {:?} with any of the backends {:?} and measurements {:?} (try --list)",
            settings.scenarios,
            settings.backends,
            settings.measurements
        );
    }
    // Leftovers of a bench or test run that was killed before it could clean up.
    crate::netns::sweep_stale();
    let mut topologies = Topologies::default();
    let mut keys: Vec<(LanKind, Backend)> = Vec::new();
    for scenario in &scenarios {
        for &backend in &scenario.backends {
            if !keys.contains(&(scenario.lan, backend)) {
                keys.push((scenario.lan, backend));
            }
        }
    }
    topologies.build_all(keys);
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    let mut report = Report { settings: settings.clone(), scenarios: Vec::new() };
    for scenario in scenarios {
        report.scenarios.push(run_scenario(&mut topologies, scenario, settings, stop)?);
    }
    Ok(report)
}

fn run_scenario(
    topologies: &mut Topologies,
    scenario: Scenario,
    settings: &Settings,
    stop: &AtomicBool,
) -> Result<ScenarioResults> {
    let mut results = ScenarioResults::new(scenario.clone());
    if let Some(entries) = scenario.fdb_entries {
        eprintln!("bench: {}: filling xlan's FDB to {entries} entries", scenario.id);
        let filled = topologies.get(scenario.lan, Backend::Xlan).and_then(|topology| topology.fill_fdb(entries));
        if let Err(err) = filled {
            for &measurement in &scenario.measurements {
                results.fail(Backend::Xlan, measurement, &format!("filling the FDB: {err:#}"));
            }
            return Ok(results);
        }
    }
    for &measurement in &scenario.measurements {
        for run in 1..=settings.runs {
            let mut line = format!("bench: {}: {} run {run}/{}:", scenario.id, measurement.name(), settings.runs);
            for &backend in scenario.backends.iter().filter(|&&backend| measurement.applies_to(backend)) {
                if stop.load(Ordering::Relaxed) {
                    bail!("interrupted");
                }
                let measured = topologies
                    .get(scenario.lan, backend)
                    .and_then(|topology| measure(topology, &scenario, measurement, settings, stop));
                match measured {
                    Ok(values) => {
                        for (metric, value) in measurement.metrics().into_iter().zip(values) {
                            results.record(backend, metric, value);
                            line.push_str(&format!(" {} {}={}", backend.name(), metric.key(), metric.format(value)));
                        }
                    }
                    Err(_) if stop.load(Ordering::Relaxed) => bail!("interrupted"),
                    Err(err) => {
                        let error = cmd::one_line(&format!("{err:#}"));
                        line.push_str(&format!(" {} FAILED ({error})", backend.name()));
                        results.fail(backend, measurement, &error);
                    }
                }
            }
            eprintln!("{line}");
        }
    }
    Ok(results)
}

/// The topologies of this run, built on first use and torn down (in reverse) when the run ends. One that failed to
/// build is not tried again: its error stands for it.
#[derive(Default)]
struct Topologies {
    built: Vec<((LanKind, Backend), BenchTopology)>,
    broken: Vec<((LanKind, Backend), String)>,
}

impl Topologies {
    /// Builds every topology, a few at a time (mostly waiting for `ip`, `ethtool` and `xlan`, each a process).
    fn build_all(&mut self, keys: Vec<(LanKind, Backend)>) {
        let queue = Mutex::new(keys.iter().rev().copied().collect::<Vec<_>>());
        let done = Mutex::new(Vec::new());
        thread::scope(|scope| {
            for _ in 0..BUILDERS {
                scope.spawn(|| loop {
                    let Some((lan, backend)) = queue.lock().expect("not poisoned").pop() else { break };
                    eprintln!("bench: building the {} topology with {}", lan.name(), backend.name());
                    let built = BenchTopology::build(lan, backend);
                    done.lock().expect("not poisoned").push(((lan, backend), built));
                });
            }
        });
        let mut done = done.into_inner().expect("not poisoned");
        // In the order asked for, so that teardown (in reverse) is deterministic.
        done.sort_by_key(|(key, _)| keys.iter().position(|k| k == key));
        for (key, built) in done {
            match built {
                Ok(topology) => self.built.push((key, topology)),
                Err(err) => {
                    let error = cmd::one_line(&format!("{err:#}"));
                    eprintln!("bench: building the {} topology with {} FAILED: {error}", key.0.name(), key.1.name());
                    self.broken.push((key, error));
                }
            }
        }
    }

    fn get(&mut self, lan: LanKind, backend: Backend) -> Result<&mut BenchTopology> {
        let key = (lan, backend);
        if let Some((_, error)) = self.broken.iter().find(|(k, _)| *k == key) {
            return Err(anyhow!("the topology could not be built: {error}"));
        }
        let position = match self.built.iter().position(|(k, _)| *k == key) {
            Some(position) => position,
            None => {
                eprintln!("bench: building the {} topology with {}", lan.name(), backend.name());
                match BenchTopology::build(lan, backend) {
                    Ok(topology) => {
                        self.built.push((key, topology));
                        self.built.len() - 1
                    }
                    Err(err) => {
                        let error = cmd::one_line(&format!("{err:#}"));
                        eprintln!(
                            "bench: building the {} topology with {} FAILED: {error}",
                            lan.name(),
                            backend.name()
                        );
                        self.broken.push((key, error.clone()));
                        return Err(anyhow!("the topology could not be built: {error}"));
                    }
                }
            }
        };
        Ok(&mut self.built[position].1)
    }
}

impl Drop for Topologies {
    fn drop(&mut self) {
        while let Some((_, topology)) = self.built.pop() {
            drop(topology);
        }
    }
}
