//! The cost of broadcast and multicast (`xlan-bench --broadcast-sizes 8,64,1024`): one network of N endpoints,
//! frames sent from outside the host, each copied to every endpoint it is for. Three kinds (`Traffic`): broadcast
//! (ff:ff:ff:ff:ff:ff), IPv4 multicast to a group every endpoint joined, and multicast only one endpoint joined (a
//! solicited-node group, as IPv6 neighbour discovery sends), each paced at 50 k and 200 k frames/s and unpaced. Per
//! N, side by side in one run: the kernel's macvlan (bridge) with its default broadcast queue (bcqueuelen 1000) and
//! with bcqueuelen 100000 (this iproute2 has no `bclim`), xlan (default parent hook on a veth: tc, one
//! `bpf_clone_redirect` per endpoint in a `bpf_loop`, the copies spread over the CPUs), and two limits on the same
//! veths as xlan's endpoints, nothing looked up: `limit`, xlan's way of copying bare (a `bpf_clone_redirect` per
//! endpoint on the receiving CPU, the original on to the host), and `limit-xdp`, XDP's (one `bpf_redirect_map` with
//! `BPF_F_BROADCAST` over a device map of the endpoints; the host gets no copy). The limits take broadcast only: they
//! filter nothing, so multicast is broadcast to them.
//!
//! ```text
//!   out (wire) ══ veth ══ host (uplinkN)      one parent per N
//!                           ├─ e1: if0 … if63   endpoints, 64 per namespace (kernel: macvlan devices;
//!                           ├─ e2: if0 … if63   xlan: `xlan endpoint add --ifname`)
//!                           └─ …
//! ```
//!
//! The sender is an AF_PACKET socket in `out` (a few hundred thousand frames/s, plenty: every frame is N copies),
//! paced or not, at most `COPIES_PER_RUN` / N frames a run. Delivered copies are the endpoints' interfaces' rx
//! packets (the same counter for both drivers), summed once they stop growing; the delivered fraction is that of the
//! endpoints a frame is for over frames × their number, copies/s that over the time from the first frame until the
//! count stopped growing (read every 0.1 s); copies that reached the other endpoints are "stray" (per frame).
//! xlan makes the receiving CPU's share of the copies in its softirq, in the sender's context here (the sender is
//! slowed to their pace), and hands the other CPU's share to it through the spreader (datapath-ebpf's `spread`);
//! the kernel's macvlan hands broadcast to a work queue, which may run on the other CPU. IPv6 is off in every
//! namespace but on the first endpoint's interface (the one-receiver group is its address's), so nothing else is
//! flooded meanwhile. The endpoints join the groups as applications do (`join_groups`); xlan learns the members
//! from their reports before the runs start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use datapath_common::bench::program_names as bench_programs;

use super::programs::BenchPrograms;
use super::stats::Summary;
use crate::link::ifindex_in;
use crate::{cmd, counters::EndpointCounters, dot1q, link, netns::unique_prefix, xlan, Netns, XlanHost};

/// Endpoint interfaces per namespace.
const PER_NAMESPACE: usize = 64;
/// How often the delivered count is read after the last frame, until it stops growing (the kernel's broadcast work
/// queue delivers after the sender is done), and for how long at most.
const SETTLE_STEP: Duration = Duration::from_millis(100);
const SETTLE_MAX: Duration = Duration::from_secs(5);
/// Copies offered per run at most: the frames of a run are fewer for a large network, so that a run of 1024
/// endpoints takes seconds, not minutes, where the copies are made at ~1 M/s; enough that the reads of the counters
/// (~0.1 s) are small beside the delivery.
const COPIES_PER_RUN: u64 = 2_000_000;

/// Who copies the broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flooder {
    /// The kernel's macvlan, bridge mode, default bcqueuelen (1000).
    Kernel,
    /// The same with bcqueuelen 100000: its work queue no longer drops under a burst.
    KernelDeepQueue,
    Xlan,
    /// A bare `bpf_clone_redirect` into every endpoint's veth on the receiving CPU (tc, the original on to the host).
    Limit,
    /// A bare XDP broadcast redirect into every endpoint's veth (nothing on to the host).
    LimitXdp,
}

impl Flooder {
    pub const ALL: [Flooder; 5] =
        [Flooder::Kernel, Flooder::KernelDeepQueue, Flooder::Xlan, Flooder::Limit, Flooder::LimitXdp];

    pub fn name(self) -> &'static str {
        match self {
            Flooder::Kernel => "kernel",
            Flooder::KernelDeepQueue => "kernel-bcq100k",
            Flooder::Xlan => "xlan",
            Flooder::Limit => "limit",
            Flooder::LimitXdp => "limit-xdp",
        }
    }

    fn is_limit(self) -> bool {
        matches!(self, Flooder::Limit | Flooder::LimitXdp)
    }

    /// Whether this flooder is measured with `traffic`: a limit filters nothing, so only broadcast.
    fn measures(self, traffic: Traffic) -> bool {
        !self.is_limit() || traffic == Traffic::Broadcast
    }
}

/// The offered loads: paced frames per second, or as fast as the socket sends (None).
pub const RATES: [Option<u64>; 3] = [Some(50_000), Some(200_000), None];

/// What the outside node sends: the three kinds of frames a LAN floods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// IPv4/UDP to ff:ff:ff:ff:ff:ff (255.255.255.255): every endpoint takes it.
    Broadcast,
    /// IPv4/UDP to 239.1.1.1 (01:00:5e:01:01:01), a group every endpoint joined.
    Multicast,
    /// IPv6 to a solicited-node group (ff02::1:ff00:1), as neighbour discovery sends them: only the first endpoint
    /// has the address it is for. The kernel's macvlan copies it to the endpoints whose multicast filter (a hash)
    /// takes it; xlan to the members it learned from their MLD reports. Copies to the others are "stray".
    OneReceiver,
}

impl Traffic {
    pub const ALL: [Traffic; 3] = [Traffic::Broadcast, Traffic::Multicast, Traffic::OneReceiver];

    pub fn name(self) -> &'static str {
        match self {
            Traffic::Broadcast => "broadcast",
            Traffic::Multicast => "multicast",
            Traffic::OneReceiver => "one-receiver",
        }
    }

    /// Whether endpoint `n` is meant to get the frames.
    fn receives(self, n: usize) -> bool {
        self != Traffic::OneReceiver || n == 0
    }

    /// A 60-byte frame of this kind from `src`.
    fn frame(self, src: &[u8; 6]) -> Vec<u8> {
        // IPv4 header (no checksum needed by anyone who counts it: every endpoint drops it, unaddressed), UDP to
        // port 9 (discard).
        let ipv4_udp = |dst: [u8; 4]| {
            [&[0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 68, 0, 1][..], &dst, &[0x30, 0x39, 0, 9, 0, 26, 0, 0]]
                .concat()
        };
        match self {
            Traffic::Broadcast => dot1q::frame(dot1q::BROADCAST, *src, None, 0x0800, &ipv4_udp([255; 4])),
            Traffic::Multicast => dot1q::frame(MULTICAST_MAC, *src, None, 0x0800, &ipv4_udp([239, 1, 1, 1])),
            // No next header, from fd00:68::100.
            Traffic::OneReceiver => {
                let ipv6 = [
                    &[0x60, 0, 0, 0, 0, 0, 59, 255][..],
                    &[0xfd, 0, 0, 0x68, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
                    &[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1],
                ]
                .concat();
                dot1q::frame(ONE_RECEIVER_MAC, *src, None, 0x86dd, &ipv6)
            }
        }
    }
}

/// The group every endpoint joins, and its MAC.
const MULTICAST_GROUP: &str = "239.1.1.1";
const MULTICAST_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x01, 0x01, 0x01];
/// The first endpoint's IPv6 address, and the solicited-node group it brings (only that endpoint's) with its MAC.
const ONE_RECEIVER_ADDRESS: &str = "fd00:68::1:0:1/64";
const ONE_RECEIVER_GROUP: &str = "ff02::1:ff00:1";
const ONE_RECEIVER_MAC: [u8; 6] = [0x33, 0x33, 0xff, 0x00, 0x00, 0x01];

/// One network of `size` endpoints on its own parent, `uplink<size>`, in the host namespace shared by all.
struct Lan {
    size: usize,
    /// A limit's programs, one load per network (each has its own ports). Dropped first: detaches them.
    limit: Option<BenchPrograms>,
    endpoint_namespaces: Vec<Netns>,
}

/// One host and outside namespace per flooder, with a network per size on it.
struct Site {
    flooder: Flooder,
    // Dropped first: deletes the networks while the namespaces exist.
    xlan: Option<XlanHost>,
    lans: Vec<Lan>,
    outside: Netns,
    host: Netns,
}

/// One measurement's result.
#[derive(Debug, Clone)]
pub struct Row {
    pub flooder: Flooder,
    pub size: usize,
    pub traffic: Traffic,
    pub rate: Option<u64>,
    /// Of the copies meant for the receivers, the part delivered.
    pub fraction: Summary,
    /// Copies the receivers got per second.
    pub copies_per_s: Summary,
    /// Copies per frame that reached endpoints the frame was not meant for.
    pub stray_per_frame: Summary,
    pub error: Option<String>,
}

impl Site {
    fn build(flooder: Flooder, sizes: &[usize]) -> Result<Site> {
        let prefix = unique_prefix();
        let host = Netns::create(&format!("{prefix}h"))?;
        let outside = Netns::create(&format!("{prefix}o"))?;
        outside.disable_ipv6()?;
        let mut site = Site { flooder, xlan: None, lans: Vec::new(), outside, host };
        if flooder == Flooder::Xlan {
            xlan::binary()?;
            site.xlan = Some(XlanHost::new(&site.host)?);
        }
        for &size in sizes {
            let uplink = format!("uplink{size}");
            // The outside end of each parent's wire: `w<size>`, all in `out`.
            link::add_veth(&site.host, &uplink, &format!("w{size}"), &site.outside)?;
            link::up(&site.outside, &format!("w{size}"))?;
            link::up(&site.host, &uplink)?;
            let count = u8::try_from(size.div_ceil(PER_NAMESPACE)).context("too many endpoint namespaces")?;
            let endpoint_namespaces = Netns::create_numbered(&prefix, &format!("s{size}e"), count)?;
            for netns in &endpoint_namespaces {
                netns.disable_ipv6()?;
            }
            let mut lan = Lan { size, limit: None, endpoint_namespaces };
            site.add_endpoints(&mut lan, &uplink)?;
            lan.join_groups()?;
            if let Some(xlan) = &site.xlan {
                lan.wait_for_members(xlan)?;
            }
            site.lans.push(lan);
        }
        Ok(site)
    }

    fn add_endpoints(&mut self, lan: &mut Lan, uplink: &str) -> Result<()> {
        let network = lan.network();
        match (&mut self.xlan, self.flooder) {
            (_, flooder) if flooder.is_limit() => {
                lan.limit = Some(self.attach_limit(lan, uplink)?);
            }
            (Some(xlan), Flooder::Xlan) => {
                xlan.create_network(&network, &["--driver", "macvlan", "--parent", uplink])?;
                for n in 0..lan.size {
                    let (netns, ifname) = lan.endpoint(n);
                    xlan.run(&["endpoint", "add", &network, "--netns", netns.name(), "--ifname", &ifname])?;
                }
            }
            (_, flooder) => {
                let queue = if flooder == Flooder::KernelDeepQueue { "100000" } else { "1000" };
                let mut batch = String::new();
                for n in 0..lan.size {
                    // Made in the host under a name unique there, renamed to the endpoint's in its namespace below.
                    let (netns, _) = lan.endpoint(n);
                    batch.push_str(&format!(
                        "link add link {uplink} name m{n} netns {} type macvlan mode bridge bcqueuelen {queue}\n",
                        netns.name()
                    ));
                }
                ip_batch(&self.host, &batch)?;
                for (index, netns) in lan.endpoint_namespaces.iter().enumerate() {
                    let first = index * PER_NAMESPACE;
                    let up: String = (first..lan.size.min(first + PER_NAMESPACE))
                        .map(|n| format!("link set m{n} name if{} up\n", n % PER_NAMESPACE))
                        .collect();
                    ip_batch(netns, &up)?;
                }
            }
        }
        Ok(())
    }
}

impl Site {
    /// A limit's endpoints: a veth per endpoint, set as xlan sets its own (`endpoint_veth_like_xlans`), and the
    /// limit's program on the parent with their host-side ends as its ports.
    fn attach_limit(&self, lan: &Lan, uplink: &str) -> Result<BenchPrograms> {
        // The host-side ends, unique in the host namespace the networks share: `u<size>p<n>`.
        let port = |n: usize| format!("u{}p{n}", lan.size);
        let mut batch = String::new();
        for n in 0..lan.size {
            let (netns, ifname) = lan.endpoint(n);
            batch.push_str(&format!("link add {} type veth peer name {ifname} netns {}\n", port(n), netns.name()));
            batch.push_str(&format!("link set {} up\n", port(n)));
        }
        ip_batch(&self.host, &batch)?;
        let mut ports = Vec::with_capacity(lan.size);
        for n in 0..lan.size {
            let (netns, ifname) = lan.endpoint(n);
            netns.ip(&["link", "set", &ifname, "up"])?;
            super::topology::veth_like_xlans(&self.host, &port(n), netns, &ifname, false)?;
            ports.push(ifindex_in(self.host.name(), &port(n))?);
        }
        // The pins the load makes go with the host namespace (`Drop for Site`).
        let mut programs = BenchPrograms::load(self.host.name())?;
        programs.set_flood_ports(self.host.name(), &ports)?;
        match self.flooder {
            Flooder::LimitXdp => programs.attach_xdp(self.host.name(), uplink, bench_programs::LIMIT_FLOOD_XDP)?,
            _ => programs.attach_tc_ingress(self.host.name(), uplink, bench_programs::LIMIT_FLOOD_TC)?,
        }
        Ok(programs)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // The limits' loads pinned the datapath's maps under the host namespace's instance directory.
        for lan in &mut self.lans {
            drop(lan.limit.take());
        }
        if self.flooder.is_limit() {
            xlan::remove_leftover_state(self.host.name());
        }
    }
}

impl Lan {
    /// The xlan network's name.
    fn network(&self) -> String {
        format!("b{}", self.size)
    }

    /// Endpoint `n`: interface `if<n % 64>` of the `n / 64`th namespace.
    fn endpoint(&self, n: usize) -> (&Netns, String) {
        (&self.endpoint_namespaces[n / PER_NAMESPACE], format!("if{}", n % PER_NAMESPACE))
    }

    /// Every endpoint joins the multicast group and the first gets an IPv6 address whose solicited-node group is
    /// the one-receiver traffic's (IPv6 turned on for that interface alone), as applications and addresses join:
    /// the stacks send IGMP and MLD reports, from which xlan learns the members, and the devices' address lists
    /// take the groups' MACs, by which the kernel's macvlan filters.
    fn join_groups(&self) -> Result<()> {
        for (index, netns) in self.endpoint_namespaces.iter().enumerate() {
            // `autojoin` joins through one socket of the namespace, which may hold 20 groups by default.
            netns.sysctl("net.ipv4.igmp_max_memberships", &PER_NAMESPACE.to_string())?;
            let first = index * PER_NAMESPACE;
            let joins: String = (first..self.size.min(first + PER_NAMESPACE))
                .map(|n| format!("address add {MULTICAST_GROUP}/32 dev if{} autojoin\n", n % PER_NAMESPACE))
                .collect();
            ip_batch(netns, &joins)?;
        }
        let (netns, ifname) = self.endpoint(0);
        // Quiet: no router solicitations and no duplicate address detection, whose frames (to groups nobody joined)
        // would reach the other endpoints during a run and count as stray.
        netns.sysctl(&format!("net.ipv6.conf.{ifname}.router_solicitations"), "0")?;
        netns.sysctl(&format!("net.ipv6.conf.{ifname}.accept_dad"), "0")?;
        netns.sysctl(&format!("net.ipv6.conf.{ifname}.disable_ipv6"), "0")?;
        netns.ip(&["address", "add", ONE_RECEIVER_ADDRESS, "dev", &ifname, "nodad"])?;
        Ok(())
    }

    /// Waits until xlan lists every endpoint in the multicast group and the first in the solicited-node group:
    /// the reports go out a moment after the joins.
    fn wait_for_members(&self, xlan: &XlanHost) -> Result<()> {
        let deadline = Instant::now() + SETTLE_MAX * 4;
        loop {
            let rows = xlan.mdb(Some(&self.network()))?;
            let members_of = |group: &str| rows.iter().filter(|(row_group, _)| row_group == group).count();
            let (joined, one) = (members_of(MULTICAST_GROUP), members_of(ONE_RECEIVER_GROUP));
            if joined == self.size && one == 1 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "xlan knows {joined} of {} members of {MULTICAST_GROUP} and {one} of {ONE_RECEIVER_GROUP}",
                    self.size
                );
            }
            std::thread::sleep(SETTLE_STEP);
        }
    }

    /// rx packets of every endpoint interface, by endpoint number.
    fn received(&self) -> Result<Vec<u64>> {
        let mut received = vec![0; self.size];
        for (index, netns) in self.endpoint_namespaces.iter().enumerate() {
            let text = netns.ip(&["-s", "-j", "link", "show"])?;
            let links: Value = serde_json::from_str(&text).context("parsing `ip -s -j link show`")?;
            for link in links.as_array().context("`ip -j link` is not an array")? {
                let Some(name) = link["ifname"].as_str() else { continue };
                let Some(number) = name.strip_prefix("if") else { continue };
                let n = index * PER_NAMESPACE + number.parse::<usize>().context("an endpoint ifN")?;
                if let Some(slot) = received.get_mut(n) {
                    *slot = EndpointCounters::from_ip_link(netns.name(), name, link)?.rx_packets;
                }
            }
        }
        Ok(received)
    }

    /// rx packets of the endpoints `traffic` is meant for and of the others, summed.
    fn delivered(&self, traffic: Traffic) -> Result<(u64, u64)> {
        let (mut meant, mut stray) = (0, 0);
        for (n, count) in self.received()?.into_iter().enumerate() {
            if traffic.receives(n) {
                meant += count;
            } else {
                stray += count;
            }
        }
        Ok((meant, stray))
    }

    /// Sends frames of `traffic` for `duration` at `rate` from outside; (delivered fraction, copies/s delivered to
    /// the receivers, stray copies per frame).
    fn measure(
        &self,
        outside: &Netns,
        traffic: Traffic,
        rate: Option<u64>,
        duration: Duration,
    ) -> Result<(f64, f64, f64)> {
        let wire = format!("w{}", self.size);
        let frame = traffic.frame(&link::mac(outside, &wire)?);
        // Unpaced, the socket's own rate sets the count: ~300 k frames/s here.
        let frames =
            ((rate.unwrap_or(300_000) as f64 * duration.as_secs_f64()) as u64).min(COPIES_PER_RUN / self.size as u64);
        let before = self.delivered(traffic)?;
        let start = Instant::now();
        dot1q::send_paced(outside, &wire, frame, frames, rate)?;
        // Delivery ends when the count stops growing: the time of the first read that saw the final count.
        let (mut delivered, mut done) = (self.delivered(traffic)?, start.elapsed());
        while start.elapsed() < done + SETTLE_MAX {
            std::thread::sleep(SETTLE_STEP);
            let now = self.delivered(traffic)?;
            if now == delivered {
                break;
            }
            (delivered, done) = (now, start.elapsed());
        }
        let (copies, stray) = (delivered.0 - before.0, delivered.1 - before.1);
        let receivers = (0..self.size).filter(|n| traffic.receives(*n)).count() as u64;
        let offered = frames * receivers;
        Ok((copies as f64 / offered as f64, copies as f64 / done.as_secs_f64(), stray as f64 / frames as f64))
    }
}

/// `ip -n NETNS -batch -` on `commands`.
fn ip_batch(netns: &Netns, commands: &str) -> Result<()> {
    use std::io::Write;
    let mut child = cmd::command("ip", &["-n", netns.name(), "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("running ip -batch")?;
    child.stdin.take().context("ip's stdin")?.write_all(commands.as_bytes())?;
    if !child.wait()?.success() {
        bail!("ip -n {} -batch failed", netns.name());
    }
    Ok(())
}

/// Builds the networks of `sizes` of every flooder named in `flooders` (none: all of them), then measures each
/// (size, rate) `runs` times, the flooders interleaved in each round.
pub fn run(sizes: &[usize], flooders: &[String], runs: u32, duration: Duration, stop: &AtomicBool) -> Result<Vec<Row>> {
    crate::netns::sweep_stale();
    let mut sites = Vec::new();
    let chosen = |flooder: &Flooder| flooders.is_empty() || flooders.iter().any(|name| name == flooder.name());
    for flooder in Flooder::ALL.into_iter().filter(chosen) {
        eprintln!("bench: broadcast: building {} with networks of {sizes:?} endpoints", flooder.name());
        sites.push(Site::build(flooder, sizes).with_context(|| format!("building {}", flooder.name()))?);
    }
    let mut rows = Vec::new();
    for (index, &size) in sizes.iter().enumerate() {
        for (traffic, rate) in Traffic::ALL.into_iter().flat_map(|traffic| RATES.map(|rate| (traffic, rate))) {
            let measured: Vec<&Site> = sites.iter().filter(|site| site.flooder.measures(traffic)).collect();
            let mut samples = vec![(Vec::new(), Vec::new(), Vec::new(), None); measured.len()];
            for run in 1..=runs {
                let mut line =
                    format!("bench: broadcast/{size} {} {} run {run}/{runs}:", traffic.name(), rate_name(rate));
                for (site, (fractions, copies, strays, error)) in measured.iter().zip(samples.iter_mut()) {
                    if stop.load(Ordering::Relaxed) {
                        bail!("interrupted");
                    }
                    match site.lans[index].measure(&site.outside, traffic, rate, duration) {
                        Ok((fraction, per_s, stray)) => {
                            fractions.push(fraction);
                            copies.push(per_s);
                            strays.push(stray);
                            line.push_str(&format!(
                                " {} {:.1}% {:.0}k/s stray {stray:.1}",
                                site.flooder.name(),
                                fraction * 100.0,
                                per_s / 1e3
                            ));
                        }
                        Err(err) => *error = Some(cmd::one_line(&format!("{err:#}"))),
                    }
                }
                eprintln!("{line}");
            }
            for (site, (fractions, copies, strays, error)) in measured.iter().zip(samples) {
                rows.push(Row {
                    flooder: site.flooder,
                    size,
                    traffic,
                    rate,
                    fraction: Summary { runs: fractions },
                    copies_per_s: Summary { runs: copies },
                    stray_per_frame: Summary { runs: strays },
                    error,
                });
            }
        }
    }
    for site in &sites {
        if let Some(xlan) = &site.xlan {
            // How the copies went in over all the runs: spread over the CPUs, and how often a backlog refused them.
            eprint!("bench: broadcast: xlan's floods: {}", xlan.run(&["stats", "--spread"])?);
        }
    }
    Ok(rows)
}

fn rate_name(rate: Option<u64>) -> String {
    rate.map_or_else(|| "unpaced".to_string(), |rate| format!("{}k/s", rate / 1000))
}

/// The rows as a table: per size and rate, each flooder's delivered fraction and copies/s, min / median / max.
pub fn render(rows: &[Row]) -> String {
    let mut text = String::from(
        "broadcast and multicast from outside to N endpoints (60-byte frames; min / median / max of the runs)\n\
         N     traffic       offered   flooder          delivered %            copies/s (k)              stray/frame\n",
    );
    for row in rows {
        let cell = |summary: &Summary, scale: f64| {
            if summary.runs.is_empty() {
                "-".to_string()
            } else {
                format!("{:.1} / {:.1} / {:.1}", summary.min() * scale, summary.median() * scale, summary.max() * scale)
            }
        };
        text.push_str(&format!(
            "{:<5} {:<13} {:<9} {:<16} {:<22} {:<25} {}{}\n",
            row.size,
            row.traffic.name(),
            rate_name(row.rate),
            row.flooder.name(),
            cell(&row.fraction, 100.0),
            cell(&row.copies_per_s, 1e-3),
            cell(&row.stray_per_frame, 1.0),
            row.error.as_ref().map_or_else(String::new, |error| format!("  FAILED: {error}")),
        ));
    }
    text
}

pub fn to_json(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|row| {
                json!({
                    "flooder": row.flooder.name(), "endpoints": row.size, "traffic": row.traffic.name(),
                    "rate_fps": row.rate, "delivered_fraction": row.fraction.to_json(),
                    "copies_per_s": row.copies_per_s.to_json(), "stray_per_frame": row.stray_per_frame.to_json(),
                    "error": row.error,
                })
            })
            .collect(),
    )
}
