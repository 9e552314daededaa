//! BPF_PROG_TEST_RUN (bpf(2) command 10): runs a loaded program once on a crafted frame and returns the
//! verdict and the frame as the program left it. aya 0.14 has no wrapper for it; newer aya calls it test_run.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::error::{Error, Result};

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// `struct bpf_attr`'s `test` member (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `struct xdp_md` as a test-run context: which device the frame "arrived" on.
#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

impl XdpMd {
    fn arriving(frame: &[u8], ingress_ifindex: u32) -> Self {
        XdpMd { data_end: frame.len() as u32, ingress_ifindex, ..Default::default() }
    }

    fn as_bytes(&self) -> &[u8] {
        // SAFETY: XdpMd is repr(C) plain data; the slice covers exactly it.
        unsafe { std::slice::from_raw_parts((self as *const XdpMd).cast::<u8>(), size_of::<XdpMd>()) }
    }
}

/// Size of `struct __sk_buff`; the test run accepts only a few fields of it set (ifindex among them).
const SK_BUFF_SIZE: usize = 192;
const SK_BUFF_IFINDEX_OFFSET: usize = 40;

pub struct Outcome {
    /// The program's return value (XDP action or TC verdict).
    pub verdict: u32,
    /// The frame after the program.
    pub frame: Vec<u8>,
}

/// Runs an XDP program on `frame` as if it arrived on `ingress_ifindex` (a device of the calling thread's
/// namespace).
pub fn run_xdp(program: BorrowedFd<'_>, frame: &[u8], ingress_ifindex: u32) -> Result<Outcome> {
    let context = XdpMd::arriving(frame, ingress_ifindex);
    run(program, frame, context.as_bytes())
}

/// Runs a TC program on `frame` as an skb on device `ifindex` (of the calling thread's namespace).
pub fn run_tc(program: BorrowedFd<'_>, frame: &[u8], ifindex: u32) -> Result<Outcome> {
    let mut context = [0u8; SK_BUFF_SIZE];
    context[SK_BUFF_IFINDEX_OFFSET..SK_BUFF_IFINDEX_OFFSET + 4].copy_from_slice(&ifindex.to_ne_bytes());
    run(program, frame, &context)
}

/// `BPF_F_TEST_XDP_LIVE_FRAMES` (kernel >= 5.18): the frames are real ones from a page pool, and what the program
/// returns is carried out (XDP_TX and XDP_REDIRECT transmit, XDP_PASS hands the frame to the stack).
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// Runs an XDP program `count` times in live-frames mode, each time on a fresh copy of `frame` arriving on
/// `ingress_ifindex` (a device of the calling thread's namespace): a traffic generator, as upstream xdp-trafficgen
/// uses it. `batch_size` frames go through the program between flushes (0: the kernel's default, 64). The call
/// returns when all `count` have been run; the kernel checks for signals between batches.
pub fn run_xdp_live(
    program: BorrowedFd<'_>,
    frame: &[u8],
    ingress_ifindex: u32,
    count: u32,
    batch_size: u32,
) -> Result<()> {
    let context = XdpMd::arriving(frame, ingress_ifindex);
    let context_bytes = context.as_bytes();
    let mut attr = TestRunAttr {
        prog_fd: program.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat: count,
        ctx_size_in: context_bytes.len() as u32,
        ctx_in: context_bytes.as_ptr() as u64,
        flags: BPF_F_TEST_XDP_LIVE_FRAMES,
        batch_size,
        ..Default::default()
    };
    test_run(&mut attr)
}

fn run(program: BorrowedFd<'_>, frame: &[u8], context: &[u8]) -> Result<Outcome> {
    // Room for what a program may add in front (encapsulation) or behind.
    let mut out = vec![0u8; frame.len() + 256];
    let mut attr = TestRunAttr {
        prog_fd: program.as_fd().as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        ctx_size_in: context.len() as u32,
        ctx_in: context.as_ptr() as u64,
        ..Default::default()
    };
    test_run(&mut attr)?;
    out.truncate(attr.data_size_out as usize);
    Ok(Outcome { verdict: attr.retval, frame: out })
}

fn test_run(attr: &mut TestRunAttr) -> Result<()> {
    // SAFETY: attr points at a valid, fully initialised bpf_attr prefix with buffers that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            attr as *mut TestRunAttr,
            size_of::<TestRunAttr>() as libc::c_uint,
        )
    };
    if rc != 0 {
        return Err(Error::io("BPF_PROG_TEST_RUN", std::io::Error::last_os_error()));
    }
    Ok(())
}
