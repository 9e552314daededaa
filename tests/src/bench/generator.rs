//! Driving the XDP generator: BPF_PROG_TEST_RUN in live-frames mode, on one pinned CPU, in the sender's namespace.
//! Every load is bounded: a paced one by its duration, an unpaced one by its frame count (sized from a probe of the
//! path's rate to last about the duration asked for).
//!
//! The kernel runs the frames' whole path on the calling CPU: the generator's XDP_TX lands in the peer veth's ring
//! and that veth's NAPI (and every hop after it that stays in softirq) runs when the test run re-enables bottom
//! halves after each batch. So an unpaced load measures what one CPU can forward and deliver, generator included.
//!
//! Each call sets up and tears down a page pool, which costs 15-45 ms here (mostly waiting for an RCU grace period,
//! the CPU idle meanwhile): a rate measured over many short calls would be that much too low, and ratios between
//! backends squeezed towards 1. So an unpaced load is one call, whose frames are counted alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp};
use xlan_lib::datapath::testrun::XdpMd;

use crate::link::ifindex;
use crate::netns::enter;

/// Frames of a paced call at most.
const CHUNK: u32 = 1 << 16;
/// Frames of the first probe call; the second is sized to last about `PROBE` at the rate the first one saw.
const FIRST_PROBE: u32 = 1 << 13;
const PROBE: Duration = Duration::from_millis(150);
/// Far above what one CPU here reaches (~4 Mpps): the bound of an unpaced load's frames per second asked for.
const MAX_PPS: f64 = 20e6;
/// Pacing tick of a paced load: bursts of 10 ms worth of frames are smooth at /proc/stat's timescale (4 ms ticks).
/// The calls' set-up grows them (frames due pile up meanwhile), which keeps the rate.
const PACE_TICK: Duration = Duration::from_millis(10);

/// How much to send.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// This many frames in one call, as fast as the CPU goes.
    Frames(u32),
    /// `rate_pps` frames per second for `duration`.
    Paced { duration: Duration, rate_pps: u64 },
}

/// What a load sent.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub frames: u64,
    pub elapsed: Duration,
    /// System time of the generator's thread meanwhile: the test run's calls and the softirqs that ran the frames'
    /// path in its context.
    pub system_time: Duration,
}

/// Where the generator's frames enter: the test run names `ifname` in `netns` as their ingress device, and the
/// generator's XDP_TX sends them out of it to its veth peer.
#[derive(Debug, Clone)]
pub struct Injection {
    pub netns: String,
    pub ifname: String,
}

/// Sends `frame` out of the injection device per `load`, on CPU `cpu`; a paced load stops early when `stop` is set.
pub fn send(
    program: &Xdp,
    injection: &Injection,
    frame: &[u8],
    load: Load,
    cpu: usize,
    stop: &AtomicBool,
) -> Result<Sent> {
    on_generator_cpu(injection, cpu, |ifindex| match load {
        Load::Frames(count) => call(program, ifindex, frame, count),
        Load::Paced { duration, rate_pps } => paced(program, ifindex, frame, duration, rate_pps, stop),
    })
}

/// How many frames per second the path takes, for sizing an unpaced load: two calls of different sizes, whose
/// difference leaves the calls' set-up out (within bounds: the set-up's time varies), else the larger call's rate.
pub fn probe_rate(program: &Xdp, injection: &Injection, frame: &[u8], cpu: usize) -> Result<f64> {
    on_generator_cpu(injection, cpu, |ifindex| {
        let first = call(program, ifindex, frame, FIRST_PROBE)?;
        let count =
            (first.rate() * PROBE.as_secs_f64()).clamp(f64::from(FIRST_PROBE) * 2.0, MAX_PPS * PROBE.as_secs_f64());
        let second = call(program, ifindex, frame, count as u32)?;
        let (frames, time) = (second.frames - first.frames, second.elapsed.saturating_sub(first.elapsed));
        let slope = frames as f64 / time.as_secs_f64().max(1e-6);
        Ok(if time.is_zero() { second.rate() } else { slope.clamp(second.rate(), 2.0 * second.rate()) })
    })
}

/// Frames for an unpaced load of about `duration` at `rate` (at least one full batch).
pub fn frames_for(rate: f64, duration: Duration) -> u32 {
    (rate * duration.as_secs_f64()).clamp(64.0, MAX_PPS * duration.as_secs_f64().max(0.001)) as u32
}

impl Sent {
    pub fn rate(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-6)
    }
}

/// Runs `f` with the injection device's ifindex on a thread of its own, pinned to `cpu` and moved into the sender's
/// namespace (neither may leak into the caller).
fn on_generator_cpu<T: Send>(injection: &Injection, cpu: usize, f: impl FnOnce(u32) -> Result<T> + Send) -> Result<T> {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                pin_to_cpu(cpu)?;
                let _inside = enter(&injection.netns)?;
                let ifindex = ifindex(&injection.ifname)
                    .with_context(|| format!("generator device {} in {}", injection.ifname, injection.netns))?;
                f(ifindex)
            })
            .join()
            .map_err(|_| anyhow!("the generator thread panicked"))?
    })
}

/// One test run of `count` frames in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES, kernel >= 5.18): each a fresh
/// copy of `frame` from the kernel's page pool arriving on `ifindex` (a device of this thread's namespace), and what
/// the program returns is carried out (XDP_TX transmits), as upstream xdp-trafficgen does. Batches of the kernel's
/// default size (64) go through the program between flushes; the kernel checks for signals between batches.
fn call(program: &Xdp, ifindex: u32, frame: &[u8], count: u32) -> Result<Sent> {
    let context = XdpMd::arriving(frame.len(), ifindex);
    let options = TestRunOptions {
        data_in: Some(frame),
        ctx_in: Some(context.as_bytes()),
        repeat: count,
        attrs: TestRunAttrs::new().xdp_live_frames(0),
        ..TestRunOptions::default()
    };
    let (started, system) = (Instant::now(), thread_system_time()?);
    program.test_run(options).context("running the XDP generator (BPF_PROG_TEST_RUN, live frames)")?;
    let system_time = thread_system_time()?.saturating_sub(system);
    Ok(Sent { frames: u64::from(count), elapsed: started.elapsed(), system_time })
}

/// The calling thread's system time (getrusage RUSAGE_THREAD).
fn thread_system_time() -> Result<Duration> {
    // SAFETY: a zeroed rusage is valid; getrusage fills it for the calling thread.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_THREAD, &mut usage) != 0 {
            return Err(std::io::Error::last_os_error()).context("getrusage");
        }
        usage
    };
    let time = usage.ru_stime;
    Ok(Duration::from_secs(time.tv_sec as u64) + Duration::from_micros(time.tv_usec as u64))
}

fn paced(program: &Xdp, ifindex: u32, frame: &[u8], duration: Duration, rate: u64, stop: &AtomicBool) -> Result<Sent> {
    let (started, system) = (Instant::now(), thread_system_time()?);
    let mut frames = 0u64;
    while started.elapsed() < duration && !stop.load(Ordering::Relaxed) {
        let due = ((rate as f64 * started.elapsed().as_secs_f64()) as u64).saturating_sub(frames);
        if (due as f64) < rate as f64 * PACE_TICK.as_secs_f64() {
            thread::sleep(PACE_TICK);
            continue;
        }
        frames += call(program, ifindex, frame, due.min(u64::from(CHUNK)) as u32)?.frames;
    }
    let system_time = thread_system_time()?.saturating_sub(system);
    Ok(Sent { frames, elapsed: started.elapsed(), system_time })
}

/// Pins the calling thread to `cpu`, so every run puts the forwarding work on the same CPU.
fn pin_to_cpu(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity(0) act on this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("pinning the generator to CPU {cpu}"));
        }
    }
    Ok(())
}

/// The CPU the generator runs on: the last one, leaving CPU 0 to the housekeeping most of the system prefers.
pub fn generator_cpu() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get()) - 1
}
