//! The report as plain-text tables, in the style of `docker ps`: per scenario a header line with its backends, one
//! row per metric, the median with the min-max range of the runs, and the ratios the targets are about; then the
//! targets, one row per scenario and comparison.

use std::fmt::Write as _;

use super::metrics::Metric;
use super::report::{Report, ScenarioResults};
use super::targets::Target;
use super::topology::Backend;

/// Comparisons shown as ratio columns, where the scenario has both backends.
const RATIOS: [(Backend, Backend); 5] = [
    (Backend::Xlan, Backend::Kernel),
    (Backend::Xlan, Backend::Limit),
    (Backend::XlanXdp, Backend::Kernel),
    (Backend::XlanXdp, Backend::LimitXdp),
    (Backend::Mixed, Backend::Kernel),
];
const LABEL_WIDTH: usize = 24;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for (n, results) in report.scenarios.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        scenario(&mut out, results);
    }
    targets(&mut out, &report.targets());
    out
}

fn scenario(out: &mut String, results: &ScenarioResults) {
    let s = &results.scenario;
    let _ = writeln!(out, "{}", s.title);
    if !s.limit.is_empty() {
        let _ = writeln!(out, "  ({})", s.limit);
    }
    let backends: Vec<Backend> = results.results.iter().map(|(backend, _)| *backend).collect();
    let ratios: Vec<(Backend, Backend)> =
        RATIOS.into_iter().filter(|(over, under)| backends.contains(over) && backends.contains(under)).collect();
    let metrics = results.metrics();
    let mut header: Vec<String> = backends.iter().map(|backend| backend.name().to_uppercase()).collect();
    header.extend(ratios.iter().map(|(over, under)| format!("{}/{}", over.name(), under.name()).to_uppercase()));
    let rows: Vec<Vec<String>> = metrics
        .iter()
        .map(|&metric| {
            let mut row: Vec<String> = backends.iter().map(|&backend| cell(results, backend, metric)).collect();
            row.extend(ratios.iter().map(|&(over, under)| ratio(results, metric, over, under)));
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter().map(|row| row[column].chars().count()).chain([header[column].len()]).max().unwrap_or(0)
        })
        .collect();
    let line = |label: &str, cells: &[String]| {
        let mut text = format!("  {label:<LABEL_WIDTH$}");
        for (column, cell) in cells.iter().enumerate() {
            let width = widths[column];
            // Values left-aligned, ratios right-aligned.
            if column < backends.len() {
                let _ = write!(text, " {cell:<width$}");
            } else {
                let _ = write!(text, " {cell:>width$}");
            }
        }
        text.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line("METRIC", &header));
    for (metric, row) in metrics.iter().zip(&rows) {
        let _ = writeln!(out, "{}", line(&metric.label(), row));
    }
    for failure in &results.failures {
        let _ = writeln!(
            out,
            "  FAILED on {}: {}, {} of {} run(s): {}",
            failure.backend.name(),
            failure.measurement.name(),
            failure.runs,
            results.runs_of(failure.backend, failure.measurement) + failure.runs,
            failure.error
        );
    }
}

/// A row of the targets table: scenario, comparison, (column, verdict) cells.
type TargetRow = (String, String, Vec<(String, String)>);

/// The targets: a row per scenario and comparison, a column per metric ("0.98 (0.96-1.00) ok": the comparison of the
/// medians, the range of the per-run ones, the verdict); FDB scale apart.
fn targets(out: &mut String, targets: &[Target]) {
    if targets.is_empty() {
        return;
    }
    let mut rows: Vec<TargetRow> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut others = Vec::new();
    for target in targets {
        let Some((key, pair)) = target.target.split_once(' ').filter(|(_, pair)| !pair.contains(' ')) else {
            others.push(target);
            continue;
        };
        let short = short_key(key);
        if !columns.contains(&short) {
            columns.push(short.clone());
        }
        // The ranges of the comparisons with a limit, which the goals are about; one run has none.
        let range = match target.range {
            Some((min, max)) if min != max && pair.contains("/limit") => {
                format!(" ({}..{})", target.format(min), target.format(max))
            }
            _ => String::new(),
        };
        let verdict = format!("{}{range} {}", target.format(target.value), if target.met { "ok" } else { "NO" });
        match rows.iter_mut().find(|(scenario, p, _)| *scenario == target.scenario && p == pair) {
            Some((_, _, cells)) => cells.push((short, verdict)),
            None => rows.push((target.scenario.clone(), pair.to_string(), vec![(short, verdict)])),
        }
    }
    let _ = writeln!(
        out,
        "\nTARGETS (medians of the paired per-run comparisons, their range in parentheses): pps >= 0.97 (macvlan), 0.85 (vxlan), 0.95 (ipvlan) \
         of the limit's; cpu <= the limit's + 30 ns; the xdp hook's tcp >= 0.95 of the tc hook's (and of its limit's); tcp >= 0.95 and \
         latency <= 1.05 of the kernel's; a VXLAN network of 1 M learned FDB entries deleted in < 1 s"
    );
    let scenario_width = rows.iter().map(|(scenario, _, _)| scenario.len()).chain([8]).max().unwrap_or(8);
    let pair_width = rows.iter().map(|(_, pair, _)| pair.len()).chain([10]).max().unwrap_or(10);
    let widths: Vec<usize> = columns
        .iter()
        .map(|column| {
            let cells = rows.iter().flat_map(|(_, _, cells)| cells.iter().filter(|(key, _)| key == column));
            cells.map(|(_, verdict)| verdict.len()).chain([column.len()]).max().unwrap_or(0)
        })
        .collect();
    let mut head = format!("{:<scenario_width$} {:<pair_width$}", "SCENARIO", "COMPARISON");
    for (column, width) in columns.iter().zip(&widths) {
        let _ = write!(head, " {column:>width$}");
    }
    let _ = writeln!(out, "{}", head.trim_end());
    for (scenario, pair, cells) in &rows {
        let mut line = format!("{scenario:<scenario_width$} {pair:<pair_width$}");
        for (column, width) in columns.iter().zip(&widths) {
            let cell = cells.iter().find(|(key, _)| key == column).map_or("-", |(_, verdict)| verdict.as_str());
            let _ = write!(line, " {cell:>width$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for target in others {
        let met = if target.met { "ok" } else { "NO" };
        let _ = writeln!(
            out,
            "{:<scenario_width$} {}: {} (goal {}) {met}",
            target.scenario,
            target.target,
            target.format(target.value),
            target.goal()
        );
    }
}

/// Column names of the targets table.
fn short_key(key: &str) -> String {
    match key {
        "pps_1flow" => "pps1",
        "pps_8flows" => "pps8",
        "pps_1flow_v6" => "pps1v6",
        "cpu_ns_per_packet" => "cpu",
        "tcp_gbps" => "tcp",
        "ping_p50_us" => "ping50",
        "ping_p99_us" => "ping99",
        "udp_rr_p50_us" => "rr50",
        "udp_rr_p99_us" => "rr99",
        other => other,
    }
    .to_string()
}

/// "733k (716k-830k)": median (min-max); "-" where the backend does not measure it.
fn cell(results: &ScenarioResults, backend: Backend, metric: Metric) -> String {
    match results.get(backend, metric) {
        Some(summary) if summary.runs.len() > 1 => format!(
            "{} ({}-{})",
            metric.format(summary.median()),
            metric.format(summary.min()),
            metric.format(summary.max())
        ),
        Some(summary) => metric.format(summary.median()),
        None if failed(results, backend, metric) => "FAIL".into(),
        None => "-".into(),
    }
}

fn failed(results: &ScenarioResults, backend: Backend, metric: Metric) -> bool {
    results.failures.iter().any(|f| f.backend == backend && f.measurement.metrics().contains(&metric))
}

fn ratio(results: &ScenarioResults, metric: Metric, over: Backend, under: Backend) -> String {
    match (results.get(over, metric), results.get(under, metric)) {
        (Some(over), Some(under)) => format!("{:.2}", over.median() / under.median()),
        _ => "-".into(),
    }
}
