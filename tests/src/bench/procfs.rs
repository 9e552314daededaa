//! Counters the kernel keeps in /proc: UDP delivery per namespace (snmp, snmp6) and a ksoftirqd thread's CPU time.

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

/// CPU time (user + system) of `ksoftirqd/<cpu>` since it started: the softirq work the kernel deferred from the
/// tasks that raised it to that CPU's thread.
pub fn ksoftirqd_time(cpu: usize) -> Result<Duration> {
    let comm = format!("ksoftirqd/{cpu}");
    for entry in std::fs::read_dir("/proc").context("reading /proc")?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|name| name.bytes().all(|b| b.is_ascii_digit())) else { continue };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|text| text.trim() == comm) {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
            return task_time(&stat).with_context(|| format!("parsing /proc/{pid}/stat"));
        }
    }
    anyhow::bail!("no {comm} thread")
}

/// utime + stime of a /proc/<pid>/stat line (fields 14 and 15, after the parenthesised command name).
fn task_time(stat: &str) -> Result<Duration> {
    let rest = stat.rsplit_once(')').context("no command name")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let ticks: u64 =
        fields.get(11).context("no utime")?.parse::<u64>()? + fields.get(12).context("no stime")?.parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / ticks_per_second))
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

    #[test]
    fn task_times_are_utime_plus_stime() {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        let stat = "22 (ksoftirqd/1) S 2 0 0 0 -1 69238848 0 0 0 0 3 7 0 0 20 0 1 0 10 0 0";
        assert_eq!(task_time(stat).unwrap(), Duration::from_nanos(10 * 1_000_000_000 / hz));
        assert!(task_time("garbage").is_err());
    }
}
