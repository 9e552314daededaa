//! The reachability matrix of a topology: for every ordered pair of distinct nodes and every probe, did it get through.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::thread;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::netns::Netns;
use crate::probe::Probe;
use crate::topology::{Family, Node, Topology};

/// What a matrix can be measured on: nodes, each with the namespace its probes run in and are answered from, at
/// the address [`Probed::probed_addr`] gives (by default the node's own, [`Node::addr`]). The macvlan [`Topology`]
/// is one; the VXLAN lab's networks and the ipvlan topologies are others.
pub trait Probed: Sync {
    fn probed_nodes(&self) -> Vec<Node>;
    fn probed_netns(&self, node: Node) -> &Netns;
    /// The address probes of `family` to `node` go to.
    fn probed_addr(&self, node: Node, family: Family) -> IpAddr {
        node.addr(family)
    }
}

impl Probed for Topology {
    fn probed_nodes(&self) -> Vec<Node> {
        self.nodes()
    }

    fn probed_netns(&self, node: Node) -> &Netns {
        self.netns(node)
    }
}

/// Probes of one matrix run concurrently, bounded: an unreachable probe waits out its timeout (1-2 s), and a matrix has
/// up to 80 of them. Each probe uses at most two threads and one short-lived process, so 8 keeps a 2-core machine
/// responsive while a mostly-unreachable matrix still takes seconds, not minutes.
const PARALLEL_PROBES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    nodes: Vec<Node>,
    cells: BTreeMap<(Node, Node, Probe), bool>,
}

/// One cell that differs between two matrices (`None`: the cell is missing from that matrix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellDiff {
    pub src: Node,
    pub dst: Node,
    pub probe: Probe,
    pub left: Option<bool>,
    pub right: Option<bool>,
}

impl Matrix {
    /// Runs every probe between every ordered pair of distinct nodes of the topology.
    pub fn measure(topology: &impl Probed) -> Result<Matrix> {
        let nodes = topology.probed_nodes();
        let mut pending: Vec<(Node, Node, Probe)> = nodes
            .iter()
            .flat_map(|&src| nodes.iter().filter(move |&&dst| dst != src).map(move |&dst| (src, dst)))
            .flat_map(|(src, dst)| Probe::ALL.into_iter().map(move |probe| (src, dst, probe)))
            .collect();
        pending.reverse(); // workers pop from the end; this keeps the start order row by row
        let queue = Mutex::new(pending);
        let results = Mutex::new(Vec::new());

        thread::scope(|scope| {
            for _ in 0..PARALLEL_PROBES {
                scope.spawn(|| loop {
                    let Some((src, dst, probe)) = queue.lock().expect("queue lock").pop() else {
                        break;
                    };
                    let addr = topology.probed_addr(dst, probe.family());
                    let outcome = probe
                        .run(topology.probed_netns(src), topology.probed_netns(dst), addr)
                        .with_context(|| format!("probe {} {src} -> {dst} ({addr})", probe.name()));
                    results.lock().expect("results lock").push(((src, dst, probe), outcome));
                });
            }
        });

        let mut cells = BTreeMap::new();
        for (cell, outcome) in results.into_inner().expect("results lock") {
            cells.insert(cell, outcome?);
        }
        Ok(Matrix { nodes, cells })
    }

    /// A matrix of the given cells ((source, destination, probe) -> reachable) over `nodes`, e.g. an expected one.
    pub fn from_cells(nodes: Vec<Node>, cells: impl IntoIterator<Item = ((Node, Node, Probe), bool)>) -> Matrix {
        Matrix { nodes, cells: cells.into_iter().collect() }
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Only the cells whose pair (source, destination) `keep` accepts, for comparing parts of matrices.
    pub fn restricted(&self, keep: impl Fn(Node, Node) -> bool) -> Matrix {
        Matrix {
            nodes: self.nodes.clone(),
            cells: self
                .cells
                .iter()
                .filter(|((src, dst, _), _)| keep(*src, *dst))
                .map(|(&cell, &value)| (cell, value))
                .collect(),
        }
    }

    /// The probe's result from `src` to `dst`; `None` for the diagonal and nodes not in the matrix.
    pub fn get(&self, src: Node, dst: Node, probe: Probe) -> Option<bool> {
        self.cells.get(&(src, dst, probe)).copied()
    }

    /// Whether any probe got from `src` to `dst`.
    pub fn any_probe(&self, src: Node, dst: Node) -> bool {
        Probe::ALL.into_iter().any(|probe| self.get(src, dst, probe) == Some(true))
    }

    /// Every cell of a pair (source, destination) that `pairs` accepts where a probe did not get through, as
    /// differences from an all-reachable matrix (left: reachable, right: what this matrix holds), in row order.
    pub fn unreachable(&self, pairs: impl Fn(Node, Node) -> bool) -> Vec<CellDiff> {
        let nodes = &self.nodes;
        nodes
            .iter()
            .flat_map(|&src| nodes.iter().filter(move |&&dst| dst != src).map(move |&dst| (src, dst)))
            .filter(|&(src, dst)| pairs(src, dst))
            .flat_map(|(src, dst)| Probe::ALL.into_iter().map(move |probe| (src, dst, probe)))
            .filter(|&(src, dst, probe)| self.get(src, dst, probe) != Some(true))
            .map(|(src, dst, probe)| CellDiff { src, dst, probe, left: Some(true), right: self.get(src, dst, probe) })
            .collect()
    }

    /// Every cell whose value differs between `self` (left) and `other` (right), in row order.
    pub fn diff(&self, other: &Matrix) -> Vec<CellDiff> {
        let mut keys: Vec<_> = self.cells.keys().chain(other.cells.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|(src, dst, probe)| CellDiff {
                src,
                dst,
                probe,
                left: self.get(src, dst, probe),
                right: other.get(src, dst, probe),
            })
            .filter(|cell| cell.left != cell.right)
            .collect()
    }

    pub fn to_json(&self) -> Value {
        let cells: Vec<Value> = self
            .cells
            .iter()
            .map(|(&(src, dst, probe), &reachable)| {
                json!({"src": src.to_string(), "dst": dst.to_string(), "probe": probe.name(), "reachable": reachable})
            })
            .collect();
        json!({
            "nodes": self.nodes.iter().map(Node::to_string).collect::<Vec<_>>(),
            "probes": Probe::ALL.iter().map(|probe| probe.name()).collect::<Vec<_>>(),
            "cells": cells,
        })
    }

    /// The text of one cell: the letters of the probes that got through, `-` for those that did not, a lone `-` when
    /// none did, `.` on the diagonal, blank for a pair the matrix does not hold (see [`Matrix::restricted`]).
    fn cell_text(&self, src: Node, dst: Node) -> String {
        if src == dst {
            return ".".to_string();
        }
        if Probe::ALL.into_iter().all(|probe| self.get(src, dst, probe).is_none()) {
            return " ".to_string();
        }
        if !self.any_probe(src, dst) {
            return "-".to_string();
        }
        Probe::ALL
            .into_iter()
            .map(|probe| if self.get(src, dst, probe) == Some(true) { probe.letter() } else { '-' }.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Rows are sources, columns destinations.
impl fmt::Display for Matrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header: Vec<String> = self.nodes.iter().map(Node::to_string).collect();
        let mut lines = vec![row_text("src\\dst", &header)];
        for &src in &self.nodes {
            let cells: Vec<String> = self.nodes.iter().map(|&dst| self.cell_text(src, dst)).collect();
            lines.push(row_text(&src.to_string(), &cells));
        }
        for line in lines {
            writeln!(f, "{}", line.trim_end())?;
        }
        let legend: Vec<String> =
            Probe::ALL.iter().map(|probe| format!("{}={}", probe.letter(), probe.name())).collect();
        writeln!(f, "({}; - = no reply; rows: source, columns: destination)", legend.join(" "))
    }
}

/// One line of the table: a label column, then fixed-width cells.
fn row_text(label: &str, cells: &[String]) -> String {
    const CELL_WIDTH: usize = 9;
    let mut line = format!("{label:<7}");
    for cell in cells {
        line.push_str(&format!(" {cell:<CELL_WIDTH$}"));
    }
    line
}

/// The differing cells, one line each: `  src -> dst probe: LEFT_NAME reachable, RIGHT_NAME unreachable`.
pub fn describe_diff(diff: &[CellDiff], left_name: &str, right_name: &str) -> String {
    diff.iter()
        .map(|cell| {
            format!(
                "  {} -> {} {}: {left_name} {}, {right_name} {}\n",
                cell.src,
                cell.dst,
                cell.probe.name(),
                reachability(cell.left),
                reachability(cell.right)
            )
        })
        .collect()
}

fn reachability(cell: Option<bool>) -> &'static str {
    match cell {
        Some(true) => "reachable",
        Some(false) => "unreachable",
        None => "missing",
    }
}
