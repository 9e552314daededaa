//! Counting every frame an interface receives, by source MAC: an AF_PACKET socket in the interface's namespace, on
//! its own thread. Catches what an endpoint's sockets never see (ARP, frames for another MAC or address) and what
//! reaches the interface without passing a datapath's counters.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::netns::Netns;

const POLL: Duration = Duration::from_millis(20);
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Source MAC (lowercase, colon-separated) -> frames received from it.
pub type FramesBySource = BTreeMap<String, u64>;

pub struct Sniffer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Result<FramesBySource>>>>,
    what: String,
}

impl Sniffer {
    /// Starts counting the frames `ifname` in `netns` receives (not those it sends); returns once the socket is bound.
    pub fn start(netns: &Netns, ifname: &str) -> Result<Sniffer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let handle = {
            let (stop, ifname) = (Arc::clone(&stop), ifname.to_string());
            netns.spawn(move || -> Result<FramesBySource> {
                let socket = bind(&ifname)?;
                let _ = ready_tx.send(());
                count_until(&socket, &stop)
            })
        };
        let mut sniffer = Sniffer { stop, handle: Some(handle), what: format!("{ifname} in {}", netns.name()) };
        if ready_rx.recv_timeout(START_TIMEOUT).is_err() {
            // The thread failed before binding (or is stuck): finish() says why.
            let err = sniffer.join().err().unwrap_or_else(|| anyhow!("not ready"));
            bail!("sniffer on {} did not start: {err:#}", sniffer.what);
        }
        Ok(sniffer)
    }

    /// Stops counting and returns the frames received since `start`, by source MAC.
    pub fn finish(mut self) -> Result<FramesBySource> {
        self.join()
    }

    fn join(&mut self) -> Result<FramesBySource> {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().context("sniffer already finished")?;
        handle
            .join()
            .map_err(|_| anyhow!("sniffer thread on {} panicked", self.what))?
            .and_then(|counted| counted)
            .with_context(|| format!("sniffing on {}", self.what))
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.join();
        }
    }
}

/// An AF_PACKET socket for every protocol, bound to `ifname` in the calling thread's namespace.
fn bind(ifname: &str) -> Result<OwnedFd> {
    let all = (libc::ETH_P_ALL as u16).to_be();
    // Protocol 0 until bound to the interface, so that no frame of another interface is queued meanwhile.
    // SAFETY: plain syscalls on a socket this function owns; the structures are fully initialised.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
    }
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = CString::new(ifname).context("interface name")?;
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("no interface {ifname}"));
    }
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = all;
    addr.sll_ifindex = ifindex as i32;
    let bound = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if bound != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("binding to {ifname}"));
    }
    let timeout = libc::timeval { tv_sec: 0, tv_usec: POLL.as_micros() as libc::suseconds_t };
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(std::io::Error::last_os_error()).context("SO_RCVTIMEO");
    }
    Ok(socket)
}

fn count_until(socket: &OwnedFd, stop: &AtomicBool) -> Result<FramesBySource> {
    let mut counts = FramesBySource::new();
    let mut buf = [0u8; 128]; // the Ethernet header is all that is read; the rest of a frame is cut off
    while !stop.load(Ordering::Relaxed) {
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: the buffer and the address structure are valid for the lengths given.
        let len = unsafe {
            libc::recvfrom(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut from_len,
            )
        };
        if len < 0 {
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => continue,
                _ => return Err(err).context("recvfrom"),
            }
        }
        if from.sll_pkttype == libc::PACKET_OUTGOING || (len as usize) < 14 {
            continue;
        }
        let source = buf[6..12].iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(":");
        *counts.entry(source).or_insert(0) += 1;
    }
    Ok(counts)
}
