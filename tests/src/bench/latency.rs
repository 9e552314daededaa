//! Round-trip latency, p50 and p99: ping (ICMP echo) and a UDP request/response, one request in flight at a time.
//! Both are bounded in count and in time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::child::run_bounded;
use super::stats::percentile;
use crate::netns::Netns;
use crate::probe::{client_server, serve_echo, Transport};

/// Seconds between pings (root may go below ping's 2 ms user minimum): fast, but one at a time on an idle path.
const PING_INTERVAL: &str = "0.001";
/// A request that gets no answer in this long fails the measurement (a local path answers in microseconds).
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// The request and response payload: a small datagram, as an RPC would send.
const REQUEST_LEN: usize = 64;

/// p50 and p99 of round-trip times, microseconds.
#[derive(Debug, Clone, Copy)]
pub struct RoundTrips {
    pub p50_us: f64,
    pub p99_us: f64,
}

impl RoundTrips {
    fn of(samples_us: &[f64]) -> Result<RoundTrips> {
        if samples_us.is_empty() {
            bail!("no round trip completed");
        }
        Ok(RoundTrips { p50_us: percentile(samples_us, 50.0), p99_us: percentile(samples_us, 99.0) })
    }
}

/// `count` pings from `src` to `dst_addr`, after one that resolves the neighbour (not counted).
pub fn ping(src: &Netns, dst_addr: IpAddr, count: u32) -> Result<RoundTrips> {
    let addr = dst_addr.to_string();
    src.exec("ping", &["-n", "-q", "-c", "1", "-W", "1", &addr])
        .with_context(|| format!("{addr} does not answer pings from {}", src.name()))?;
    let deadline = Duration::from_secs(u64::from(count) / 100 + 5);
    let args =
        ["-n", "-c", &count.to_string(), "-i", PING_INTERVAL, "-W", "1", "-w", &deadline.as_secs().to_string(), &addr];
    let output = run_bounded(&mut src.command("ping", &args), deadline + Duration::from_secs(1))?;
    let samples: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split("time=").nth(1)?.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ms| ms * 1000.0)
        .collect();
    RoundTrips::of(&samples)
}

/// `count` UDP requests from `src` to an echo server on `dst_addr` in `dst`, each waiting for its response.
pub fn udp_request_response(src: &Netns, dst: &Netns, dst_addr: IpAddr, count: u32) -> Result<RoundTrips> {
    let samples = client_server(
        src,
        dst,
        "the UDP echo server",
        move |port_tx, stop| serve_echo(Transport::Udp, dst_addr, port_tx, stop),
        move |port| requests(SocketAddr::new(dst_addr, port), count),
    )?;
    RoundTrips::of(&samples?)
}

/// The client: one warm-up request (neighbour resolution), then `count` timed ones; microseconds each.
fn requests(target: SocketAddr, count: u32) -> Result<Vec<f64>> {
    let any: IpAddr = if target.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let socket = UdpSocket::bind((any, 0))?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let request = [0x5a_u8; REQUEST_LEN];
    let mut response = [0u8; 2048];
    let mut samples = Vec::with_capacity(count as usize);
    for n in 0..=count {
        let sent = Instant::now();
        socket.send(&request)?;
        let len = socket.recv(&mut response).with_context(|| format!("no response from {target} to request {n}"))?;
        if len != REQUEST_LEN {
            bail!("a {len}-byte response from {target}, expected {REQUEST_LEN}");
        }
        if n > 0 {
            samples.push(sent.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(samples)
}
