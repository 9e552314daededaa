//! report.svg: one group of bars per scenario (each of its backends) for the headline metric, 64-byte packets per
//! second with one IPv4 flow, each bar the median with a min-max whisker. Written by hand: a few rectangles and
//! lines do not need a plotting crate.

use std::fmt::Write as _;

use super::metrics::Metric;
use super::report::{Report, ScenarioResults};
use super::topology::Backend;
use crate::topology::Family;

pub const METRIC: Metric = Metric::Pps { flows: 1, family: Family::V4 };

const BAR_WIDTH: f64 = 36.0;
const BAR_GAP: f64 = 4.0;
const GROUP_GAP: f64 = 26.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 60.0;
const PLOT_HEIGHT: f64 = 300.0;
const BOTTOM: f64 = 80.0;
const GRID_LINES: u32 = 5;
const LEGEND_STEP: f64 = 95.0;
/// Room for a group's two label lines ("macvlan-bridge", "fdb-1000000") at 11 px.
const MIN_LABEL_WIDTH: f64 = 88.0;

fn color(backend: Backend) -> &'static str {
    match backend {
        Backend::Kernel => "#8c8c8c",
        Backend::Xlan => "#2b7bb9",
        Backend::XlanXdp => "#8dbde6",
        Backend::Mixed => "#4a9e5c",
        Backend::Limit => "#e3a33b",
        Backend::LimitXdp => "#f2d29b",
    }
}

/// The backends of a group that measured the metric, in the scenario's order.
fn bars(results: &ScenarioResults) -> Vec<Backend> {
    results
        .results
        .iter()
        .map(|(backend, _)| *backend)
        .filter(|&backend| results.get(backend, METRIC).is_some())
        .collect()
}

/// The width of a group's bars, and of the group with its labels (which need room of their own).
fn bars_width(bars: usize) -> f64 {
    bars as f64 * (BAR_WIDTH + BAR_GAP) - BAR_GAP
}

fn group_width(bars: usize) -> f64 {
    bars_width(bars).max(MIN_LABEL_WIDTH) + GROUP_GAP
}

pub fn render(report: &Report) -> String {
    let groups: Vec<(&ScenarioResults, Vec<Backend>)> =
        report.scenarios.iter().map(|results| (results, bars(results))).filter(|(_, bars)| !bars.is_empty()).collect();
    let plot_width: f64 = groups.iter().map(|(_, bars)| group_width(bars.len())).sum();
    let legend: Vec<Backend> =
        Backend::ALL.into_iter().filter(|backend| groups.iter().any(|(_, bars)| bars.contains(backend))).collect();
    let width = (LEFT + plot_width.max(1.0) + 20.0).max(LEFT + LEGEND_STEP * legend.len() as f64 + 20.0).max(620.0);
    let height = TOP + PLOT_HEIGHT + BOTTOM;
    let highest = groups
        .iter()
        .flat_map(|(results, bars)| bars.iter().filter_map(|&backend| results.get(backend, METRIC)))
        .map(|summary| summary.max())
        .fold(0.0, f64::max);
    let top = nice_ceiling(highest.max(1.0));
    let y = |value: f64| TOP + PLOT_HEIGHT * (1.0 - value / top);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">64-byte UDP packets/s delivered, 1 flow, IPv4 (median, min-max whiskers)</text>"#
    );
    for (i, backend) in legend.iter().enumerate() {
        let x = LEFT + i as f64 * LEGEND_STEP;
        let _ = writeln!(svg, r#"<rect x="{x}" y="36" width="12" height="12" fill="{}"/>"#, color(*backend));
        let _ = writeln!(svg, r#"<text x="{}" y="46">{}</text>"#, x + 16.0, backend.name());
    }
    for step in 0..=GRID_LINES {
        let value = top * f64::from(step) / f64::from(GRID_LINES);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{:.1}M</text>"##,
            width - 20.0,
            LEFT - 6.0,
            y(value) + 4.0,
            value / 1e6,
            y = y(value),
        );
    }
    let mut x0 = LEFT + GROUP_GAP / 2.0;
    for (results, bars) in &groups {
        let span = group_width(bars.len()) - GROUP_GAP;
        let first = x0 + (span - bars_width(bars.len())) / 2.0;
        for (b, &backend) in bars.iter().enumerate() {
            let Some(summary) = results.get(backend, METRIC) else { continue };
            let x = first + b as f64 * (BAR_WIDTH + BAR_GAP);
            let (median, min, max) = (summary.median(), summary.min(), summary.max());
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{BAR_WIDTH}" height="{:.1}" fill="{}"><title>{} {}: {}</title></rect>"#,
                y(median),
                y(0.0) - y(median),
                color(backend),
                escape(&results.scenario.id),
                backend.name(),
                METRIC.format(median),
            );
            let mid = x + BAR_WIDTH / 2.0;
            let _ = writeln!(
                svg,
                r#"<path d="M{mid:.1} {:.1}V{:.1}M{:.1} {:.1}h12M{:.1} {:.1}h12" stroke="black" fill="none"/>"#,
                y(min),
                y(max),
                mid - 6.0,
                y(min),
                mid - 6.0,
                y(max),
            );
            let _ = writeln!(
                svg,
                r#"<text x="{mid:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                y(max) - 4.0,
                METRIC.format(median)
            );
        }
        // The id's two halves on two lines: the LAN, then the path.
        let (lan, path) = results.scenario.id.split_once('/').unwrap_or((&results.scenario.id, ""));
        for (line, text) in [lan, path].into_iter().enumerate() {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
                x0 + span / 2.0,
                TOP + PLOT_HEIGHT + 20.0 + 15.0 * line as f64,
                escape(text)
            );
        }
        x0 += group_width(bars.len());
    }
    let _ = writeln!(svg, r#"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}" stroke="black"/>"#, TOP + PLOT_HEIGHT);
    svg.push_str("</svg>\n");
    svg
}

/// The smallest 1, 2 or 5 times a power of ten at or above `value`: a round top for the axis.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|&top| top >= value).unwrap_or(10.0 * power)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.3e6), 2e6);
        assert_eq!(nice_ceiling(4.2e6), 5e6);
        assert_eq!(nice_ceiling(6e6), 1e7);
    }
}
