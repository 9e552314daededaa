//! Reachability probes from one namespace to an address in another: ping (IPv4, IPv6), a TCP echo and a UDP echo.
//!
//! `Ok(false)` means "not reachable"; `Err` means the harness itself failed (could not start a process, bind a server,
//! enter a namespace), which must not be mistaken for unreachability.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use crate::netns::Netns;
use crate::topology::Family;

/// How long a probe waits for an answer. Local veths answer in well under a millisecond, so a second separates
/// "reachable" from "not" with a wide margin while keeping matrices with many unreachable pairs short.
pub const TIMEOUT: Duration = Duration::from_secs(1);
/// UDP has no handshake: the first datagram may be lost while neighbour resolution is still pending, so the client
/// asks twice.
const UDP_ATTEMPTS: usize = 2;
/// How often echo servers check whether the probe is over.
const SERVER_POLL: Duration = Duration::from_millis(10);
const PAYLOAD: &[u8] = b"xlan-tests probe";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    Ping4,
    Ping6,
    /// TCP connect and echo over IPv4.
    Tcp,
    /// UDP request/response over IPv6 (with TCP over IPv4 this covers L4 checksums of both families in four probes).
    Udp,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Transport {
    Tcp,
    Udp,
}

impl Probe {
    pub const ALL: [Probe; 4] = [Probe::Ping4, Probe::Ping6, Probe::Tcp, Probe::Udp];

    /// The one-character label of matrix cells.
    pub fn letter(self) -> char {
        match self {
            Probe::Ping4 => '4',
            Probe::Ping6 => '6',
            Probe::Tcp => 'T',
            Probe::Udp => 'U',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Probe::Ping4 => "ping4",
            Probe::Ping6 => "ping6",
            Probe::Tcp => "tcp4",
            Probe::Udp => "udp6",
        }
    }

    /// The address family of the destination address the probe needs.
    pub fn family(self) -> Family {
        match self {
            Probe::Ping4 | Probe::Tcp => Family::V4,
            Probe::Ping6 | Probe::Udp => Family::V6,
        }
    }

    /// Probes `dst_addr` (an address in `dst`) from `src`.
    pub fn run(self, src: &Netns, dst: &Netns, dst_addr: IpAddr) -> Result<bool> {
        match self {
            Probe::Ping4 | Probe::Ping6 => ping(src, dst_addr),
            Probe::Tcp => echo_round_trip(Transport::Tcp, src, dst, dst_addr),
            Probe::Udp => echo_round_trip(Transport::Udp, src, dst, dst_addr),
        }
    }
}

/// One echo request with a one-second deadline. Any failure of ping (no reply, "network unreachable") is an answer.
fn ping(src: &Netns, dst_addr: IpAddr) -> Result<bool> {
    ping_with(src, dst_addr, &[])
}

/// One echo request whose IP packet is exactly `packet_len` bytes, with fragmentation prohibited (`ping -M do`): does
/// a packet that fills an MTU of `packet_len` get through, unfragmented, and its reply back?
pub fn ping_full_size(src: &Netns, dst_addr: IpAddr, packet_len: usize) -> Result<bool> {
    // IPv4 header 20 or IPv6 header 40, ICMP header 8.
    let headers = if dst_addr.is_ipv4() { 28 } else { 48 };
    let payload = packet_len.checked_sub(headers).context("packet shorter than its headers")?.to_string();
    ping_with(src, dst_addr, &["-M", "do", "-s", &payload])
}

fn ping_with(src: &Netns, dst_addr: IpAddr, extra: &[&str]) -> Result<bool> {
    let family = if dst_addr.is_ipv4() { "-4" } else { "-6" };
    let timeout = TIMEOUT.as_secs().to_string();
    let dst = dst_addr.to_string();
    let args: Vec<&str> = [family, "-n", "-q", "-c", "1", "-W", &timeout]
        .into_iter()
        .chain(extra.iter().copied())
        .chain([dst.as_str()])
        .collect();
    let status = src
        .command("ping", &args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .with_context(|| format!("cannot run ping in {}", src.name()))?;
    Ok(status.success())
}

/// Starts an echo server on `dst_addr` in `dst`, then has a client in `src` send PAYLOAD and expect it back.
fn echo_round_trip(transport: Transport, src: &Netns, dst: &Netns, dst_addr: IpAddr) -> Result<bool> {
    client_server(
        src,
        dst,
        &format!("{transport:?} echo server on {dst_addr}"),
        move |port_tx, stop| serve_echo(transport, dst_addr, port_tx, stop),
        move |port| echo_client(transport, SocketAddr::new(dst_addr, port)),
    )
}

/// Runs `serve` on a thread in `dst` and, once it reports the port it listens on, `client` with that port on a
/// thread in `src`; then tells the server to stop (`serve` watches the flag) and joins it. A server that fails, before
/// or after it listens, fails the call: that is the harness failing (`what` says which server), not the path.
pub fn client_server<R: Send + 'static>(
    src: &Netns,
    dst: &Netns,
    what: &str,
    serve: impl FnOnce(mpsc::Sender<u16>, &AtomicBool) -> Result<()> + Send + 'static,
    client: impl FnOnce(u16) -> R + Send + 'static,
) -> Result<R> {
    let stop = Arc::new(AtomicBool::new(false));
    let (port_tx, port_rx) = mpsc::channel();
    let server = {
        let stop = Arc::clone(&stop);
        dst.spawn(move || serve(port_tx, &stop))
    };
    // The server sends its port once it listens; if it failed before that, the channel closes and join tells why.
    let outcome = port_rx.recv().map(|port| src.run(move || client(port)));
    stop.store(true, Ordering::Relaxed);
    server
        .join()
        .map_err(|_| anyhow!("{what} in {} panicked", dst.name()))?
        .and_then(|served| served)
        .with_context(|| format!("{what} in {}", dst.name()))?;
    outcome.map_err(|_| anyhow!("{what} in {} ended without listening", dst.name()))?
}

/// Binds an ephemeral port on `addr`, reports it, and echoes whatever arrives until `stop` is set.
pub(crate) fn serve_echo(
    transport: Transport,
    addr: IpAddr,
    port_tx: mpsc::Sender<u16>,
    stop: &AtomicBool,
) -> Result<()> {
    match transport {
        Transport::Tcp => {
            let listener = TcpListener::bind((addr, 0))?;
            listener.set_nonblocking(true)?;
            let _ = port_tx.send(listener.local_addr()?.port());
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => echo_stream(stream),
                    Err(err) if err.kind() == ErrorKind::WouldBlock => thread::sleep(SERVER_POLL),
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Transport::Udp => {
            let socket = UdpSocket::bind((addr, 0))?;
            socket.set_read_timeout(Some(SERVER_POLL))?;
            let _ = port_tx.send(socket.local_addr()?.port());
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((len, peer)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..len], peer);
                }
            }
        }
    }
    Ok(())
}

/// Echoes a TCP connection until the client closes it or goes quiet; errors just end this connection.
fn echo_stream(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let mut buf = [0u8; 1500];
    while let Ok(len @ 1..) = stream.read(&mut buf) {
        if stream.write_all(&buf[..len]).is_err() {
            break;
        }
    }
}

/// The client side: true if PAYLOAD came back from `target` in time. Timeouts and refusals are "unreachable".
fn echo_client(transport: Transport, target: SocketAddr) -> bool {
    match transport {
        Transport::Tcp => tcp_echo(target).unwrap_or(false),
        Transport::Udp => udp_echo(target).unwrap_or(false),
    }
}

fn tcp_echo(target: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(PAYLOAD)?;
    let mut echoed = vec![0u8; PAYLOAD.len()];
    stream.read_exact(&mut echoed)?;
    Ok(echoed == PAYLOAD)
}

fn udp_echo(target: SocketAddr) -> std::io::Result<bool> {
    let unspecified: IpAddr =
        if target.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let socket = UdpSocket::bind((unspecified, 0))?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    let mut buf = [0u8; 1500];
    for _ in 0..UDP_ATTEMPTS {
        socket.send_to(PAYLOAD, target)?;
        // A timeout ends this attempt; a datagram from elsewhere is ignored.
        while let Ok((len, peer)) = socket.recv_from(&mut buf) {
            if peer == target && &buf[..len] == PAYLOAD {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// How long the bulk transfer may stall before it counts as failed.
const BULK_TIMEOUT: Duration = Duration::from_secs(5);

/// Streams `len` bytes of a known pattern over one TCP connection from `src` to a server on `dst_addr` in `dst`, which
/// checks every byte and reports how many arrived intact: exercises what the small probes do not (full-size and
/// segmentation-offloaded segments, their checksums, MTU). `Ok(false)`: it did not all get through intact in time.
pub fn tcp_bulk(src: &Netns, dst: &Netns, dst_addr: IpAddr, len: usize) -> Result<bool> {
    client_server(
        src,
        dst,
        &format!("TCP bulk server on {dst_addr}"),
        move |port_tx, _stop| serve_bulk(dst_addr, port_tx),
        move |port| bulk_client(SocketAddr::new(dst_addr, port), len).unwrap_or(false),
    )
}

/// Accepts one connection (within BULK_TIMEOUT), checks every byte against the pattern and answers with how many
/// arrived intact (u64::MAX at the first wrong one). Ends by itself: a stream has an end.
fn serve_bulk(addr: IpAddr, port_tx: mpsc::Sender<u16>) -> Result<()> {
    let listener = TcpListener::bind((addr, 0))?;
    listener.set_nonblocking(true)?;
    let _ = port_tx.send(listener.local_addr()?.port());
    let deadline = std::time::Instant::now() + BULK_TIMEOUT;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= deadline {
                    return Ok(()); // no client came: the client side reports that
                }
                thread::sleep(SERVER_POLL);
            }
            Err(err) => return Err(err.into()),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(BULK_TIMEOUT))?;
    let (mut intact, mut buf) = (0u64, vec![0u8; 64 * 1024]);
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for &byte in &buf[..n] {
                    if byte != pattern(intact) {
                        let _ = stream.write_all(&u64::MAX.to_be_bytes());
                        return Ok(());
                    }
                    intact += 1;
                }
            }
        }
    }
    let _ = stream.write_all(&intact.to_be_bytes());
    Ok(())
}

/// Byte `index` of the bulk stream: not periodic in any segment size.
fn pattern(index: u64) -> u8 {
    (index ^ (index >> 8) ^ (index >> 16)).wrapping_mul(31) as u8
}

fn bulk_client(target: SocketAddr, len: usize) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)?;
    stream.set_write_timeout(Some(BULK_TIMEOUT))?;
    stream.set_read_timeout(Some(BULK_TIMEOUT))?;
    let data: Vec<u8> = (0..len as u64).map(pattern).collect();
    stream.write_all(&data)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut count = [0u8; 8];
    stream.read_exact(&mut count)?;
    Ok(u64::from_be_bytes(count) == len as u64)
}
