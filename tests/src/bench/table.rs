//! The report as plain-text tables, in the style of `docker ps`: a header line, one row per metric, the median
//! with the min-max range of the runs, and the ratios the targets are about; then the targets.

use std::fmt::Write as _;

use super::metrics::Metric;
use super::report::{Report, ScenarioResults};
use super::topology::Backend;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:<22} {:<22} {:<22} {:>11} {:>10}",
        "METRIC", "KERNEL", "XLAN", "LIMIT", "XLAN/KERNEL", "XLAN/LIMIT"
    );
    for results in &report.scenarios {
        let s = &results.scenario;
        let limit = if s.limit.is_empty() { String::new() } else { format!("  (limit: {})", s.limit) };
        let _ = writeln!(out, "{}{limit}", s.title);
        for metric in results.metrics() {
            let cells = Backend::ALL.map(|backend| cell(results, backend, metric));
            let _ = writeln!(
                out,
                "  {:<24} {:<22} {:<22} {:<22} {:>11} {:>10}",
                metric.label(),
                cells[0],
                cells[1],
                cells[2],
                ratio(results, metric, Backend::Xlan, Backend::Kernel),
                ratio(results, metric, Backend::Xlan, Backend::Limit),
            );
        }
    }
    let targets = report.targets();
    if !targets.is_empty() {
        let _ = writeln!(out, "\n{:<34} {:<40} {:>7} {:<8} MET", "SCENARIO", "TARGET", "RATIO", "GOAL");
        for target in targets {
            let met = if target.met { "yes" } else { "NO" };
            let _ = writeln!(
                out,
                "{:<34} {:<40} {:>7.2} {:<8} {met}",
                target.scenario, target.target, target.ratio, target.goal
            );
        }
    }
    out
}

/// "1.23M (1.20-1.25)": median (min-max); "-" where the backend does not measure it.
fn cell(results: &ScenarioResults, backend: Backend, metric: Metric) -> String {
    match results.get(backend, metric) {
        Some(summary) if summary.runs.len() > 1 => format!(
            "{} ({}-{})",
            metric.format(summary.median()),
            metric.format(summary.min()),
            metric.format(summary.max())
        ),
        Some(summary) => metric.format(summary.median()),
        None => "-".into(),
    }
}

fn ratio(results: &ScenarioResults, metric: Metric, over: Backend, under: Backend) -> String {
    match (results.get(over, metric), results.get(under, metric)) {
        (Some(over), Some(under)) => format!("{:.2}", over.median() / under.median()),
        _ => "-".into(),
    }
}
