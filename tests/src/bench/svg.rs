//! report.svg: one group of bars per scenario (kernel, xlan, limit) for the headline metric, 64-byte packets per
//! second with one IPv4 flow, each bar the median with a min-max whisker. Written by hand: a few rectangles and
//! lines do not need a plotting crate.

use std::fmt::Write as _;

use super::metrics::Metric;
use super::report::Report;
use super::topology::Backend;
use crate::topology::Family;

pub const METRIC: Metric = Metric::Pps { flows: 1, family: Family::V4 };

const GROUP_WIDTH: f64 = 170.0;
const BAR_WIDTH: f64 = 40.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 60.0;
const PLOT_HEIGHT: f64 = 300.0;
const BOTTOM: f64 = 80.0;
const GRID_LINES: u32 = 5;

fn color(backend: Backend) -> &'static str {
    match backend {
        Backend::Kernel => "#8c8c8c",
        Backend::Xlan => "#2b7bb9",
        Backend::Limit => "#e3a33b",
    }
}

pub fn render(report: &Report) -> String {
    let groups: Vec<_> = report.scenarios.iter().filter(|results| !results.results.is_empty()).collect();
    let width = LEFT + GROUP_WIDTH * groups.len().max(1) as f64 + 20.0;
    let height = TOP + PLOT_HEIGHT + BOTTOM;
    let highest = groups
        .iter()
        .flat_map(|results| Backend::ALL.into_iter().filter_map(|backend| results.get(backend, METRIC)))
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
    for (i, backend) in Backend::ALL.into_iter().enumerate() {
        let x = LEFT + i as f64 * 90.0;
        let _ = writeln!(svg, r#"<rect x="{x}" y="36" width="12" height="12" fill="{}"/>"#, color(backend));
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
    for (g, results) in groups.iter().enumerate() {
        let x0 = LEFT + g as f64 * GROUP_WIDTH + 15.0;
        for (b, backend) in Backend::ALL.into_iter().enumerate() {
            let Some(summary) = results.get(backend, METRIC) else { continue };
            let x = x0 + b as f64 * (BAR_WIDTH + 5.0);
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
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x0 + (3.0 * BAR_WIDTH + 10.0) / 2.0,
                TOP + PLOT_HEIGHT + 20.0 + 16.0 * line as f64,
                escape(text)
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}" stroke="black"/>"#,
        TOP + PLOT_HEIGHT
    );
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
