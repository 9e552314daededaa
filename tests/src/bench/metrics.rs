//! What the bench measures: the metrics (each reported as min / median / max over the runs) and the measurements
//! that produce them (one measurement run gives one value of each of its metrics).

use crate::topology::Family;

use super::topology::Backend;

/// One reported number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// 64-byte UDP frames per second delivered, counted by the TC counter on the endpoint's interface.
    Pps {
        flows: u32,
        family: Family,
    },
    /// The same frames counted where they reach the endpoint's UDP sockets.
    UdpPps {
        flows: u32,
        family: Family,
    },
    /// System + softirq + irq time of the generator's CPU (/proc/stat), where the whole path runs, per frame
    /// delivered, at a fixed offered load below every backend's ceiling.
    CpuNsPerPacket,
    /// One TCP stream (iperf3), Gbit/s.
    TcpGbps,
    PingP50Us,
    PingP99Us,
    UdpRrP50Us,
    UdpRrP99Us,
    /// The datapath's BPF programs' run time per frame delivered (xlan's, or the limit's bare redirects), at the CPU
    /// runs' fixed load, with the kernel's run-time statistics on.
    BpfNsPerPacket,
    /// `xlan network delete` of a VXLAN network holding the scenario's FDB entries (all learned), milliseconds.
    NetworkDeleteMs,
}

impl Metric {
    /// The key in report.json.
    pub fn key(self) -> String {
        let family = |family| if family == Family::V6 { "_v6" } else { "" };
        let flows = |flows| if flows == 1 { "1flow".to_string() } else { format!("{flows}flows") };
        match self {
            Metric::Pps { flows: n, family: f } => format!("pps_{}{}", flows(n), family(f)),
            Metric::UdpPps { flows: n, family: f } => format!("udp_pps_{}{}", flows(n), family(f)),
            Metric::CpuNsPerPacket => "cpu_ns_per_packet".into(),
            Metric::TcpGbps => "tcp_gbps".into(),
            Metric::PingP50Us => "ping_p50_us".into(),
            Metric::PingP99Us => "ping_p99_us".into(),
            Metric::UdpRrP50Us => "udp_rr_p50_us".into(),
            Metric::UdpRrP99Us => "udp_rr_p99_us".into(),
            Metric::BpfNsPerPacket => "bpf_ns_per_packet".into(),
            Metric::NetworkDeleteMs => "network_delete_ms".into(),
        }
    }

    /// The label in the table.
    pub fn label(self) -> String {
        let family = |family| if family == Family::V6 { "IPv6" } else { "IPv4" };
        match self {
            Metric::Pps { flows, family: f } => format!("pps {flows} flow(s) {} @tc", family(f)),
            Metric::UdpPps { flows, family: f } => format!("pps {flows} flow(s) {} @udp", family(f)),
            Metric::CpuNsPerPacket => "cpu ns/packet".into(),
            Metric::TcpGbps => "tcp Gbit/s".into(),
            Metric::PingP50Us => "ping p50 us".into(),
            Metric::PingP99Us => "ping p99 us".into(),
            Metric::UdpRrP50Us => "udp rr p50 us".into(),
            Metric::UdpRrP99Us => "udp rr p99 us".into(),
            Metric::BpfNsPerPacket => "bpf ns/packet".into(),
            Metric::NetworkDeleteMs => "network delete ms".into(),
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Pps { .. } | Metric::UdpPps { .. } | Metric::TcpGbps)
    }

    /// A value for the table: packet rates with a unit prefix, the rest with a sensible precision.
    pub fn format(self, value: f64) -> String {
        match self {
            Metric::Pps { .. } | Metric::UdpPps { .. } if value >= 1e6 => format!("{:.2}M", value / 1e6),
            Metric::Pps { .. } | Metric::UdpPps { .. } => format!("{:.0}k", value / 1e3),
            Metric::TcpGbps => format!("{value:.2}"),
            _ => format!("{value:.0}"),
        }
    }
}

/// One kind of measurement run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measurement {
    /// The generator as fast as it goes.
    Pps {
        flows: u32,
        family: Family,
    },
    /// The generator at a fixed rate, with /proc/stat read around it.
    Cpu,
    /// The same load with BPF run-time statistics on (they cost every program run two clock reads, so not during
    /// `Cpu`).
    BpfRunTime,
    Tcp,
    Ping,
    UdpRequestResponse,
    /// A second VXLAN network on the sending host, filled with the scenario's FDB entries, deleted (xlan only).
    NetworkDelete,
}

impl Measurement {
    /// The full set, in the order the bench runs and reports them.
    pub const ALL: [Measurement; 8] = [
        Measurement::Pps { flows: 1, family: Family::V4 },
        Measurement::Pps { flows: 8, family: Family::V4 },
        Measurement::Pps { flows: 1, family: Family::V6 },
        Measurement::Cpu,
        Measurement::BpfRunTime,
        Measurement::Tcp,
        Measurement::Ping,
        Measurement::UdpRequestResponse,
    ];

    /// The metrics one run gives, in the order `measure` returns their values.
    pub fn metrics(self) -> Vec<Metric> {
        match self {
            Measurement::Pps { flows, family } => vec![Metric::Pps { flows, family }, Metric::UdpPps { flows, family }],
            Measurement::Cpu => vec![Metric::CpuNsPerPacket],
            Measurement::BpfRunTime => vec![Metric::BpfNsPerPacket],
            Measurement::Tcp => vec![Metric::TcpGbps],
            Measurement::Ping => vec![Metric::PingP50Us, Metric::PingP99Us],
            Measurement::UdpRequestResponse => vec![Metric::UdpRrP50Us, Metric::UdpRrP99Us],
            Measurement::NetworkDelete => vec![Metric::NetworkDeleteMs],
        }
    }

    /// The limits forward one way (wire → endpoint, endpoint → endpoint): no answers, so no TCP or latency; except
    /// the xdp limit's TCP, whose endpoint's answers go straight back out of the parent.
    pub fn applies_to(self, backend: Backend) -> bool {
        match self {
            Measurement::NetworkDelete => backend == Backend::Xlan,
            // The kernel's drivers run no BPF.
            Measurement::BpfRunTime => backend != Backend::Kernel,
            // The xdp limit sends answers back out of the parent: TCP runs through it.
            Measurement::Tcp if backend == Backend::LimitXdp => true,
            _ => !backend.is_limit() || matches!(self, Measurement::Pps { .. } | Measurement::Cpu),
        }
    }

    /// The id `--measurement` matches: `pps-1flow-v4`, `cpu`, `tcp`, `ping`, `udp-rr`, ...
    pub fn id(self) -> String {
        match self {
            Measurement::Pps { flows, family } => {
                let flows = if flows == 1 { "1flow".to_string() } else { format!("{flows}flows") };
                format!("pps-{flows}-{}", if family == Family::V6 { "v6" } else { "v4" })
            }
            Measurement::Cpu => "cpu".into(),
            Measurement::BpfRunTime => "bpf".into(),
            Measurement::Tcp => "tcp".into(),
            Measurement::Ping => "ping".into(),
            Measurement::UdpRequestResponse => "udp-rr".into(),
            Measurement::NetworkDelete => "network-delete".into(),
        }
    }

    pub fn name(self) -> String {
        match self {
            Measurement::Pps { flows, family } => format!("pps, {flows} flow(s), {family:?}"),
            Measurement::Cpu => "cpu per packet".into(),
            Measurement::BpfRunTime => "bpf run time per packet".into(),
            Measurement::Tcp => "tcp (iperf3)".into(),
            Measurement::Ping => "ping".into(),
            Measurement::UdpRequestResponse => "udp request/response".into(),
            Measurement::NetworkDelete => "network delete".into(),
        }
    }
}
