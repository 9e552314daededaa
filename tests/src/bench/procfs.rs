//! Counters the kernel keeps in /proc: UDP delivery per namespace (snmp, snmp6) and CPU time (/proc/stat).

use std::time::Duration;

use anyhow::{Context, Result};

use crate::netns::Netns;

/// Datagrams that reached a UDP socket in `netns` (IPv4 and IPv6): queued (InDatagrams) or dropped because the
/// queue was full (RcvbufErrors). Both passed the whole stack up to the socket, which is what the bench counts.
pub fn udp_delivered(netns: &Netns) -> Result<u64> {
    // /proc/thread-self/net is the namespace of the reading thread (/proc/self/net would be the process's).
    let (snmp, snmp6) = netns.run(|| {
        let read = |name: &str| std::fs::read_to_string(format!("/proc/thread-self/net/{name}"));
        (read("snmp"), read("snmp6"))
    })?;
    let (snmp, snmp6) = (snmp.context("reading snmp")?, snmp6.context("reading snmp6")?);
    let v4 = snmp_field(&snmp, "Udp", "InDatagrams")? + snmp_field(&snmp, "Udp", "RcvbufErrors")?;
    let v6 = snmp6_field(&snmp6, "Udp6InDatagrams")? + snmp6_field(&snmp6, "Udp6RcvbufErrors")?;
    Ok(v4 + v6)
}

/// System, hard and soft interrupt time of CPU `cpu` since boot: where forwarding and delivery are accounted.
pub fn cpu_kernel_time(cpu: usize) -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let prefix = format!("cpu{cpu} ");
    let line = stat.lines().find(|line| line.starts_with(&prefix)).with_context(|| format!("/proc/stat has no cpu{cpu}"))?;
    // cpu user nice system idle iowait irq softirq ...
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map(str::parse).collect::<Result<_, _>>()?;
    let kernel_ticks = ticks.get(2).copied().unwrap_or(0) + ticks.get(5).copied().unwrap_or(0) + ticks.get(6).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(kernel_ticks * 1_000_000_000 / ticks_per_second))
}

/// A field of /proc/net/snmp, where each protocol has a header line of names and a line of values.
fn snmp_field(text: &str, protocol: &str, field: &str) -> Result<u64> {
    let prefix = format!("{protocol}:");
    let mut lines = text.lines().filter(|line| line.starts_with(&prefix));
    let (names, values) = (lines.next(), lines.next());
    let (names, values) = names.zip(values).with_context(|| format!("no {protocol} lines in snmp"))?;
    let position = names
        .split_whitespace()
        .position(|name| name == field)
        .with_context(|| format!("no {protocol} {field} in snmp"))?;
    let value = values.split_whitespace().nth(position).with_context(|| format!("no value for {field}"))?;
    Ok(value.parse()?)
}

/// A field of /proc/net/snmp6: one "name value" pair per line.
fn snmp6_field(text: &str, field: &str) -> Result<u64> {
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(field).filter(|rest| rest.starts_with(char::is_whitespace)))
        .with_context(|| format!("no {field} in snmp6"))?;
    Ok(value.trim().parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_fields_are_found_by_name() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\n\
                    Udp: 10 0 3 5 3\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(snmp_field(snmp, "Udp", "InDatagrams").unwrap(), 10);
        assert_eq!(snmp_field(snmp, "Udp", "RcvbufErrors").unwrap(), 3);
        assert!(snmp_field(snmp, "Udp", "Nope").is_err());
        let snmp6 = "Udp6InDatagrams                  \t7\nUdp6InDatagramsX 1\nUdp6RcvbufErrors 2\n";
        assert_eq!(snmp6_field(snmp6, "Udp6InDatagrams").unwrap(), 7);
        assert_eq!(snmp6_field(snmp6, "Udp6RcvbufErrors").unwrap(), 2);
    }
}
