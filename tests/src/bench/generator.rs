//! Driving the XDP generator: BPF_PROG_TEST_RUN in live-frames mode, in chunks, on one pinned CPU, in the sender's
//! namespace. Every load is bounded twice: by its duration and by a packet count no CPU here can reach in it.
//!
//! The kernel runs the frames' whole path on the calling CPU: the generator's XDP_TX lands in the peer veth's ring
//! and that veth's NAPI (and every hop after it that stays in softirq) runs when the test run re-enables bottom
//! halves after each batch. So an unpaced load measures what one CPU can forward and deliver, generator included.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::programs::enter;

/// Frames per BPF_PROG_TEST_RUN call when unpaced: ~15 ms at 4 Mpps, so the duration is kept to within a few ms.
const CHUNK: u32 = 1 << 16;
/// Far above what one CPU here reaches (~4 Mpps): the count bound only stops a load whose clock check failed.
const MAX_PPS: f64 = 20e6;
/// Pacing tick of a paced load: bursts of 10 ms worth of frames are smooth at /proc/stat's timescale (4 ms ticks)
/// and few enough that the test run's per-call set-up (a page pool) stays out of the cost per packet.
const PACE_TICK: Duration = Duration::from_millis(10);

/// How much to send.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub duration: Duration,
    /// `None`: as fast as the CPU goes; `Some(pps)`: paced to that rate.
    pub rate_pps: Option<u64>,
}

/// What a load sent.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub frames: u64,
    pub elapsed: Duration,
}

/// Where the generator's frames enter: the test run names `ifname` in `netns` as their ingress device, and the
/// generator's XDP_TX sends them out of it to its veth peer.
#[derive(Debug, Clone)]
pub struct Injection {
    pub netns: String,
    pub ifname: String,
}

/// Sends `frame` out of the injection device per `load`, on CPU `cpu`; stops early when `stop` is set.
pub fn send(
    program: BorrowedFd<'_>,
    injection: &Injection,
    frame: &[u8],
    load: Load,
    cpu: usize,
    stop: &AtomicBool,
) -> Result<Sent> {
    // A thread of its own: it is pinned and moved into the sender's namespace, which must not leak into the caller.
    thread::scope(|scope| {
        scope
            .spawn(|| {
                pin_to_cpu(cpu)?;
                let _inside = enter(&injection.netns)?;
                let ifindex = ifindex(&injection.ifname)
                    .with_context(|| format!("generator device {} in {}", injection.ifname, injection.netns))?;
                run(program, ifindex, frame, load, stop)
            })
            .join()
            .map_err(|_| anyhow!("the generator thread panicked"))?
    })
}

fn run(program: BorrowedFd<'_>, ifindex: u32, frame: &[u8], load: Load, stop: &AtomicBool) -> Result<Sent> {
    let max_frames = (load.duration.as_secs_f64() * MAX_PPS) as u64;
    let started = Instant::now();
    let mut frames = 0u64;
    while started.elapsed() < load.duration && frames < max_frames && !stop.load(Ordering::Relaxed) {
        let due = match load.rate_pps {
            None => u64::from(CHUNK),
            Some(rate) => {
                let due = ((rate as f64 * started.elapsed().as_secs_f64()) as u64).saturating_sub(frames);
                if (due as f64) < rate as f64 * PACE_TICK.as_secs_f64() {
                    thread::sleep(PACE_TICK);
                    continue;
                }
                due.min(u64::from(CHUNK))
            }
        };
        let count = due.min(max_frames - frames) as u32;
        xlan_lib::testrun::run_xdp_live(program, frame, ifindex, count, 0)
            .context("running the XDP generator (BPF_PROG_TEST_RUN, live frames)")?;
        frames += u64::from(count);
    }
    Ok(Sent { frames, elapsed: started.elapsed() })
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

/// The index of `ifname` in the calling thread's namespace.
pub fn ifindex(ifname: &str) -> Result<u32> {
    let name = std::ffi::CString::new(ifname)?;
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        bail!("no device {ifname}");
    }
    Ok(index)
}

/// The CPU the generator runs on: the last one, leaving CPU 0 to the housekeeping most of the system prefers.
pub fn generator_cpu() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get()) - 1
}
