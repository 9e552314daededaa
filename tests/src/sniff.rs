//! Capturing the frames of one interface: an AF_PACKET socket in the interface's namespace, on its own thread
//! ([`Capture`]), no tcpdump needed. [`Sniffer`] counts every frame an interface receives, by source MAC: it catches
//! what an endpoint's sockets never see (ARP, frames for another MAC or address) and what reaches the interface
//! without passing a datapath's counters.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::link;
use crate::netns::Netns;

const POLL: Duration = Duration::from_millis(20);
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of received frames a capture's socket holds before the kernel drops more.
const RECEIVE_BUFFER: libc::c_int = 8 << 20;

/// Source MAC (lowercase, colon-separated) -> frames received from it.
pub type FramesBySource = BTreeMap<String, u64>;

/// One frame as a [`Capture`] hands it on.
pub struct Seen<'a> {
    /// The frame's first bytes: all of it, up to the capture's snap length.
    pub bytes: &'a [u8],
    /// The frame's whole length.
    pub len: usize,
    /// Sent through the interface (else received by it).
    pub outgoing: bool,
    /// The TCI of a VLAN tag the kernel carried beside the frame instead of in its bytes (VLAN offload, or the
    /// receive path's untagging), as PACKET_AUXDATA reports it: put back in front of the EtherType, it is the frame
    /// as it was on the wire.
    pub offloaded_tci: Option<u16>,
}

impl Seen<'_> {
    /// The frame's outer 802.1Q tag wherever it was: (VLAN ID, priority), None when untagged.
    pub fn dot1q(&self) -> Option<(u16, u8)> {
        let tci = match self.offloaded_tci {
            Some(tci) => tci,
            None if self.bytes.len() >= 16 && self.bytes[12..14] == [0x81, 0x00] => {
                u16::from_be_bytes([self.bytes[14], self.bytes[15]])
            }
            None => return None,
        };
        Some((tci & 0x0fff, (tci >> 13) as u8))
    }
}

/// A capture on one interface (both directions) from `start` to `finish`: each frame is handed to a fold function
/// on the capture's thread, whose state `finish` returns.
pub struct Capture<T> {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Result<T>>>>,
    what: String,
}

impl<T: Send + 'static> Capture<T> {
    /// Starts capturing on `ifname` in `netns`, keeping at most `snap_len` bytes of each frame, folding every frame
    /// into `state` with `fold`; returns once the socket is bound.
    pub fn start(
        netns: &Netns,
        ifname: &str,
        snap_len: usize,
        state: T,
        mut fold: impl FnMut(&mut T, Seen<'_>) + Send + 'static,
    ) -> Result<Capture<T>> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let handle = {
            let (stop, ifname) = (Arc::clone(&stop), ifname.to_string());
            netns.spawn(move || -> Result<T> {
                let socket = bind(&ifname)?;
                let _ = ready_tx.send(());
                let mut state = state;
                receive_until(&socket, &stop, snap_len, |seen| fold(&mut state, seen))?;
                Ok(state)
            })
        };
        let mut capture = Capture { stop, handle: Some(handle), what: format!("{ifname} in {}", netns.name()) };
        if ready_rx.recv_timeout(START_TIMEOUT).is_err() {
            // The thread failed before binding (or is stuck): join() says why.
            let err = capture.join().err().unwrap_or_else(|| anyhow!("not ready"));
            bail!("capture on {} did not start: {err:#}", capture.what);
        }
        Ok(capture)
    }

    /// Stops capturing and returns the state every frame since `start` was folded into.
    pub fn finish(mut self) -> Result<T> {
        self.join()
    }

    fn join(&mut self) -> Result<T> {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().context("capture already finished")?;
        handle
            .join()
            .map_err(|_| anyhow!("capture thread on {} panicked", self.what))?
            .and_then(|captured| captured)
            .with_context(|| format!("capturing on {}", self.what))
    }
}

impl<T> Drop for Capture<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Counts the frames an interface receives (not those it sends), by source MAC.
pub struct Sniffer(Capture<FramesBySource>);

impl Sniffer {
    /// Starts counting the frames `ifname` in `netns` receives; returns once the socket is bound.
    pub fn start(netns: &Netns, ifname: &str) -> Result<Sniffer> {
        // The Ethernet header is all that is read; the rest of a frame is cut off.
        let capture = Capture::start(netns, ifname, 128, FramesBySource::new(), |counts, seen| {
            if seen.outgoing || seen.bytes.len() < 14 {
                return;
            }
            let source = crate::bench::frame::format_mac(seen.bytes[6..12].try_into().expect("6 bytes"));
            *counts.entry(source).or_insert(0) += 1;
        })?;
        Ok(Sniffer(capture))
    }

    /// Stops counting and returns the frames received since `start`, by source MAC.
    pub fn finish(self) -> Result<FramesBySource> {
        self.0.finish()
    }
}

/// An AF_PACKET socket for every protocol, bound to `ifname` in the calling thread's namespace.
fn bind(ifname: &str) -> Result<OwnedFd> {
    // Protocol 0 until bound to the interface, so that no frame of another interface is queued meanwhile.
    let socket = packet_socket()?;
    let mut addr = link_address(link::ifindex(ifname)?);
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: a plain syscall on a socket this function owns; the address is fully initialised.
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
    // Offloaded VLAN tags are reported beside each frame.
    set_option(&socket, libc::SOL_PACKET, libc::PACKET_AUXDATA, &(1 as libc::c_int), "PACKET_AUXDATA")?;
    // Room for a few thousand small frames, so that a burst is not lost while the thread waits for a CPU.
    set_option(&socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RECEIVE_BUFFER, "SO_RCVBUFFORCE")?;
    let timeout = libc::timeval { tv_sec: 0, tv_usec: POLL.as_micros() as libc::suseconds_t };
    set_option(&socket, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout, "SO_RCVTIMEO")?;
    Ok(socket)
}

/// An AF_PACKET raw socket (protocol 0: it receives nothing until bound to a protocol).
pub(crate) fn packet_socket() -> Result<OwnedFd> {
    // SAFETY: a plain syscall; the descriptor is owned from here on.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
    }
    // SAFETY: a descriptor just made and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The link-layer address of interface `ifindex`, the rest zero.
pub(crate) fn link_address(ifindex: u32) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data, all zeroes a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex as i32;
    addr
}

fn set_option<T>(socket: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T, what: &str) -> Result<()> {
    // SAFETY: a plain syscall on the caller's socket; `value` is a `T` of the size given.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(std::io::Error::last_os_error()).context(what.to_string());
    }
    Ok(())
}

/// Receives frames until `stop`, handing each on (at most `snap_len` bytes of it) with its offloaded VLAN tag.
fn receive_until(socket: &OwnedFd, stop: &AtomicBool, snap_len: usize, mut each: impl FnMut(Seen<'_>)) -> Result<()> {
    let mut buf = vec![0u8; snap_len];
    // Room for one tpacket_auxdata control message (and alignment).
    let mut control = [0u64; 8];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: an all-zero sockaddr_ll is valid; recvmsg fills it in.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: an all-zero msghdr is valid; its pointers are set to live buffers below.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        message.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: every buffer the message points at lives across the call. MSG_TRUNC: the frame's whole length is
        // returned, also when it is cut off at the buffer's end.
        let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_TRUNC) };
        if len < 0 {
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => continue,
                _ => return Err(err).context("recvmsg"),
            }
        }
        let len = len as usize;
        let offloaded_tci = offloaded_tci(&message);
        let outgoing = from.sll_pkttype == libc::PACKET_OUTGOING;
        each(Seen { bytes: &buf[..len.min(buf.len())], len, outgoing, offloaded_tci });
    }
    Ok(())
}

/// The VLAN TCI PACKET_AUXDATA reports for a received message, if its tag was offloaded.
fn offloaded_tci(message: &libc::msghdr) -> Option<u16> {
    // SAFETY: the control messages lie in the buffer recvmsg filled; CMSG_* walk them within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(message);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_PACKET && (*cmsg).cmsg_type == libc::PACKET_AUXDATA {
                let aux = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::tpacket_auxdata>());
                let valid = aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0;
                return valid.then_some(aux.tp_vlan_tci);
            }
            cmsg = libc::CMSG_NXTHDR(message, cmsg);
        }
    }
    None
}
