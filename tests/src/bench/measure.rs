//! One run of one measurement on one topology: the packet rates (generator unpaced), the CPU cost per packet
//! (generator paced), and the round trips (TCP, ping, UDP request/response).

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use datapath_common::bench::{program_names as bench_programs, BenchConfig};

use super::frame::udp_frame;
use super::generator::{self, generator_cpu, Load, Sent};
use super::metrics::Measurement;
use super::options::Settings;
use super::procfs;
use super::scenario::Scenario;
use super::topology::BenchTopology;
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
    let (src, dst) = (scenario.src, scenario.dst);
    let dst_addr = topology.addr(dst, Family::V4)?;
    Ok(match measurement {
        Measurement::Pps { flows, family } => {
            let load = match settings.pps_frames {
                Some(frames) => Paced(Load::Frames(frames)),
                None => Unpaced(settings.duration),
            };
            let (sent, delivered) = drive(topology, scenario, family, flows, load, stop)?;
            let seconds = sent.elapsed.as_secs_f64();
            vec![delivered.tc as f64 / seconds, delivered.udp as f64 / seconds]
        }
        Measurement::Cpu => vec![cpu_per_packet(topology, scenario, settings, stop)?],
        Measurement::BpfRunTime => vec![bpf_per_packet(topology, scenario, settings, stop)?],
        Measurement::Tcp => {
            let amount = match settings.tcp_bytes {
                Some(bytes) => tcp::Amount::Bytes(bytes),
                None => tcp::Amount::Seconds(settings.tcp_seconds),
            };
            vec![tcp::gbps(topology.netns(src), topology.netns(dst), dst_addr, amount)?]
        }
        Measurement::Ping => {
            let trips = latency::ping(topology.netns(src), dst_addr, settings.ping_count)?;
            vec![trips.p50_us, trips.p99_us]
        }
        Measurement::NetworkDelete => {
            let entries = scenario.fdb_entries.unwrap_or(0);
            vec![topology.time_network_delete(entries)?.as_secs_f64() * 1e3]
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

/// Kernel CPU time per frame delivered, at the fixed offered load of `settings`: the system time of the generator's
/// thread, in whose softirqs the frames' whole path runs (see `generator`), plus what the generator CPU's ksoftirqd
/// took over. Other tasks on that CPU (this machine is shared) stay out, unlike with /proc/stat's per-CPU times.
/// The generator's own cost is included, the same for every backend.
fn cpu_per_packet(
    topology: &mut BenchTopology,
    scenario: &Scenario,
    settings: &Settings,
    stop: &AtomicBool,
) -> Result<f64> {
    let load = Load::Paced { duration: settings.cpu_duration, rate_pps: settings.cpu_load_pps };
    let before = procfs::ksoftirqd_time(generator_cpu())?;
    let (sent, delivered) = drive(topology, scenario, Family::V4, 1, Paced(load), stop)?;
    let deferred = procfs::ksoftirqd_time(generator_cpu())?.saturating_sub(before);
    let spent = sent.system_time + deferred;
    if delivered.tc == 0 {
        bail!("{}: nothing was delivered at {} under the paced load", scenario.id, scenario.dst);
    }
    Ok(spent.as_nanos() as f64 / delivered.tc as f64)
}

/// BPF run time per frame delivered at the CPU runs' fixed load: the datapath's programs' (xlan's, the limit's; not
/// the bench's generator, injector and counter, the same for every backend), summed over the programs, with the
/// kernel's run-time statistics on (`BPF_ENABLE_STATS`, off again when its fd closes). Each program's mean is printed
/// too. The statistics add two clock reads to each run (an XDP stub that only passes shows ~40 ns here).
fn bpf_per_packet(
    topology: &mut BenchTopology,
    scenario: &Scenario,
    settings: &Settings,
    stop: &AtomicBool,
) -> Result<f64> {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).context("enabling BPF run-time statistics")?;
    let load = Load::Paced { duration: settings.cpu_duration, rate_pps: settings.cpu_load_pps };
    let before = datapath_run_times();
    let (_, delivered) = drive(topology, scenario, Family::V4, 1, Paced(load), stop)?;
    let after = datapath_run_times();
    if delivered.tc == 0 {
        bail!("{}: nothing was delivered at {} under the paced load", scenario.id, scenario.dst);
    }
    let mut total = Duration::ZERO;
    for (id, (name, time, runs)) in &after {
        let (time_before, runs_before) = before.get(id).map_or((Duration::ZERO, 0), |(_, time, runs)| (*time, *runs));
        // Programs of the other backends' topologies run now and then too (neighbour discovery): only those that
        // ran for a good part of the frames are on the measured path.
        if runs.saturating_sub(runs_before) >= delivered.tc / 10 {
            let spent = time.saturating_sub(time_before);
            eprintln!(
                "bench: {}: bpf {name} (id {id}): {:.0} ns a run",
                scenario.id,
                spent.as_nanos() as f64 / (runs - runs_before) as f64
            );
            total += spent;
        }
    }
    Ok(total.as_nanos() as f64 / delivered.tc as f64)
}

/// Run time and count of every loaded program of a datapath (xlan's or a limit's), by id.
fn datapath_run_times() -> HashMap<u32, (String, Duration, u64)> {
    // The kernel keeps 15 bytes of a program's name.
    let harness = [bench_programs::GENERATOR, bench_programs::INJECTOR, bench_programs::COUNTER]
        .map(|name| &name[..15.min(name.len())]);
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|program| {
            let name = program.name_as_str()?.to_string();
            let datapath = name.starts_with("xlan_") && !harness.contains(&name.as_str());
            datapath.then(|| (program.id(), (name, program.run_time(), program.run_count())))
        })
        .collect()
}

/// A load as `drive` takes it: unpaced for about a duration (sized by a probe), or as given.
enum Drive {
    Unpaced(Duration),
    Paced(Load),
}
use Drive::{Paced, Unpaced};

/// Generates the load from the scenario's source to its destination and counts what arrived. An unpaced load is
/// one test-run call sized from a probe of the path's rate; only its own frames are counted (the probe's have
/// settled before).
fn drive(
    topology: &mut BenchTopology,
    scenario: &Scenario,
    family: Family,
    flows: u32,
    load: Drive,
    stop: &AtomicBool,
) -> Result<(Sent, Delivered)> {
    let frame = udp_frame(&topology.flow(scenario.src, scenario.dst, family)?)?;
    topology.warm_up(scenario.src, scenario.dst, family);
    let injection = topology.injection(scenario.src)?;
    let programs = topology.programs();
    let config = programs.config()?;
    programs.set_config(BenchConfig { flows, ..config })?;
    programs.set_template(&frame)?;
    let load = match load {
        Paced(load) => load,
        Unpaced(duration) => {
            let rate = generator::probe_rate(topology.programs().generator()?, &injection, &frame, generator_cpu())?;
            thread::sleep(SETTLE);
            Load::Frames(generator::frames_for(rate, duration))
        }
    };
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    let before = delivered(topology, scenario)?;
    let sent = generator::send(topology.programs().generator()?, &injection, &frame, load, generator_cpu(), stop)?;
    thread::sleep(SETTLE);
    let after = delivered(topology, scenario)?;
    Ok((sent, Delivered { tc: after.tc - before.tc, udp: after.udp.saturating_sub(before.udp) }))
}

fn delivered(topology: &mut BenchTopology, scenario: &Scenario) -> Result<Delivered> {
    let tc = topology.programs().delivered()?;
    let udp = procfs::udp_delivered(topology.netns(scenario.dst))?;
    Ok(Delivered { tc, udp })
}
