//! The datapath fuzzer: generated frames (`frames`) through every program of the object by BPF_PROG_TEST_RUN, in
//! every scenario (`scenarios`), each run checked by the oracle (`oracle`) against the invariants. Seeded: the same
//! seed and frame count run the same frames.
//!
//! - XLAN_FUZZ_SEED: the seed (decimal or 0x-hex); a fixed default, so that `cargo xtask test` is repeatable.
//! - XLAN_FUZZ_FRAMES: frames per program, spread evenly over the scenarios.
pub mod frames;
pub mod oracle;
pub mod reference;
pub mod rng;
pub mod scenarios;
pub mod world;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    time::{Duration, Instant},
};

use aya::{
    maps::{HashMap, Map, MapData, PerCpuArray},
    programs::{ProgramError, SchedClassifier, Xdp},
};
use datapath_common::{map_names, EndpointConfig, EndpointStats, FdbEntry, MacKey, VtepMac, DROP_REASONS};
use xlan::datapath::{
    pins::PinDir,
    testrun::{sk_buff_on, XdpMd},
};

use self::{
    frames::{hex, Generator, Sender},
    oracle::{Class, Counters, FdbProbe, Observation, Program},
    rng::Rng,
    scenarios::Scenario,
    world::World,
};
use crate::common::{test_run, Fixture, Outcome};

/// The seed `cargo xtask test` runs with unless XLAN_FUZZ_SEED says otherwise.
pub const DEFAULT_SEED: u64 = 0x0078_6c61_6e66_757a; // "xlanfuz"
/// A part of each program's frames goes to structured frames cut at every offset (the truncation sweep).
const SWEEP_SHARE: u64 = 4;
/// Frames longer than this are cut at every offset up to it, then at their full length only.
const SWEEP_MAX_OFFSET: usize = 160;
/// A scenario stops after this many violations (they tend to repeat); the run reports them all at the end.
const VIOLATIONS_PER_SCENARIO: usize = 5;

pub struct Settings {
    pub seed: u64,
    pub frames_per_program: u64,
}

impl Settings {
    pub fn from_env(default_frames: u64) -> Self {
        let seed = std::env::var("XLAN_FUZZ_SEED").ok().map_or(DEFAULT_SEED, |value| {
            let value = value.trim();
            let parsed = match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => value.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("XLAN_FUZZ_SEED={value} is no number"))
        });
        let frames_per_program = std::env::var("XLAN_FUZZ_FRAMES").ok().map_or(default_frames, |value| {
            value.trim().parse().unwrap_or_else(|_| panic!("XLAN_FUZZ_FRAMES={value} is no number"))
        });
        Settings { seed, frames_per_program }
    }
}

/// What one program did over the run.
#[derive(Default)]
pub struct Tally {
    pub frames: u64,
    /// Frames the kernel refused to run the program on (shorter than the headers it needs to build the context).
    pub refused: u64,
    /// Wall time of the whole loop for this program: generation, counters, test run, oracle.
    pub elapsed: Duration,
    /// Time in BPF_PROG_TEST_RUN alone.
    pub in_kernel: Duration,
    pub classes: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct Report {
    pub seed: u64,
    pub frames_per_program: u64,
    pub tallies: BTreeMap<Program, Tally>,
    pub scenarios: Vec<(String, u64, Duration)>,
    pub violations: Vec<String>,
}

impl Report {
    pub fn summary(&self) -> String {
        let mut text = String::new();
        let total: u64 = self.tallies.values().map(|t| t.frames).sum();
        let _ = writeln!(
            text,
            "xlan datapath fuzzer: seed {:#x} (XLAN_FUZZ_SEED), {} frames per program (XLAN_FUZZ_FRAMES), {total} in all",
            self.seed, self.frames_per_program
        );
        for (name, frames, elapsed) in &self.scenarios {
            let _ = writeln!(text, "  scenario {name}: {frames} frames in {:.2} s", elapsed.as_secs_f64());
        }
        let _ = writeln!(
            text,
            "  {:<24} {:>8} {:>8} {:>12} {:>14}",
            "PROGRAM", "FRAMES", "REFUSED", "FRAMES/S", "TEST_RUN/S"
        );
        for (program, tally) in &self.tallies {
            let checked = tally.frames as f64 / tally.elapsed.as_secs_f64().max(1e-9);
            let raw = (tally.frames - tally.refused) as f64 / tally.in_kernel.as_secs_f64().max(1e-9);
            let _ = writeln!(
                text,
                "  {:<24} {:>8} {:>8} {:>12.0} {:>14.0}",
                program.name(),
                tally.frames,
                tally.refused,
                checked,
                raw
            );
            let classes: Vec<String> = tally.classes.iter().map(|(class, n)| format!("{class} {n}")).collect();
            let _ = writeln!(text, "      {}", classes.join(", "));
        }
        let _ =
            writeln!(text, "  (FRAMES/S: generated, run and checked; TEST_RUN/S: the BPF_PROG_TEST_RUN calls alone)");
        text
    }

    pub fn failure(&self) -> String {
        let mut text = format!(
            "{} invariant violation(s) with seed {:#x} (rerun: cargo xtask fuzz --seed {:#x} --frames {})\n",
            self.violations.len(),
            self.seed,
            self.seed,
            self.frames_per_program
        );
        for violation in &self.violations {
            let _ = writeln!(text, "{violation}");
        }
        text
    }
}

/// The maps the fuzzer reads between runs, opened once from their pins, and the devices whose transmitted packets it
/// counts (the watched ports, then the parents, by name).
struct Maps {
    /// Counters by slot, and the endpoints' entries that name their slots.
    stats: PerCpuArray<MapData, EndpointStats>,
    endpoints: HashMap<MapData, u32, EndpointConfig>,
    drops: PerCpuArray<MapData, u64>,
    fdb: HashMap<MapData, MacKey, FdbEntry>,
    vtep_macs: HashMap<MapData, u32, VtepMac>,
    devices: Vec<String>,
}

impl Maps {
    fn open(pins: &PinDir, devices: Vec<String>) -> Self {
        let open = |name: &str| Map::from_map_data(MapData::from_pin(pins.map(name)).unwrap()).unwrap();
        Maps {
            stats: PerCpuArray::try_from(open(map_names::ENDPOINT_STATS)).unwrap(),
            endpoints: HashMap::try_from(open(map_names::ENDPOINTS)).unwrap(),
            drops: PerCpuArray::try_from(open(map_names::DROPS)).unwrap(),
            fdb: HashMap::try_from(open(map_names::FDB)).unwrap(),
            vtep_macs: HashMap::try_from(open(map_names::VTEP_MACS)).unwrap(),
            devices,
        }
    }

    /// Packets each device transmitted, and those it dropped on the way (a veth drops what its peer cannot take),
    /// as the kernel counts them, in the namespace this thread is in.
    fn sent(&self) -> (Vec<u64>, Vec<u64>) {
        let table = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
        let (mut sent, mut unsent) = (vec![u64::MAX; self.devices.len()], vec![u64::MAX; self.devices.len()]);
        for line in table.lines().skip(2) {
            let Some((name, fields)) = line.split_once(':') else { continue };
            let Some(slot) = self.devices.iter().position(|d| d == name.trim()) else { continue };
            let fields: Vec<u64> = fields.split_whitespace().map(|f| f.parse().unwrap()).collect();
            // Receive: bytes packets errs drop fifo frame compressed multicast; Transmit: bytes packets errs drop ...
            sent[slot] = fields[9];
            unsent[slot] = fields[11];
        }
        assert!(!sent.contains(&u64::MAX), "a watched device is missing from /proc/thread-self/net/dev");
        (sent, unsent)
    }

    fn counters(&self, world: &World) -> Counters {
        let ports = world
            .ports
            .iter()
            .map(|port| {
                let mut total = EndpointStats::default();
                let Ok(endpoint) = self.endpoints.get(port, 0) else { return total };
                for cpu in self.stats.get(&endpoint.slot, 0).unwrap().iter() {
                    total.rx_packets += cpu.rx_packets;
                    total.rx_bytes += cpu.rx_bytes;
                    total.tx_packets += cpu.tx_packets;
                    total.tx_bytes += cpu.tx_bytes;
                    for (sum, count) in total.drops.iter_mut().zip(cpu.drops) {
                        *sum += count;
                    }
                }
                total
            })
            .collect();
        let mut drops = [0; DROP_REASONS];
        for (reason, sum) in drops.iter_mut().enumerate() {
            *sum = self.drops.get(&(reason as u32), 0).unwrap().iter().sum();
        }
        let (sent, unsent) = self.sent();
        Counters { ports, drops, sent, unsent }
    }

    fn fdb(&self, key: &MacKey) -> Option<FdbEntry> {
        self.fdb.get(key, 0).ok()
    }

    fn vtep_mac(&self, ip: [u8; 4]) -> Option<[u8; 6]> {
        self.vtep_macs.get(&u32::from_ne_bytes(ip), 0).ok().map(|v| v.mac)
    }
}

/// Runs `program` on `frame` as if it arrived on (XDP) or was on (TC) `device`.
pub fn run(fixture: &mut Fixture, program: Program, device: u32, frame: &[u8]) -> Result<Outcome, ProgramError> {
    if program.is_xdp() {
        let context = XdpMd::arriving(frame.len(), device);
        let xdp: &mut Xdp = fixture.datapath.program(program.name()).unwrap();
        test_run(xdp, frame, context.as_bytes())
    } else {
        let tc: &mut SchedClassifier = fixture.datapath.program(program.name()).unwrap();
        test_run(tc, frame, &sk_buff_on(device))
    }
}

fn choose_device(rng: &mut Rng, scenario: &Scenario, program: Program) -> u32 {
    let ports = &scenario.world.ports;
    match program {
        Program::ParentXdp | Program::ParentIngress | Program::ParentEgress => {
            if rng.chance(92) {
                *rng.pick(&scenario.parents)
            } else if rng.chance(50) {
                *rng.pick(&scenario.others)
            } else {
                *rng.pick(ports)
            }
        }
        Program::EndpointIngress => {
            let endpoints: Vec<u32> = scenario.world.networks.iter().flat_map(|n| n.ports()).collect();
            match rng.below(100) {
                0..=84 => *rng.pick(&endpoints),
                85..=94 => *rng.pick(ports),
                95..=97 => *rng.pick(&scenario.parents),
                _ => *rng.pick(&scenario.others),
            }
        }
        Program::XdpPass => *rng.pick(&scenario.endpoint_ends),
    }
}

/// Endpoints' frames come from the endpoint (its MAC and addresses first); frames on a parent sometimes look like
/// an endpoint's frame coming back from the wire (a hairpin).
fn sender_for(rng: &mut Rng, world: &World, program: Program, device: u32) -> Sender {
    let endpoint = match program {
        Program::EndpointIngress => {
            world.network_of_port(device).and_then(|n| n.endpoints.iter().find(|e| e.host.ifindex == device))
        }
        Program::ParentXdp | Program::ParentIngress | Program::ParentEgress if rng.chance(25) => {
            let endpoints: Vec<_> = world.on_parent(device).flat_map(|n| &n.endpoints).collect();
            (!endpoints.is_empty()).then(|| *rng.pick(&endpoints))
        }
        _ => None,
    };
    let Some(endpoint) = endpoint else { return Sender::default() };
    let mut sender = Sender { mac: Some(endpoint.mac.0), ..Sender::default() };
    for address in &endpoint.addresses {
        match address.addr() {
            std::net::IpAddr::V4(v4) => sender.v4.push(v4.octets()),
            std::net::IpAddr::V6(v6) => sender.v6.push(v6.octets()),
        }
    }
    sender
}

/// Runs `frames_per_program` frames through each program in `scenario`, checking every run.
pub fn fuzz(scenario: &mut Scenario, seed: u64, frames_per_program: u64, report: &mut Report) {
    // Load (verify) every program first, so that the rates measure runs, not the verifier.
    for program in Program::ALL {
        if program.is_xdp() {
            scenario.fixture.datapath.program::<Xdp>(program.name()).unwrap();
        } else {
            scenario.fixture.datapath.program::<SchedClassifier>(program.name()).unwrap();
        }
    }
    let started = Instant::now();
    let devices =
        scenario.world.ports.iter().chain(&scenario.world.parents).map(|d| scenario.device_name(*d)).collect();
    let maps = Maps::open(&scenario.fixture.pins.0, devices);
    let mut rngs: Vec<Rng> =
        Program::ALL.iter().map(|p| Rng::derive(seed, &format!("{}/{}", scenario.name, p.name()))).collect();
    let mut sweeps: Vec<Vec<(u32, Vec<u8>)>> = vec![Vec::new(); Program::ALL.len()];
    let sweep_frames = frames_per_program / SWEEP_SHARE;
    let mut counters = maps.counters(&scenario.world);
    let mut violations = 0;
    'frames: for index in 0..frames_per_program {
        for (k, &program) in Program::ALL.iter().enumerate() {
            let loop_start = Instant::now();
            let rng = &mut rngs[k];
            let mut make = |structured: bool| {
                let device = choose_device(rng, scenario, program);
                let sender = sender_for(rng, &scenario.world, program, device);
                let mut generator = Generator { rng, palette: &scenario.palette, sender: &sender };
                (device, if structured { generator.structured() } else { generator.frame() })
            };
            let (device, frame) = if index < sweep_frames {
                // The sweep: one structured frame, on one device, cut at every offset.
                if sweeps[k].is_empty() {
                    let (device, whole) = make(true);
                    let cuts = (0..whole.len().min(SWEEP_MAX_OFFSET)).chain([whole.len()]);
                    sweeps[k] = cuts.rev().map(|len| (device, whole[..len].to_vec())).collect();
                }
                sweeps[k].pop().expect("refilled")
            } else {
                make(false)
            };
            let keys = oracle::probe_keys(&scenario.world, program, device, &frame);
            let pre: Vec<Option<FdbEntry>> = keys.iter().map(|k| maps.fdb(k)).collect();
            let vtep_macs: Vec<([u8; 4], Option<[u8; 6]>)> = oracle::probe_vteps(&scenario.world, program, device)
                .into_iter()
                .map(|ip| (ip, maps.vtep_mac(ip)))
                .collect();
            let run_start = Instant::now();
            let result = run(&mut scenario.fixture, program, device, &frame);
            let in_kernel = run_start.elapsed();
            let after = maps.counters(&scenario.world);
            let verdict = match &result {
                Ok(outcome) => {
                    let probe = FdbProbe {
                        entries: keys.iter().zip(pre).map(|(key, pre)| (*key, pre, maps.fdb(key))).collect(),
                        vtep_macs,
                    };
                    let observation = Observation {
                        program,
                        device,
                        frame: &frame,
                        verdict: outcome.verdict,
                        out: &outcome.frame,
                        before: &counters,
                        after: &after,
                        fdb: &probe,
                    };
                    if oracle::kernel_refuses(program, &frame) {
                        Err("the kernel ran a program on a frame it was expected to refuse".to_string())
                    } else {
                        oracle::check(&scenario.world, &observation)
                    }
                }
                Err(error) if oracle::kernel_refuses(program, &frame) => {
                    if after == counters {
                        Ok(Class::Passed)
                    } else {
                        Err(format!("refused by the kernel ({error}), yet counters changed"))
                    }
                }
                Err(error) => Err(format!("the kernel refused to run the program: {error}")),
            };
            let tally = report.tallies.entry(program).or_default();
            tally.frames += 1;
            tally.in_kernel += in_kernel;
            match (&result, verdict) {
                (Err(_), Ok(_)) => tally.refused += 1,
                (Ok(_), Ok(class)) => *tally.classes.entry(class.label()).or_default() += 1,
                (_, Err(message)) => {
                    report.violations.push(describe(scenario, seed, program, device, index, &frame, &result, &message));
                    violations += 1;
                }
            }
            counters = after;
            tally.elapsed += loop_start.elapsed();
            if violations >= VIOLATIONS_PER_SCENARIO {
                break 'frames;
            }
        }
    }
    report.scenarios.push((
        scenario.name.to_string(),
        frames_per_program * Program::ALL.len() as u64,
        started.elapsed(),
    ));
}

#[allow(clippy::too_many_arguments)]
fn describe(
    scenario: &Scenario,
    seed: u64,
    program: Program,
    device: u32,
    index: u64,
    frame: &[u8],
    result: &Result<Outcome, ProgramError>,
    message: &str,
) -> String {
    let outcome = match result {
        Ok(outcome) if outcome.frame == frame => {
            format!("verdict {} ({}), frame unchanged", outcome.verdict, oracle::verdict_name(program, outcome.verdict))
        }
        Ok(outcome) => format!(
            "verdict {} ({}), frame out ({} bytes): {}",
            outcome.verdict,
            oracle::verdict_name(program, outcome.verdict),
            outcome.frame.len(),
            hex(&outcome.frame)
        ),
        Err(error) => format!("not run: {error}"),
    };
    format!(
        "- seed {seed:#x}, scenario \"{}\", frame #{index}: {} on {} (ifindex {device}), {} bytes:\n    {}\n    {outcome}\n    violated: {message}\n    networks: {}",
        scenario.name,
        program.name(),
        scenario.device_name(device),
        frame.len(),
        hex(frame),
        scenario.world.describe()
    )
}

/// Every scenario, `settings.frames_per_program` frames per program in all.
pub fn run_all(settings: &Settings) -> Report {
    let mut report =
        Report { seed: settings.seed, frames_per_program: settings.frames_per_program, ..Report::default() };
    let all = scenarios::all();
    let per_scenario = settings.frames_per_program.div_ceil(all.len() as u64);
    for make in all {
        let mut scenario = make();
        fuzz(&mut scenario, settings.seed, per_scenario, &mut report);
    }
    report
}
