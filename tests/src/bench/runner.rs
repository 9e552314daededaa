//! The bench run: every topology the chosen scenarios need is built once (kernel, xlan, limit, side by side), then
//! each scenario's measurements run `runs` times with the backends interleaved inside each round, so that the
//! machine's slow drifts (it is shared and noisy) touch all backends alike.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};

use super::measure::measure;
use super::options::Settings;
use super::report::{Report, ScenarioResults};
use super::scenario::{self, Scenario};
use super::topology::{Backend, BenchTopology, LanKind};

pub fn run(settings: &Settings, stop: &AtomicBool) -> Result<Report> {
    let scenarios = scenario::select(scenario::catalog(&settings.fdb_sizes), &settings.scenarios);
    if scenarios.is_empty() {
        bail!("no scenario id contains any of {:?} (try --list)", settings.scenarios);
    }
    // Leftovers of a bench or test run that was killed before it could clean up.
    crate::netns::sweep_stale();
    let mut topologies = Topologies::default();
    for scenario in &scenarios {
        for &backend in &scenario.backends {
            topologies.get(scenario.lan, backend)?;
        }
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
    if let Some(entries) = scenario.fdb_entries {
        eprintln!("bench: {}: filling xlan's FDB to {entries} entries", scenario.id);
        topologies.get(scenario.lan, Backend::Xlan)?.fill_fdb(entries)?;
    }
    let mut results = ScenarioResults::new(scenario.clone());
    for &measurement in &scenario.measurements {
        for run in 1..=settings.runs {
            let mut line = format!("bench: {}: {} run {run}/{}:", scenario.id, measurement.name(), settings.runs);
            for &backend in scenario.backends.iter().filter(|&&backend| measurement.applies_to(backend)) {
                if stop.load(Ordering::Relaxed) {
                    bail!("interrupted");
                }
                let topology = topologies.get(scenario.lan, backend)?;
                let values = measure(topology, &scenario, measurement, settings, stop)
                    .with_context(|| format!("{}: {} on {}", scenario.id, measurement.name(), backend.name()))?;
                for (metric, value) in measurement.metrics().into_iter().zip(values) {
                    results.record(backend, metric, value);
                    line.push_str(&format!(" {} {}={}", backend.name(), metric.key(), metric.format(value)));
                }
            }
            eprintln!("{line}");
        }
    }
    Ok(results)
}

/// The topologies of this run, built on first use and torn down (in reverse) when the run ends.
#[derive(Default)]
struct Topologies(Vec<((LanKind, Backend), BenchTopology)>);

impl Topologies {
    fn get(&mut self, lan: LanKind, backend: Backend) -> Result<&mut BenchTopology> {
        let position = match self.0.iter().position(|(key, _)| *key == (lan, backend)) {
            Some(position) => position,
            None => {
                eprintln!("bench: building the {} topology with {}", lan.name(), backend.name());
                let topology = BenchTopology::build(lan, backend)
                    .with_context(|| format!("building the {} topology with {}", lan.name(), backend.name()))?;
                self.0.push(((lan, backend), topology));
                self.0.len() - 1
            }
        };
        Ok(&mut self.0[position].1)
    }
}

impl Drop for Topologies {
    fn drop(&mut self) {
        while let Some((_, topology)) = self.0.pop() {
            drop(topology);
        }
    }
}
