//! Single-stream TCP throughput with iperf3: a one-off server in the receiver's namespace, the client in the
//! sender's, both bounded (the client by `-t` and a wall-clock limit, the server killed when done).

use std::net::IpAddr;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::child::{run_bounded, Background};
use crate::cmd;
use crate::netns::Netns;

const PORT: &str = "5201";
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Beyond the test's own seconds: connection set-up and iperf3's exchange of results.
const SLACK: Duration = Duration::from_secs(10);

/// How long a TCP run lasts.
#[derive(Debug, Clone, Copy)]
pub enum Amount {
    Seconds(u32),
    /// As many bytes (the tiny mode: over in milliseconds).
    Bytes(u64),
}

/// Gbit/s one TCP stream reaches from `src` to `dst_addr` in `dst`.
pub fn gbps(src: &Netns, dst: &Netns, dst_addr: IpAddr, amount: Amount) -> Result<f64> {
    let addr = dst_addr.to_string();
    let _server = Background::spawn(dst.command("iperf3", &["-s", "-1", "-B", &addr, "-p", PORT]))?;
    wait_listening(dst)?;
    let (flag, value, seconds) = match amount {
        Amount::Seconds(seconds) => ("-t", seconds.max(1).to_string(), seconds.max(1)),
        // No path here is slower than 1 Gbit/s: the bound allows 8 s per GB.
        Amount::Bytes(bytes) => ("-n", bytes.to_string(), (bytes / (1 << 27)) as u32 + 1),
    };
    let mut client = src.command("iperf3", &["-c", &addr, "-p", PORT, flag, &value, "-J", "--connect-timeout", "2000"]);
    let output = run_bounded(&mut client, Duration::from_secs(u64::from(seconds)) + SLACK)?;
    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!("iperf3 printed no JSON: {}", cmd::one_line(&String::from_utf8_lossy(&output.stderr)))
    })?;
    if !output.status.success() {
        bail!("iperf3 failed: {}", report["error"]);
    }
    let bits = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3's report has no end.sum_received.bits_per_second")?;
    Ok(bits / 1e9)
}

/// Waits until the server's listening socket exists, so the client does not race its start.
fn wait_listening(dst: &Netns) -> Result<()> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    let filter = format!("sport = :{PORT}");
    while Instant::now() < deadline {
        if !dst.exec("ss", &["-Hltn", &filter])?.trim().is_empty() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    bail!("iperf3 is not listening in {} after {LISTEN_TIMEOUT:?}", dst.name())
}
