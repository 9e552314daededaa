//! The benchmark behind `cargo xtask bench` (the `xlan-bench` binary): per virtual LAN (macvlan bridge, vxlan,
//! ipvlan l3) the same topology built with the kernel's driver (for ipvlan: routing), with xlan (both parent hooks
//! where the hook decides the path) and with bare redirects (the limit), the same load driven through each, and a
//! report (table, report.json, report.svg). See README.md, "Benchmarks", for what is measured and how.
//!
//! The load comes from an XDP generator run through BPF_PROG_TEST_RUN in live-frames mode (about 4 Mpps on one
//! CPU here, where socket senders reach ~0.2 Mpps), so the generator is not what limits the numbers. Delivery is
//! counted at the same point for every backend: a TC counter on the endpoint's own interface, and the endpoint's UDP
//! statistics. All namespaces, devices and processes are the bench's own and go away when it ends.

pub mod broadcast;
pub mod child;
pub mod frame;
pub mod generator;
pub mod ipvlan;
pub mod latency;
pub mod macvlan;
pub mod measure;
pub mod metrics;
pub mod options;
pub mod procfs;
pub mod programs;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod stats;
pub mod svg;
pub mod table;
pub mod targets;
pub mod tcp;
pub mod topology;
pub mod vxlan;

use std::path::Path;

use anyhow::{Context, Result};

pub use options::{Options, Settings};
pub use report::Report;

/// Writes report.json and report.svg into `dir`.
pub fn write_outputs(report: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(&report.to_json())? + "\n";
    for (name, text) in [("report.json", json), ("report.svg", svg::render(report))] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
