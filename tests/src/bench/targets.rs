//! The goals of issue 13, checked against the medians, each of xlan's parent hooks against the limit of the same
//! hook: xlan's packet rate at least a LAN's share of the limit's (macvlan 0.97, vxlan 0.85, ipvlan l3 0.95) and its
//! CPU per packet at most the limit's + 30 ns; the xdp hook's TCP at least 0.95 of the tc hook's. Against the
//! kernel only what the limit does not rule out: TCP not below and latency not above the kernel's (a 5 % allowance
//! for this machine's noise). The limits themselves are within ~10 % of the kernel's packet rates on veth, so "2× the
//! kernel" (issue 3) is no goal any more. Per LAN, the packet rate with the largest FDB within 10 % of the smallest.
//!
//! The backends' runs are interleaved round by round, so run n of one and run n of the other saw the same state of
//! the machine: a target is the median of those paired per-run comparisons, with their range. A slow spell of the
//! machine (its CPU per packet moves by ±100 ns between rounds) then moves both sides of one comparison, not the
//! median of one side only. Without pairs (different run counts), the medians are compared.

use serde_json::{json, Value};

use super::metrics::Metric;
use super::report::ScenarioResults;
use super::stats::Summary;
use super::topology::{Backend, LanKind};

/// Noise allowance for "not below" / "not above" the kernel: runs on this shared machine vary by a few per cent.
const NOISE: f64 = 0.05;
/// How much more CPU per packet than the limit's xlan may take, ns.
const CPU_OVER_LIMIT_NS: f64 = 30.0;

#[derive(Debug, Clone)]
pub struct Target {
    pub scenario: String,
    /// What is compared, e.g. "pps_1flow xlan/limit" (a ratio; for cpu_ns_per_packet against a limit, a difference).
    pub target: String,
    /// The median of the per-run comparisons (or the comparison of the medians, without pairs).
    pub value: f64,
    /// The lowest and highest per-run comparison, when both backends have the same runs.
    pub range: Option<(f64, f64)>,
    pub comparison: Comparison,
    pub met: bool,
}

impl Target {
    /// The goal in words, e.g. ">= 0.97" or "<= +30 ns".
    pub fn goal(&self) -> String {
        match self.comparison {
            Comparison::AtLeast(bound) => format!(">= {bound}"),
            Comparison::AtMost(bound) => format!("<= {bound}"),
            Comparison::NsOver(bound) => format!("<= +{bound} ns"),
        }
    }

    /// "0.98" for a ratio, "+26" for a difference in ns.
    pub fn format(&self, value: f64) -> String {
        match self.comparison {
            Comparison::NsOver(_) => format!("{value:+.0}"),
            _ => format!("{value:.2}"),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario, "target": self.target, "value": self.value,
            "min": self.range.map(|(min, _)| min), "max": self.range.map(|(_, max)| max),
            "goal": self.goal(), "met": self.met,
        })
    }
}

/// How a comparison is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparison {
    /// `over / under` at least this.
    AtLeast(f64),
    /// `over / under` at most this.
    AtMost(f64),
    /// `over - under` at most this many ns.
    NsOver(f64),
}

impl Comparison {
    fn of(self, over: f64, under: f64) -> f64 {
        match self {
            Comparison::NsOver(_) => over - under,
            _ => over / under,
        }
    }

    fn met(self, value: f64) -> bool {
        match self {
            Comparison::AtLeast(bound) => value >= bound,
            Comparison::AtMost(bound) | Comparison::NsOver(bound) => value <= bound,
        }
    }
}

/// `over` compared with `under`.
struct Goal {
    over: Backend,
    under: Backend,
    comparison: Comparison,
}

pub fn evaluate(scenarios: &[ScenarioResults]) -> Vec<Target> {
    let mut targets = Vec::new();
    for results in scenarios.iter().filter(|results| results.scenario.fdb_entries.is_none()) {
        for metric in results.metrics() {
            for goal in goals(results.scenario.lan, metric) {
                let (Some(over), Some(under)) = (results.get(goal.over, metric), results.get(goal.under, metric))
                else {
                    continue;
                };
                let paired = per_run(goal.comparison, over, under);
                let value = paired.as_ref().map_or_else(
                    || goal.comparison.of(over.median(), under.median()),
                    |comparisons| comparisons.median(),
                );
                targets.push(Target {
                    scenario: results.scenario.id.clone(),
                    target: format!("{} {}/{}", metric.key(), goal.over.name(), goal.under.name()),
                    value,
                    range: paired.map(|comparisons| (comparisons.min(), comparisons.max())),
                    comparison: goal.comparison,
                    met: goal.comparison.met(value),
                });
            }
        }
    }
    let mut lans: Vec<LanKind> = Vec::new();
    for lan in scenarios.iter().map(|results| results.scenario.lan) {
        if !lans.contains(&lan) {
            lans.push(lan);
        }
    }
    targets.extend(lans.into_iter().filter_map(|lan| fdb_scale(scenarios, lan)));
    targets.extend(network_delete(scenarios));
    targets
}

/// Issue 13's goal: a VXLAN network of 1 M learned entries is deleted in under a second (judged at the most entries
/// measured).
fn network_delete(scenarios: &[ScenarioResults]) -> Option<Target> {
    let (entries, took_ms) = scenarios
        .iter()
        .filter_map(|results| {
            let took = results.get(Backend::Xlan, Metric::NetworkDeleteMs)?.median();
            Some((results.scenario.fdb_entries?, took))
        })
        .max_by_key(|(entries, _)| *entries)?;
    let comparison = Comparison::AtMost(1000.0);
    Some(Target {
        scenario: "vxlan/fdb".into(),
        target: format!("ms to delete a network of {entries} learned FDB entries"),
        value: took_ms,
        range: None,
        comparison,
        met: comparison.met(took_ms),
    })
}

/// The share of the limit's packet rate xlan must reach on a LAN.
fn pps_share(lan: LanKind) -> f64 {
    match lan {
        LanKind::MacvlanBridge => 0.97,
        LanKind::Vxlan => 0.85,
        LanKind::IpvlanL3 => 0.95,
    }
}

/// Both of xlan's parent hooks are held to the same goals against the limit of their own shape. The mixed vxlan
/// pair is reported, not held to anything.
fn goals(lan: LanKind, metric: Metric) -> Vec<Goal> {
    let mut goals = Vec::new();
    for over in [Backend::Xlan, Backend::XlanXdp] {
        let limit = over.limit().expect("xlan's backends have a limit");
        let versus_kernel = |comparison| Goal { over, under: Backend::Kernel, comparison };
        match metric {
            Metric::Pps { .. } => {
                goals.push(Goal { over, under: limit, comparison: Comparison::AtLeast(pps_share(lan)) })
            }
            Metric::CpuNsPerPacket => {
                goals.push(Goal { over, under: limit, comparison: Comparison::NsOver(CPU_OVER_LIMIT_NS) })
            }
            Metric::TcpGbps => goals.push(versus_kernel(Comparison::AtLeast(1.0 - NOISE))),
            Metric::PingP50Us | Metric::PingP99Us | Metric::UdpRrP50Us | Metric::UdpRrP99Us => {
                goals.push(versus_kernel(Comparison::AtMost(1.0 + NOISE)))
            }
            Metric::UdpPps { .. } | Metric::BpfNsPerPacket | Metric::NetworkDeleteMs => {}
        }
    }
    if metric == Metric::TcpGbps {
        // Issue 13's goal. On a veth parent any XDP program makes the veth copy every skb into a page first, so the
        // bare XDP redirect's TCP, held against too, shows what this wire allows the xdp hook.
        goals.push(Goal { over: Backend::XlanXdp, under: Backend::Xlan, comparison: Comparison::AtLeast(1.0 - NOISE) });
        goals.push(Goal {
            over: Backend::XlanXdp,
            under: Backend::LimitXdp,
            comparison: Comparison::AtLeast(1.0 - NOISE),
        });
    }
    goals
}

/// The comparisons of run n with run n, when both have the same number of runs.
fn per_run(comparison: Comparison, over: &Summary, under: &Summary) -> Option<Summary> {
    if over.runs.len() != under.runs.len() || over.runs.is_empty() {
        return None;
    }
    Some(Summary {
        runs: over.runs.iter().zip(&under.runs).map(|(&over, &under)| comparison.of(over, under)).collect(),
    })
}

/// xlan's packet rate on `lan` with the most FDB entries over the rate with the fewest.
fn fdb_scale(scenarios: &[ScenarioResults], lan: LanKind) -> Option<Target> {
    let mut sized: Vec<(u32, f64)> = scenarios
        .iter()
        .filter(|results| results.scenario.lan == lan)
        .filter_map(|results| {
            let metric = *results.metrics().first()?;
            Some((results.scenario.fdb_entries?, results.get(Backend::Xlan, metric)?.median()))
        })
        .collect();
    sized.sort_by_key(|(entries, _)| *entries);
    let ((fewest, base), (most, largest)) = (*sized.first()?, *sized.last()?);
    if fewest == most {
        return None;
    }
    let comparison = Comparison::AtLeast(0.9);
    let value = largest / base;
    Some(Target {
        scenario: format!("{}/fdb", lan.name()),
        target: format!("xlan pps with {most} FDB entries / with {fewest}"),
        value,
        range: None,
        comparison,
        met: comparison.met(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_judge_ratios_and_differences() {
        assert!(Comparison::AtLeast(0.97).met(Comparison::AtLeast(0.97).of(98.0, 100.0)));
        assert!(!Comparison::AtLeast(0.97).met(0.96));
        assert!(Comparison::NsOver(30.0).met(Comparison::NsOver(30.0).of(1020.0, 1000.0)));
        assert!(!Comparison::NsOver(30.0).met(Comparison::NsOver(30.0).of(1040.0, 1000.0)));
        let over = Summary { runs: vec![99.0, 90.0, 101.0] };
        let under = Summary { runs: vec![100.0, 100.0, 100.0] };
        let paired = per_run(Comparison::AtLeast(0.97), &over, &under).expect("paired runs");
        assert_eq!((paired.min(), paired.median(), paired.max()), (0.9, 0.99, 1.01));
        // One slow round moves both sides: the paired median keeps to the other rounds, the medians' difference not.
        let xlan = Summary { runs: vec![1010.0, 1200.0, 1020.0] };
        let limit = Summary { runs: vec![1000.0, 1190.0, 1150.0] };
        assert_eq!(per_run(Comparison::NsOver(30.0), &xlan, &limit).expect("paired runs").median(), 10.0);
        assert_eq!(Comparison::NsOver(30.0).of(xlan.median(), limit.median()), -130.0);
    }
}
