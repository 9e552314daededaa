//! One run of one measurement on one topology: the packet rates (generator unpaced), the CPU cost per packet
//! (generator paced), and the round trips (TCP, ping, UDP request/response).

use std::os::fd::AsFd;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Result};
use datapath_common::bench::BenchConfig;

use super::frame::{parse_mac, udp_frame, Flow};
use super::generator::{self, generator_cpu, Load, Sent};
use super::metrics::Measurement;
use super::options::Settings;
use super::procfs;
use super::scenario::Scenario;
use super::topology::{BenchTopology, BASE_SOURCE_PORT, SINK_PORT};
use super::{latency, tcp};
use crate::topology::Family;

/// After the generator stops, frames still queued (a veth ring, the backlog) reach the counters within this.
const SETTLE: Duration = Duration::from_millis(50);

/// Runs `measurement` once; the values are in the order of `measurement.metrics()`.
pub fn measure(
    topology: &mut BenchTopology,
    scenario: &Scenario,
    measurement: Measurement,
    settings: &Settings,
    stop: &AtomicBool,
) -> Result<Vec<f64>> {
    let dst_addr = scenario.dst.ipv4().into();
    let (src, dst) = (scenario.src, scenario.dst);
    Ok(match measurement {
        Measurement::Pps { flows, family } => {
            let load = Load { duration: settings.duration, rate_pps: None };
            let (sent, delivered) = drive(topology, scenario, family, flows, load, stop)?;
            let seconds = sent.elapsed.as_secs_f64();
            vec![delivered.tc as f64 / seconds, delivered.udp as f64 / seconds]
        }
        Measurement::Cpu => vec![cpu_per_packet(topology, scenario, settings, stop)?],
        Measurement::Tcp => vec![tcp::gbps(topology.netns(src), topology.netns(dst), dst_addr, settings.tcp_seconds)?],
        Measurement::Ping => {
            let trips = latency::ping(topology.netns(src), dst_addr, settings.ping_count)?;
            vec![trips.p50_us, trips.p99_us]
        }
        Measurement::UdpRequestResponse => {
            let (src, dst) = (topology.netns(src), topology.netns(dst));
            let trips = latency::udp_request_response(src, dst, dst_addr, settings.request_count)?;
            vec![trips.p50_us, trips.p99_us]
        }
    })
}

/// Frames delivered to the scenario's destination: at its interface (TC counter) and at its UDP sockets.
#[derive(Debug, Clone, Copy)]
struct Delivered {
    tc: u64,
    udp: u64,
}

/// Kernel CPU time per frame delivered, at the fixed offered load of `settings`. Only the generator's CPU is read:
/// the whole path runs there (see `generator`), and the other CPU's share of this shared machine's noise stays out.
/// The generator's own cost is included, the same for every backend.
fn cpu_per_packet(topology: &mut BenchTopology, scenario: &Scenario, settings: &Settings, stop: &AtomicBool) -> Result<f64> {
    let load = Load { duration: settings.cpu_duration, rate_pps: Some(settings.cpu_load_pps) };
    let before = procfs::cpu_kernel_time(generator_cpu())?;
    let (_, delivered) = drive(topology, scenario, Family::V4, 1, load, stop)?;
    let spent = procfs::cpu_kernel_time(generator_cpu())?.saturating_sub(before);
    if delivered.tc == 0 {
        bail!("{}: nothing was delivered at {} under the paced load", scenario.id, scenario.dst);
    }
    Ok(spent.as_nanos() as f64 / delivered.tc as f64)
}

/// Generates `load` from the scenario's source to its destination and counts what arrived.
fn drive(
    topology: &mut BenchTopology,
    scenario: &Scenario,
    family: Family,
    flows: u32,
    load: Load,
    stop: &AtomicBool,
) -> Result<(Sent, Delivered)> {
    let frame = udp_frame(&Flow {
        src_mac: parse_mac(&scenario.src.mac())?,
        dst_mac: parse_mac(&scenario.dst.mac())?,
        src: scenario.src.addr(family),
        dst: scenario.dst.addr(family),
        src_port: BASE_SOURCE_PORT,
        dst_port: SINK_PORT,
    })?;
    let injection = topology.injection(scenario.src)?;
    let programs = topology.programs();
    let config = programs.config()?;
    programs.set_config(BenchConfig { flows, ..config })?;
    let generator = programs.generator()?;
    let before = delivered(topology, scenario)?;
    let sent = generator::send(generator.as_fd(), &injection, &frame, load, generator_cpu(), stop)?;
    thread::sleep(SETTLE);
    let after = delivered(topology, scenario)?;
    Ok((sent, Delivered { tc: after.tc - before.tc, udp: after.udp.saturating_sub(before.udp) }))
}

fn delivered(topology: &mut BenchTopology, scenario: &Scenario) -> Result<Delivered> {
    let tc = topology.programs().delivered()?;
    let udp = procfs::udp_delivered(topology.netns(scenario.dst))?;
    Ok(Delivered { tc, udp })
}
