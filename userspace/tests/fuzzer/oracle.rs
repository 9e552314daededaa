//! The invariants, checked on every run from the verdict, the frame as the program left it and the counters before
//! and after (per-port rx/tx packets and bytes and drops by reason, the global drops by reason), plus the FDB entries
//! the frame could touch. The counters name the port a frame was delivered to: BPF_PROG_TEST_RUN does not expose
//! the redirect target, but the datapath counts every delivery against the receiving port (`port::redirect_*`,
//! `fdb::flood`) and nowhere else.
//!
//! What may be delivered where is decided here from the configuration (the product's model) and the test's own
//! reading of the frame (`reference`), following the README's rules, never from the datapath's code.
use std::collections::BTreeSet;

use datapath_common::{program_names, DropReason, EndpointStats, FdbEntry, MacKey, DROP_REASONS};
use xlan::model::{DriverSettings, IpvlanFlag, IpvlanMode, MacvlanMode, Network, Vxlan};

use super::{
    reference::{self, is_multicast, unicast_vtep, Cut, L2, L3},
    world::{Owner, World},
};
use crate::common::{TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, XDP_DROP, XDP_PASS, XDP_REDIRECT};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Program {
    ParentXdp,
    ParentIngress,
    ParentEgress,
    EndpointIngress,
    XdpPass,
}

impl Program {
    pub const ALL: [Program; 5] =
        [Program::ParentXdp, Program::ParentIngress, Program::ParentEgress, Program::EndpointIngress, Program::XdpPass];

    pub fn name(self) -> &'static str {
        match self {
            Program::ParentXdp => program_names::PARENT_XDP,
            Program::ParentIngress => program_names::PARENT_INGRESS,
            Program::ParentEgress => program_names::PARENT_EGRESS,
            Program::EndpointIngress => program_names::ENDPOINT_INGRESS,
            Program::XdpPass => program_names::XDP_PASS,
        }
    }

    pub fn is_xdp(self) -> bool {
        matches!(self, Program::ParentXdp | Program::XdpPass)
    }
}

/// The counters at one moment: the datapath's, summed over CPUs (one `EndpointStats` per watched port,
/// `World::ports`, and the global drops by reason), and the kernel's own count of what each watched device (the
/// ports, then `World::parents`) transmitted and failed to: BPF_PROG_TEST_RUN carries out no redirect verdict, but
/// the copies a program makes (`bpf_clone_redirect`) are really sent, so these show where every copy went,
/// independently of what the datapath counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    pub ports: Vec<EndpointStats>,
    pub drops: [u64; DROP_REASONS],
    /// tx_packets per watched device.
    pub sent: Vec<u64>,
    /// tx_dropped per watched device: copies the device could not pass on (a veth's peer refuses a frame longer
    /// than its MTU).
    pub unsent: Vec<u64>,
}

/// Map entries around a run: FDB entries before and after for the keys `probe_keys` named, and (VXLAN endpoint
/// frames) the next hops the datapath knows for the network's remote VTEPs before it.
#[derive(Debug, Default)]
pub struct FdbProbe {
    pub entries: Vec<(MacKey, Option<FdbEntry>, Option<FdbEntry>)>,
    pub vtep_macs: Vec<([u8; 4], Option<[u8; 6]>)>,
}

impl FdbProbe {
    fn resolved(&self, vtep: [u8; 4]) -> bool {
        self.vtep_macs.iter().any(|(ip, mac)| *ip == vtep && mac.is_some_and(|m| m != [0; 6]))
    }

    fn find(&self, network: u32, mac: [u8; 6]) -> &(MacKey, Option<FdbEntry>, Option<FdbEntry>) {
        let key = MacKey::new(network, mac);
        self.entries.iter().find(|(k, _, _)| *k == key).expect("probe_keys names every key the oracle reads")
    }
    pub fn pre(&self, network: u32, mac: [u8; 6]) -> Option<FdbEntry> {
        self.find(network, mac).1
    }
    pub fn post(&self, network: u32, mac: [u8; 6]) -> Option<FdbEntry> {
        self.find(network, mac).2
    }
}

/// One run of one program on one frame.
pub struct Observation<'a> {
    pub program: Program,
    pub device: u32,
    pub frame: &'a [u8],
    pub verdict: u32,
    pub out: &'a [u8],
    pub before: &'a Counters,
    pub after: &'a Counters,
    pub fdb: &'a FdbProbe,
}

/// What became of a frame: every frame run is exactly one of these (the accounting the fuzzer tallies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Into one endpoint, or copies into several (the original maybe also passed on).
    Delivered,
    /// VXLAN from the wire, decapsulated into one endpoint or copied into several.
    Decapsulated,
    /// To the host's stack or out of the parent, untouched; nothing delivered.
    Passed,
    /// ipvlan l3: an ARP reply or neighbour advertisement sent back for an endpoint's address.
    Answered,
    /// VXLAN: out to VTEPs (the original, or copies of it).
    Encapsulated,
    /// Dropped and counted under exactly one reason.
    Dropped(DropReason),
    /// Dropped without a counter: one of the datapath's deliberate, uncounted drops (the reason says which).
    Uncounted(&'static str),
}

impl Class {
    pub fn label(self) -> String {
        match self {
            Class::Delivered => "delivered".into(),
            Class::Decapsulated => "decapsulated".into(),
            Class::Passed => "passed".into(),
            Class::Answered => "answered".into(),
            Class::Encapsulated => "encapsulated".into(),
            Class::Dropped(reason) => format!("dropped:{}", reason.name()),
            Class::Uncounted(why) => format!("uncounted:{why}"),
        }
    }
}

pub const SPLIT_HORIZON: &str = "vxlan-split-horizon";
pub const OWN_ADDRESS: &str = "to-itself";
pub const L3_NOT_IP: &str = "ipvlan-l3-non-ip";

macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

/// The FDB keys a run of `program` on `frame` at `device` may read or change, which the harness reads before and
/// after: the inner source and destination of a VXLAN(-looking) frame in every VXLAN network, and the destination
/// of an endpoint's frame in its VXLAN network.
pub fn probe_keys(world: &World, program: Program, device: u32, frame: &[u8]) -> Vec<MacKey> {
    let mut keys = Vec::new();
    let Ok(l2) = reference::l2(frame) else { return keys };
    match program {
        Program::ParentXdp | Program::ParentIngress => {
            let inner = reference::vxlan(frame, &l2).map_or(reference::would_be_inner(&l2), |v| v.inner);
            if frame.len() >= inner + 12 {
                for (network, _) in world.vxlans() {
                    keys.push(MacKey::new(network.id, frame[inner..inner + 6].try_into().unwrap()));
                    keys.push(MacKey::new(network.id, frame[inner + 6..inner + 12].try_into().unwrap()));
                }
            }
        }
        Program::EndpointIngress => {
            if let Some(network) = world.network_of_port(device).filter(|n| n.vxlan().is_some()) {
                keys.push(MacKey::new(network.id, l2.dst));
            }
        }
        Program::ParentEgress | Program::XdpPass => {}
    }
    keys
}

/// The remote VTEPs whose next hops `FdbProbe::vtep_macs` must hold for a run.
pub fn probe_vteps(world: &World, program: Program, device: u32) -> Vec<[u8; 4]> {
    match (program, world.network_of_port(device).and_then(|n| n.vxlan())) {
        (Program::EndpointIngress, Some(settings)) => settings.flood.remotes().iter().map(|r| r.octets()).collect(),
        _ => Vec::new(),
    }
}

/// Counter changes of one run.
struct Deltas {
    rx: Vec<u64>,
    rx_bytes: Vec<u64>,
    tx: Vec<u64>,
    tx_bytes: Vec<u64>,
    port_drops: Vec<[u64; DROP_REASONS]>,
    drops: [u64; DROP_REASONS],
    /// Copies the kernel transmitted, per watched device (ports, then parents), and copies it tried to.
    sent: Vec<u64>,
    tried: Vec<u64>,
}

impl Deltas {
    fn new(before: &Counters, after: &Counters) -> Self {
        let per_port = |field: fn(&EndpointStats) -> u64| -> Vec<u64> {
            before.ports.iter().zip(&after.ports).map(|(b, a)| field(a).wrapping_sub(field(b))).collect()
        };
        let mut drops = [0; DROP_REASONS];
        for (reason, delta) in drops.iter_mut().enumerate() {
            *delta = after.drops[reason].wrapping_sub(before.drops[reason]);
        }
        Deltas {
            rx: per_port(|s| s.rx_packets),
            rx_bytes: per_port(|s| s.rx_bytes),
            tx: per_port(|s| s.tx_packets),
            tx_bytes: per_port(|s| s.tx_bytes),
            port_drops: before
                .ports
                .iter()
                .zip(&after.ports)
                .map(|(b, a)| {
                    let mut delta = [0; DROP_REASONS];
                    for (reason, d) in delta.iter_mut().enumerate() {
                        *d = a.drops[reason].wrapping_sub(b.drops[reason]);
                    }
                    delta
                })
                .collect(),
            drops,
            sent: before.sent.iter().zip(&after.sent).map(|(b, a)| a.wrapping_sub(*b)).collect(),
            tried: (0..before.sent.len())
                .map(|i| (after.sent[i] + after.unsent[i]).wrapping_sub(before.sent[i] + before.unsent[i]))
                .collect(),
        }
    }

    fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// The one reason a drop was counted under, if exactly one drop was counted.
    fn one_reason(drops: &[u64; DROP_REASONS]) -> Option<DropReason> {
        if drops.iter().sum::<u64>() != 1 {
            return None;
        }
        drops.iter().position(|d| *d == 1).and_then(|i| DropReason::from_index(i as u32))
    }

    fn untouched(&self) -> bool {
        [&self.rx, &self.rx_bytes, &self.tx, &self.tx_bytes].iter().all(|v| v.iter().all(|d| *d == 0))
            && self.port_drops.iter().all(|d| d.iter().all(|x| *x == 0))
            && self.total_drops() == 0
            && self.tried.iter().all(|d| *d == 0)
    }

    fn describe(&self, world: &World) -> String {
        let mut parts = Vec::new();
        for (i, port) in world.ports.iter().enumerate() {
            if self.rx[i] + self.tx[i] + self.port_drops[i].iter().sum::<u64>() > 0 {
                parts.push(format!(
                    "port {port}: rx +{} ({} B) tx +{} ({} B) drops {:?}",
                    self.rx[i], self.rx_bytes[i], self.tx[i], self.tx_bytes[i], self.port_drops[i]
                ));
            }
        }
        parts.push(format!("global drops {:?}", self.drops));
        let devices = world.ports.iter().chain(&world.parents);
        let sent: Vec<String> = devices
            .zip(self.sent.iter().zip(&self.tried))
            .filter(|(_, (_, tried))| **tried > 0)
            .map(|(d, (sent, tried))| format!("{d}: {sent} of {tried}"))
            .collect();
        if !sent.is_empty() {
            parts.push(format!("copies sent by device (sent of tried) {}", sent.join(", ")));
        }
        parts.join("; ")
    }
}

/// The ports that received the frame (their rx counters rose), checked to be one copy each of `len` bytes.
fn delivered(world: &World, d: &Deltas, len: usize) -> Result<BTreeSet<u32>, String> {
    let mut ports = BTreeSet::new();
    for (i, port) in world.ports.iter().enumerate() {
        if d.rx[i] == 0 {
            continue;
        }
        ensure!(d.rx[i] == 1, "port {port} received {} copies of one frame", d.rx[i]);
        ensure!(d.rx_bytes[i] == len as u64, "port {port} counted {} bytes for a {len}-byte delivery", d.rx_bytes[i]);
        ports.insert(*port);
    }
    Ok(ports)
}

/// The ports delivered to (their rx counters rose) or sent a copy, even one their device could not pass on.
fn reached(world: &World, d: &Deltas, delivered: &BTreeSet<u32>) -> BTreeSet<u32> {
    let tried = world.ports.iter().zip(&d.tried).filter(|(_, n)| **n > 0).map(|(p, _)| *p);
    delivered.iter().copied().chain(tried).collect()
}

/// What the rules allow for one frame.
struct Expect {
    /// The ports that may receive it (an upper bound).
    may: BTreeSet<u32>,
    /// The rule that decided `may`, for the report.
    why: String,
    /// Length of what a port receives (the inner frame after decapsulation).
    len: usize,
    /// VXLAN for a network of this host: where the inner frame starts.
    decap: Option<usize>,
    /// ipvlan l3: the frame is a request the datapath may answer.
    answer: Option<Answer>,
    /// The only drop it may get, if it is dropped, and must be.
    must_drop: Option<DropReason>,
    /// A deliberate uncounted drop it may get.
    uncounted: Option<&'static str>,
    /// VXLAN endpoint frames: the outer destinations its encapsulation may have.
    encap: Option<Vec<[u8; 4]>>,
    /// VXLAN endpoint frames: broadcast or unknown unicast, flooded to the VNI's endpoints and VTEPs.
    flooded: bool,
}

impl Expect {
    fn nothing(len: usize, why: impl Into<String>) -> Self {
        Expect {
            may: BTreeSet::new(),
            why: why.into(),
            len,
            decap: None,
            answer: None,
            must_drop: None,
            uncounted: None,
            encap: None,
            flooded: false,
        }
    }

    fn to(mut self, ports: impl IntoIterator<Item = u32>, why: impl Into<String>) -> Self {
        self.may = ports.into_iter().collect();
        self.why = why.into();
        self
    }
}

#[derive(Clone, Copy, Debug)]
enum Answer {
    Arp,
    Neighbour { target: [u8; 16], solicitor: [u8; 16] },
}

/// Checks every invariant on one run; what became of the frame, or the first invariant it broke.
pub fn check(world: &World, o: &Observation<'_>) -> Result<Class, String> {
    let d = Deltas::new(o.before, o.after);
    let result = match o.program {
        Program::XdpPass => {
            ensure!(o.verdict == XDP_PASS, "the pass stub returned {}", o.verdict);
            ensure!(o.out == o.frame, "the pass stub changed the frame");
            ensure!(d.untouched(), "the pass stub changed counters");
            Ok(Class::Passed)
        }
        Program::ParentXdp | Program::ParentIngress | Program::ParentEgress => {
            copies(world, o, &d).and_then(|()| parent(world, o, &d))
        }
        Program::EndpointIngress => copies(world, o, &d).and_then(|()| endpoint(world, o, &d)),
    };
    result.map_err(|message| format!("{message}\n    counters: {}", d.describe(world)))
}

/// When the kernel itself refuses to run a program on a frame (so no program sees it): shorter than an Ethernet
/// header, or (TC) an IPv4/IPv6 EtherType without a whole IP header behind it, which the kernel's skb test run needs.
pub fn kernel_refuses(program: Program, frame: &[u8]) -> bool {
    if frame.len() < 14 {
        return true;
    }
    let ether_type = u16::from_be_bytes([frame[12], frame[13]]);
    !program.is_xdp()
        && ((ether_type == super::frames::ETH_P_IPV4 && frame.len() < 34)
            || (ether_type == super::frames::ETH_P_IPV6 && frame.len() < 54))
}

fn port_index(world: &World, port: u32) -> Option<usize> {
    world.ports.iter().position(|p| *p == port)
}

/// Every copy the kernel sent into a port was counted as a delivery to that port (and one it could not send was
/// not); at most one delivery was counted without a copy, the one the verdict redirects; and nothing was copied out
/// of a parent except a VXLAN endpoint's frames, out of its own network's parent.
fn copies(world: &World, o: &Observation<'_>, d: &Deltas) -> Result<(), String> {
    let mut by_verdict = 0;
    for (i, port) in world.ports.iter().enumerate() {
        ensure!(d.sent[i] <= d.rx[i], "port {port} was sent {} copies but counted {} deliveries", d.sent[i], d.rx[i]);
        by_verdict += d.rx[i] - d.sent[i];
    }
    let redirect = if o.program.is_xdp() { XDP_REDIRECT } else { TC_ACT_REDIRECT };
    ensure!(
        by_verdict == 0 || by_verdict == 1 && o.verdict == redirect,
        "{by_verdict} deliveries counted that no copy made and the verdict ({}) does not",
        o.verdict
    );
    let own_vxlan_parent = match o.program {
        Program::EndpointIngress => {
            world.network_of_port(o.device).filter(|n| n.vxlan().is_some()).map(|n| n.parent.ifindex)
        }
        _ => None,
    };
    for (j, parent) in world.parents.iter().enumerate() {
        let sent = d.tried[world.ports.len() + j];
        ensure!(
            sent == 0 || own_vxlan_parent == Some(*parent),
            "{sent} copies sent out of parent {parent} (only a VXLAN endpoint's frames are copied out, of their own parent)"
        );
    }
    Ok(())
}

// --- frames from the wire (parent XDP, parent tcx ingress) and from the host (parent tcx egress) -----------------

fn parent(world: &World, o: &Observation<'_>, d: &Deltas) -> Result<Class, String> {
    let xdp = o.program == Program::ParentXdp;
    ensure!(d.tx.iter().all(|t| *t == 0), "a frame on the parent was counted as sent by an endpoint");
    ensure!(
        d.port_drops.iter().all(|p| p.iter().all(|x| *x == 0)),
        "a drop of a frame on the parent was counted against an endpoint"
    );
    let total = d.total_drops();
    let l2 = match reference::l2(o.frame) {
        Ok(l2) => l2,
        Err(Cut) => {
            ensure!(delivered(world, d, o.frame.len())?.is_empty(), "a frame with a cut VLAN tag was delivered");
            ensure!(
                o.verdict == if xdp { XDP_DROP } else { TC_ACT_SHOT } && d.drops[DropReason::Malformed as usize] == 1,
                "a frame with a cut VLAN tag must be dropped as malformed (verdict {})",
                o.verdict
            );
            ensure!(total == 1, "more than one drop counted for one frame");
            return Ok(Class::Dropped(DropReason::Malformed));
        }
    };
    let e = expect_parent(world, o, &l2);
    if o.program != Program::ParentEgress {
        vxlan_learning(world, o, &l2, e.decap)?;
    }
    let ports = delivered(world, d, e.len)?;
    let beyond: Vec<_> = reached(world, d, &ports).difference(&e.may).copied().collect();
    ensure!(beyond.is_empty(), "delivered to port(s) {beyond:?}; the rule allows only {:?}: {}", e.may, e.why);
    let delivered_bytes = match e.decap {
        Some(inner) => &o.frame[inner..],
        None => o.frame,
    };
    if let Some(reason) = e.must_drop {
        ensure!(
            o.verdict == TC_ACT_SHOT && Deltas::one_reason(&d.drops) == Some(reason),
            "must be dropped as {} ({}), got verdict {}",
            reason.name(),
            e.why,
            o.verdict
        );
    }
    let passed = if xdp { XDP_PASS } else { TC_ACT_OK };
    let dropped = if xdp { XDP_DROP } else { TC_ACT_SHOT };
    let class = parent_verdict(world, o, d, &e, &l2, &ports, delivered_bytes, total, passed, dropped)?;
    Ok(match class {
        Class::Delivered if e.decap.is_some() => Class::Decapsulated,
        class => class,
    })
}

#[allow(clippy::too_many_arguments)]
fn parent_verdict(
    world: &World,
    o: &Observation<'_>,
    d: &Deltas,
    e: &Expect,
    l2: &L2,
    ports: &BTreeSet<u32>,
    delivered_bytes: &[u8],
    total: u64,
    passed: u32,
    dropped: u32,
) -> Result<Class, String> {
    let xdp = o.program == Program::ParentXdp;
    match o.verdict {
        v if v == passed => {
            ensure!(total == 0, "passed on, yet a drop was counted");
            ensure!(o.out == o.frame, "passed on changed");
            ensure!(!xdp || ports.is_empty(), "XDP_PASS, yet delivered to {ports:?}");
            ensure!(
                xdp || e.decap.is_none(),
                "VXLAN for this host handed to the host's stack undecapsulated: {}",
                e.why
            );
            Ok(if ports.is_empty() { Class::Passed } else { Class::Delivered })
        }
        XDP_REDIRECT if xdp => {
            ensure!(total == 0, "redirected, yet a drop was counted");
            ensure!(ports.len() == 1, "XDP_REDIRECT must deliver to exactly one port, counted {ports:?}");
            ensure!(o.out == delivered_bytes, "the redirected frame is not the frame (or inner frame) as it came");
            Ok(Class::Delivered)
        }
        TC_ACT_REDIRECT if !xdp => {
            ensure!(total == 0, "redirected, yet a drop was counted");
            if let Some(answer) = e.answer {
                if ports.is_empty() && o.out != o.frame {
                    check_answer(world, o, l2, answer)?;
                    return Ok(Class::Answered);
                }
            }
            ensure!(ports.len() == 1, "TC_ACT_REDIRECT must deliver to exactly one port, counted {ports:?}");
            ensure!(o.out == delivered_bytes, "the redirected frame is not the frame (or inner frame) as it came");
            Ok(Class::Delivered)
        }
        v if v == dropped => match total {
            1 => {
                ensure!(ports.is_empty(), "dropped with a reason counted, yet delivered to {ports:?}");
                let reason = Deltas::one_reason(&d.drops).expect("one drop");
                if let Some(inner) = e.decap {
                    // A whole VXLAN frame for this host is decapsulated, with two exceptions in TC, where
                    // bpf_skb_adjust_room refuses to shrink the skb (a kernel limitation, counted as malformed): an
                    // inner frame shorter than 34 bytes (after shrinking, the kernel wants an IPv4 header's worth
                    // behind the Ethernet header), and an outer 802.1Q priority tag (VID 0) in the frame's bytes
                    // (the skb's protocol is then 802.1Q, not IP; only BPF_PROG_TEST_RUN hands TC a tag inline, the
                    // receive path moves it into the skb's metadata first).
                    let refused_shrink = o.frame.len() - inner < 34 || l2.l3 != 14;
                    ensure!(
                        !xdp && reason == DropReason::Malformed && refused_shrink,
                        "a whole VXLAN frame for this host dropped as {} ({})",
                        reason.name(),
                        e.why
                    );
                }
                Ok(Class::Dropped(reason))
            }
            0 if !xdp && e.decap.is_some() && !ports.is_empty() => Ok(Class::Delivered),
            0 => match e.uncounted {
                Some(why) if ports.is_empty() => Ok(Class::Uncounted(why)),
                _ => Err(format!("dropped without a counted reason ({})", e.why)),
            },
            n => Err(format!("{n} drops counted for one frame")),
        },
        v => Err(format!("verdict {v} is none this program may return")),
    }
}

fn ports_of(network: &Network) -> BTreeSet<u32> {
    network.ports().collect()
}

fn expect_parent(world: &World, o: &Observation<'_>, l2: &L2) -> Expect {
    let (dev, frame) = (o.device, o.frame);
    let nothing = Expect::nothing(frame.len(), "");
    if !world.is_parent(dev) {
        return nothing.to([], "not a parent of any network: nothing is delivered");
    }
    if o.program == Program::ParentEgress {
        let Some((network, settings)) = world.macvlan_on(dev) else {
            return nothing.to([], "egress: only a macvlan network's host access delivers the host's frames");
        };
        if !settings.host_access {
            return nothing.to([], "egress without host access: the host reaches no endpoint");
        }
        if World::mac_owner(network, l2.src).is_some() {
            return nothing.to([], "egress: an endpoint's own frame leaving was delivered already");
        }
        if is_multicast(&l2.dst) {
            return nothing.to(ports_of(network), "host access: the host's multicast reaches the network's endpoints");
        }
        return match World::mac_owner(network, l2.dst) {
            Some(port) => nothing.to([port], "host access: the host's unicast reaches the destination MAC's owner"),
            None => nothing.to([], "host access: unicast for no endpoint's MAC"),
        };
    }
    if world.vxlans().any(|(n, _)| n.parent.ifindex == dev) {
        if let Some(v) = reference::vxlan(frame, l2) {
            if let Some((network, settings)) = world.vxlan_for(dev, v.vni, v.dst_port, v.outer_dst) {
                let inner_dst: [u8; 6] = frame[v.inner..v.inner + 6].try_into().unwrap();
                let mut e = Expect::nothing(frame.len() - v.inner, "").to(
                    ports_of(network),
                    format!("VXLAN for {} (VNI {}): decapsulated into its endpoints only", network.name, settings.vni),
                );
                e.decap = Some(v.inner);
                let behind_vtep = o.fdb.post(network.id, inner_dst).is_some_and(|entry| entry.ifindex == 0);
                if !is_multicast(&inner_dst) && behind_vtep {
                    e.may.clear();
                    e.why = "split horizon: a VTEP's frame for a MAC behind a VTEP is not relayed".into();
                    e.uncounted = Some(SPLIT_HORIZON);
                }
                return e;
            }
        }
    }
    if let Some(network) = world.ipvlan_on(dev) {
        return ipvlan_parent(world, o, l2, network);
    }
    if let Some((network, settings)) = world.macvlan_on(dev) {
        return macvlan_parent(o, l2, network, settings.mode, &settings.source_macs);
    }
    nothing.to([], "VXLAN for no network of this host, and no macvlan or ipvlan network on this parent")
}

fn macvlan_parent(
    o: &Observation<'_>,
    l2: &L2,
    network: &Network,
    mode: MacvlanMode,
    source_macs: &[xlan::mac::Mac],
) -> Expect {
    let nothing = Expect::nothing(o.frame.len(), "");
    let all = ports_of(network);
    let sender = World::mac_owner(network, l2.src);
    let owner = World::mac_owner(network, l2.dst);
    match mode {
        MacvlanMode::Source => {
            if !source_macs.iter().any(|m| m.0 == l2.src) {
                nothing.to([], "source mode: a sender not on the allowed list reaches no endpoint")
            } else if is_multicast(&l2.dst) {
                nothing.to(all, "source mode: an allowed sender's multicast reaches the endpoints")
            } else {
                nothing.to(owner, "source mode: an allowed sender's unicast reaches the destination MAC's owner")
            }
        }
        MacvlanMode::Passthru => nothing.to(all, "passthru: the one endpoint gets everything"),
        mode if is_multicast(&l2.dst) => match sender {
            None => nothing.to(all, "multicast from outside reaches every endpoint"),
            Some(port) if mode == MacvlanMode::Vepa => {
                nothing.to(all.into_iter().filter(|p| *p != port), "vepa: a hairpinned multicast reaches all but its sender")
            }
            Some(port) => nothing.to(
                [],
                format!("{mode}: a multicast endpoint {port} sent, back from the wire, reaches no endpoint (bridge: they had it on the way out; private: never)"),
            ),
        },
        mode => match owner {
            Some(_) if sender.is_some() && mode == MacvlanMode::Private => {
                let mut e = nothing.to([], "private: endpoint to endpoint never, even through a hairpin");
                if o.program == Program::ParentIngress {
                    e.must_drop = Some(DropReason::Isolation);
                }
                e
            }
            Some(port) => nothing.to([port], "unicast reaches the destination MAC's owner"),
            None => nothing.to([], "unicast for no endpoint's MAC is the host's"),
        },
    }
}

fn ipvlan_parent(world: &World, o: &Observation<'_>, l2: &L2, network: &Network) -> Expect {
    let settings = network.ipvlan().expect("an ipvlan network");
    let (dev, frame) = (o.device, o.frame);
    let nothing = Expect::nothing(frame.len(), "");
    let Ok(l3) = reference::l3(frame, l2) else {
        return nothing.to([], "ipvlan: the L3 header is cut short, so no address to deliver by");
    };
    let parent_mac = network.parent.mac.0;
    let sender = if l2.src == parent_mac { l3.src().and_then(|a| world.endpoint_owning(dev, a)) } else { None };
    if o.program == Program::ParentIngress && settings.mode == IpvlanMode::L3 && l2.vid == 0 {
        if let Some(answer) = answer_for(world, dev, frame, l2, &l3) {
            let mut e = nothing.to([], "ipvlan l3: a request for an endpoint's address is answered, not delivered");
            e.answer = Some(answer);
            return e;
        }
    }
    let all = ports_of(network);
    if is_multicast(&l2.dst) {
        if settings.mode == IpvlanMode::L3 {
            return nothing.to([], "ipvlan l3: no broadcast or multicast reaches an endpoint");
        }
        return match sender {
            None => nothing.to(all, "ipvlan l2: multicast from outside reaches every endpoint"),
            Some(port) if settings.flag == IpvlanFlag::Vepa => {
                nothing.to(all.into_iter().filter(|p| *p != port), "ipvlan vepa: a hairpinned multicast reaches all but its sender")
            }
            Some(port) => nothing.to(
                [],
                format!(
                    "ipvlan {}: a multicast endpoint {port} sent, back from the wire, reaches no endpoint (bridge: they had it on the way out; private: never, even through a hairpin)",
                    settings.flag
                ),
            ),
        };
    }
    if l2.dst != parent_mac {
        return nothing.to([], "ipvlan: unicast not to the parent's MAC is the host's");
    }
    let Some(owner) = l3.dst().and_then(|a| world.endpoint_owning(dev, a)) else {
        return nothing.to([], "ipvlan: no endpoint owns the destination address (on this parent)");
    };
    if sender.is_some() && settings.flag == IpvlanFlag::Private {
        let mut e = nothing.to([], "ipvlan private: endpoint to endpoint never, even through a hairpin");
        if o.program == Program::ParentIngress {
            e.must_drop = Some(DropReason::Isolation);
        }
        return e;
    }
    nothing.to([owner], "ipvlan: the owner of the destination address (on this parent)")
}

/// An ARP request or neighbour solicitation for an endpoint's address on `dev`.
fn answer_for(world: &World, dev: u32, frame: &[u8], l2: &L2, l3: &L3) -> Option<Answer> {
    match *l3 {
        L3::Arp { src, dst, operation } if operation == 1 && src != dst => {
            world.endpoint_owning(dev, dst).map(|_| Answer::Arp)
        }
        L3::Ip { src, .. } if l2.ether_type == super::frames::ETH_P_IPV6 && src != [0; 16] => {
            let at = l2.l3;
            let plain_ns = frame[at + 6] == 58
                && frame[at + 7] == 255
                && frame.len() >= at + 64
                && frame[at + 40] == 135
                && frame[at + 41] == 0;
            let target: [u8; 16] = frame.get(at + 48..at + 64)?.try_into().ok()?;
            (plain_ns && world.endpoint_owning(dev, target).is_some())
                .then_some(Answer::Neighbour { target, solicitor: src })
        }
        _ => None,
    }
}

/// An answer goes back to the asker from the parent's MAC and claims only an address an endpoint of the parent's
/// network owns.
fn check_answer(world: &World, o: &Observation<'_>, l2: &L2, answer: Answer) -> Result<(), String> {
    let network = world.ipvlan_on(o.device).expect("answers come from ipvlan networks");
    let parent_mac = network.parent.mac.0;
    let (out, frame, at) = (o.out, o.frame, l2.l3);
    match answer {
        Answer::Arp => {
            ensure!(out.len() == frame.len(), "the ARP reply changed the frame's length");
            ensure!(
                out[0..6] == l2.src && out[6..12] == parent_mac,
                "the ARP reply is not from the parent to the asker"
            );
            ensure!(out[12..14] == [0x08, 0x06] && out[20..22] == [0, 2], "not an ARP reply");
            ensure!(
                out[14..20] == frame[at..at + 6],
                "the ARP reply's hardware/protocol fields differ from the request's"
            );
            ensure!(out[22..28] == parent_mac, "the ARP reply names another MAC than the parent's");
            ensure!(out[28..32] == frame[at + 24..at + 28], "the ARP reply answers for another address than asked");
            let claimed = reference::v4_mapped(&out[28..32]);
            ensure!(
                world.endpoint_owning(o.device, claimed).is_some_and(|p| network.ports().any(|q| q == p)),
                "the ARP reply claims an address no endpoint of the parent's network owns"
            );
            ensure!(out[32..42] == frame[at + 8..at + 18], "the ARP reply is not addressed to the asker");
            ensure!(out[42..] == frame[42..], "the ARP reply changed bytes behind the ARP packet");
        }
        Answer::Neighbour { target, solicitor } => {
            ensure!(out.len() == 86, "a neighbour advertisement is 86 bytes, not {}", out.len());
            ensure!(out[0..6] == l2.src && out[6..12] == parent_mac, "the NA is not from the parent to the solicitor");
            ensure!(out[12..14] == [0x86, 0xdd] && out[14] >> 4 == 6, "the NA is not IPv6");
            ensure!(out[18..20] == [0, 32] && out[20] == 58 && out[21] == 255, "the NA's IPv6 header is wrong");
            ensure!(out[22..38] == target && out[38..54] == solicitor, "the NA's addresses are wrong");
            ensure!(out[54] == 136 && out[55] == 0 && out[58] == 0x60, "not a solicited, override NA");
            ensure!(out[62..78] == target, "the NA answers for another target than asked");
            ensure!(
                out[78..80] == [2, 1] && out[80..86] == parent_mac,
                "the NA's link-layer address is not the parent's"
            );
            let target_owner = world.endpoint_owning(o.device, target);
            ensure!(
                target_owner.is_some_and(|p| network.ports().any(|q| q == p)),
                "the NA claims an address no endpoint of the parent's network owns"
            );
            let check = super::frames::ipv6_upper_checksum(&target, &solicitor, 58, &{
                let mut icmp = out[54..86].to_vec();
                icmp[2] = 0;
                icmp[3] = 0;
                icmp
            });
            ensure!(out[56..58] == check, "the NA's ICMPv6 checksum is wrong");
        }
    }
    Ok(())
}

/// VXLAN learning: only a frame decapsulated for a learning network teaches it, and only that network, the inner
/// source behind the outer source (a VTEP address, never the network's own); static entries never change.
fn vxlan_learning(world: &World, o: &Observation<'_>, l2: &L2, decap: Option<usize>) -> Result<(), String> {
    let vxlan = reference::vxlan(o.frame, l2);
    let owner =
        vxlan.and_then(|v| world.vxlan_for(o.device, v.vni, v.dst_port, v.outer_dst)).filter(|_| decap.is_some());
    let inner = decap.unwrap_or(reference::would_be_inner(l2));
    if o.frame.len() < inner + 12 {
        return Ok(());
    }
    let mac: [u8; 6] = o.frame[inner + 6..inner + 12].try_into().unwrap();
    for (network, settings) in world.vxlans() {
        let (pre, post) = (o.fdb.pre(network.id, mac), o.fdb.post(network.id, mac));
        let decapsulated = owner.is_some_and(|(n, _)| n.id == network.id);
        let outer_src = vxlan.map(|v| v.outer_src).unwrap_or_default();
        let learner = decapsulated
            && settings.learning
            && !is_multicast(&mac)
            && !pre.is_some_and(|e| e.is_static())
            && unicast_vtep(outer_src)
            && outer_src != settings.local.octets();
        if !learner {
            let why = if decapsulated && settings.learning && !is_multicast(&mac) && !pre.is_some_and(|e| e.is_static())
            {
                format!("from {outer_src:?}, an address no remote VTEP can have (martian, or this host's own VTEP)")
            } else {
                "by a frame it may not learn from (another network's, not VXLAN, learning off, or a static entry)"
                    .into()
            };
            ensure!(pre == post, "FDB entry of {mac:02x?} in {} changed ({pre:?} -> {post:?}) {why}", network.name);
            continue;
        }
        let Some(entry) = post else {
            return Err(format!("VXLAN for {} did not teach it the inner source {mac:02x?}", network.name));
        };
        ensure!(
            entry.ifindex == 0 && !entry.is_static() && entry.remote_ip == u32::from_ne_bytes(outer_src),
            "learned {mac:02x?} in {} as {entry:?}, not behind the outer source {outer_src:?}",
            network.name
        );
    }
    Ok(())
}

// --- frames endpoints send (tcx ingress on the endpoint's host-side veth) -------------------------------------

fn endpoint(world: &World, o: &Observation<'_>, d: &Deltas) -> Result<Class, String> {
    let (port, frame) = (o.device, o.frame);
    let me = port_index(world, port);
    let Some(network) = world.network_of_port(port) else {
        ensure!(o.verdict == TC_ACT_SHOT, "a frame from a device of no network was not dropped");
        ensure!(
            Deltas::one_reason(&d.drops) == Some(DropReason::UnknownPort),
            "a frame from a device of no network must be counted as unknown_port"
        );
        ensure!(delivered(world, d, frame.len())?.is_empty(), "a frame from a device of no network was delivered");
        ensure!(d.tx.iter().all(|t| *t == 0), "a frame from a device of no network was counted as sent");
        // A device that is no endpoint has no counters of its own (counters live in the slots endpoints are given):
        // the drop is counted only among the global drops.
        for drops in &d.port_drops {
            ensure!(drops.iter().sum::<u64>() == 0, "the unknown_port drop was counted against a port");
        }
        return Ok(Class::Dropped(DropReason::UnknownPort));
    };
    let me = me.expect("every endpoint port is watched");
    for (i, _) in world.ports.iter().enumerate() {
        let (tx, tx_bytes) = if i == me { (1, frame.len() as u64) } else { (0, 0) };
        ensure!(
            d.tx[i] == tx && d.tx_bytes[i] == tx_bytes,
            "tx of port {}: +{} ({} B), expected +{tx} ({tx_bytes} B)",
            world.ports[i],
            d.tx[i],
            d.tx_bytes[i]
        );
    }
    let own = d.port_drops[me];
    ensure!(own.iter().sum::<u64>() <= 1, "{} drops counted against the sender for one frame", own.iter().sum::<u64>());
    let no_neighbour = DropReason::NoNeighbour as usize;
    for (reason, (global, own)) in d.drops.iter().zip(own).enumerate() {
        if reason == no_neighbour {
            // Head-end replication counts a copy for an unresolved VTEP globally, without blaming the sender.
            ensure!(*global >= own, "a drop counted against the sender but not globally");
        } else {
            ensure!(*global == own, "a drop counted globally but not against the sender");
        }
    }
    let is_vxlan = network.vxlan().is_some();
    ensure!(is_vxlan || d.drops[no_neighbour] == own[no_neighbour], "no_neighbour outside VXLAN");
    for (i, drops) in d.port_drops.iter().enumerate() {
        ensure!(i == me || drops.iter().all(|x| *x == 0), "a drop counted against port {}", world.ports[i]);
    }
    let frame_drop = Deltas::one_reason(&own);
    let l2 = match reference::l2(frame) {
        Ok(l2) => l2,
        Err(Cut) => {
            ensure!(
                o.verdict == TC_ACT_SHOT && frame_drop == Some(DropReason::Malformed),
                "an endpoint's frame with a cut VLAN tag must be dropped as malformed"
            );
            ensure!(delivered(world, d, frame.len())?.is_empty(), "a frame with a cut VLAN tag was delivered");
            return Ok(Class::Dropped(DropReason::Malformed));
        }
    };
    let e = expect_endpoint(world, o, &l2, network, port);
    let ports = delivered(world, d, frame.len())?;
    let beyond: Vec<_> = reached(world, d, &ports).difference(&e.may).copied().collect();
    ensure!(beyond.is_empty(), "delivered to port(s) {beyond:?}; the rule allows only {:?}: {}", e.may, e.why);
    if let Some(reason) = e.must_drop {
        ensure!(
            o.verdict == TC_ACT_SHOT && frame_drop == Some(reason),
            "must be dropped as {} ({}), got verdict {} and {:?}",
            reason.name(),
            e.why,
            o.verdict,
            frame_drop
        );
    }
    if let Some(settings) = network.vxlan() {
        let sent =
            d.tried[world.ports.len() + world.parents.iter().position(|p| *p == network.parent.ifindex).unwrap()];
        let copy_drops = d.drops[no_neighbour] - own[no_neighbour];
        let flood = settings.flood.remotes();
        if e.flooded && !flood.is_empty() {
            // Head-end replication: a copy per VTEP with a known next hop; the first without one gets the original
            // (bpf_redirect_neigh resolves, for IP only), each further one is a counted no_neighbour drop.
            let resolved = flood.iter().filter(|r| o.fdb.resolved(r.octets())).count() as u64;
            let unresolved = flood.len() as u64 - resolved;
            let ip = matches!(
                u16::from_be_bytes([frame[12], frame[13]]),
                super::frames::ETH_P_IPV4 | super::frames::ETH_P_IPV6
            );
            match frame_drop {
                None | Some(DropReason::NoNeighbour) => {
                    ensure!(sent == resolved, "{sent} copies out of the parent for {resolved} VTEPs with a next hop");
                    ensure!(
                        copy_drops == unresolved.saturating_sub(1),
                        "{copy_drops} no_neighbour copies for {unresolved} VTEPs without a next hop"
                    );
                    let (verdict, dropped) = match (unresolved, ip) {
                        (0, _) => (TC_ACT_SHOT, None),
                        (_, true) => (TC_ACT_REDIRECT, None),
                        (_, false) => (TC_ACT_SHOT, Some(DropReason::NoNeighbour)),
                    };
                    ensure!(
                        o.verdict == verdict && frame_drop == dropped,
                        "replication to {resolved} resolved and {unresolved} unresolved VTEPs ends in verdict {verdict} {dropped:?}, got {} {frame_drop:?}",
                        o.verdict
                    );
                }
                _ => ensure!(
                    sent <= resolved && copy_drops == 0,
                    "copies or no_neighbour drops after a failed encapsulation"
                ),
            }
        } else {
            ensure!(sent == 0 && copy_drops == 0, "{sent} copies out of the parent for a frame to one destination");
        }
    }
    match o.verdict {
        TC_ACT_REDIRECT => {
            ensure!(frame_drop.is_none(), "redirected, yet a drop was counted against the sender");
            if o.out == frame {
                ensure!(
                    !is_vxlan || !ports.is_empty(),
                    "a VXLAN endpoint's frame left unencapsulated (no local delivery)"
                );
                Ok(if ports.is_empty() { Class::Passed } else { Class::Delivered })
            } else if is_vxlan {
                check_encapsulation(network, frame, o.out, e.encap.as_deref().unwrap_or(&[]))?;
                Ok(Class::Encapsulated)
            } else {
                Err("changed the frame it redirected".into())
            }
        }
        TC_ACT_SHOT => {
            if let Some(reason) = frame_drop {
                // A VXLAN flood may reach local endpoints before a VTEP's copy fails.
                ensure!(is_vxlan || ports.is_empty(), "dropped as {}, yet delivered to {ports:?}", reason.name());
                Ok(Class::Dropped(reason))
            } else if is_vxlan && o.out != frame {
                check_encapsulation(network, frame, o.out, e.encap.as_deref().unwrap_or(&[]))?;
                Ok(Class::Encapsulated)
            } else if is_vxlan && !ports.is_empty() {
                Ok(Class::Delivered)
            } else if let Some(why) = e.uncounted.filter(|_| ports.is_empty()) {
                Ok(Class::Uncounted(why))
            } else {
                Err(format!("dropped without a counted reason ({})", e.why))
            }
        }
        v => Err(format!(
            "verdict {v}: an endpoint's frame is redirected or dropped, never handed to the stack of its host-side port"
        )),
    }
}

fn expect_endpoint(world: &World, o: &Observation<'_>, l2: &L2, network: &Network, port: u32) -> Expect {
    let nothing = Expect::nothing(o.frame.len(), "");
    let others: BTreeSet<u32> = network.ports().filter(|p| *p != port).collect();
    match &network.driver {
        DriverSettings::Macvlan(settings) => {
            let mode = settings.mode;
            if is_multicast(&l2.dst) {
                if mode == MacvlanMode::Bridge {
                    nothing.to(others, "macvlan bridge: an endpoint's multicast reaches the others")
                } else {
                    nothing.to([], format!("macvlan {mode}: no endpoint to endpoint but through the wire"))
                }
            } else if settings.host_access && l2.dst == network.parent.mac.0 {
                nothing.to([], "host access: to the host")
            } else if mode == MacvlanMode::Bridge {
                match World::mac_owner(network, l2.dst) {
                    Some(owner) if owner != port => {
                        nothing.to([owner], "macvlan bridge: to the destination MAC's owner")
                    }
                    _ => nothing.to([], "macvlan bridge: unicast for no other endpoint goes out"),
                }
            } else {
                nothing.to([], format!("macvlan {mode}: no endpoint to endpoint but through the wire"))
            }
        }
        DriverSettings::Ipvlan(settings) => {
            let parent = network.parent.ifindex;
            let Ok(l3) = reference::l3(o.frame, l2) else {
                let mut e = nothing.to([], "ipvlan: the L3 header is cut short");
                e.must_drop = Some(DropReason::Malformed);
                return e;
            };
            if let Some(src) = l3.src() {
                if !reference::unspecified(&src) && world.ip_owner(parent, src) != Some(Owner::Port(port)) {
                    let mut e = nothing.to([], "ipvlan: a source address that is not the sender's");
                    e.must_drop = Some(DropReason::Spoofed);
                    return e;
                }
            }
            let l3_mode = settings.mode == IpvlanMode::L3;
            if l3_mode && !l3.is_ip() {
                let mut e = nothing.to([], "ipvlan l3: endpoints are NOARP, nothing but IP has a way out");
                e.uncounted = Some(L3_NOT_IP);
                return e;
            }
            if is_multicast(&l2.dst) {
                return if !l3_mode && settings.flag == IpvlanFlag::Bridge {
                    nothing.to(others, "ipvlan l2 bridge: an endpoint's multicast reaches the others")
                } else {
                    nothing.to(
                        [],
                        format!("ipvlan {} {}: an endpoint's multicast only goes out", settings.mode, settings.flag),
                    )
                };
            }
            match l3.dst().and_then(|dst| world.ip_owner(parent, dst)) {
                Some(Owner::Port(owner)) if owner == port => {
                    let mut e = nothing.to([], "ipvlan: to the sender's own address");
                    e.uncounted = Some(OWN_ADDRESS);
                    e
                }
                Some(Owner::Host) if l3_mode => {
                    let mut e = nothing.to([], "ipvlan l3: the host's addresses are not for endpoints");
                    e.must_drop = Some(DropReason::Isolation);
                    e
                }
                Some(Owner::Host) => nothing.to([], "ipvlan l2: to the host's address goes out as it is"),
                Some(Owner::Port(_)) if settings.flag == IpvlanFlag::Private => {
                    let mut e = nothing.to([], "ipvlan private: endpoint to endpoint never");
                    e.must_drop = Some(DropReason::Isolation);
                    e
                }
                Some(Owner::Port(_)) if settings.flag == IpvlanFlag::Vepa => {
                    nothing.to([], "ipvlan vepa: endpoint to endpoint through the switch")
                }
                Some(Owner::Port(owner)) => nothing.to([owner], "ipvlan bridge: to the destination address's owner"),
                None => nothing.to([], "ipvlan: to an address of no endpoint goes out"),
            }
        }
        DriverSettings::Vxlan(settings) => {
            let flood = flood_destinations(settings);
            if is_multicast(&l2.dst) {
                let mut e = nothing.to(others, "vxlan: a multicast reaches the VNI's other endpoints and its VTEPs");
                e.encap = Some(flood);
                e.flooded = true;
                return e;
            }
            match World::mac_owner(network, l2.dst) {
                Some(owner) if owner == port => {
                    let mut e = nothing.to([], "vxlan: to the sender's own MAC");
                    e.uncounted = Some(OWN_ADDRESS);
                    e
                }
                Some(owner) => nothing.to([owner], "vxlan: to a local endpoint of the VNI, unencapsulated"),
                None => match o.fdb.pre(network.id, l2.dst) {
                    Some(entry) if entry.ifindex == 0 => {
                        let mut e = nothing.to([], "vxlan: to a MAC behind a VTEP: encapsulated to it only");
                        e.encap = Some(vec![entry.remote_ip.to_ne_bytes()]);
                        e
                    }
                    _ => {
                        let mut e = nothing.to(others, "vxlan: unknown unicast floods the VNI and its VTEPs");
                        e.encap = Some(flood);
                        e.flooded = true;
                        e
                    }
                },
            }
        }
    }
}

fn flood_destinations(settings: &Vxlan) -> Vec<[u8; 4]> {
    let mut destinations: Vec<[u8; 4]> = settings.flood.remotes().iter().map(|r| r.octets()).collect();
    destinations.extend(settings.flood.group().map(|g| g.octets()));
    destinations
}

/// An endpoint's frame as it leaves a VXLAN network: exactly the frame behind outer Ethernet/IPv4/UDP/VXLAN headers
/// that carry the network's own VNI, port and local VTEP address, to a VTEP it may go to.
fn check_encapsulation(network: &Network, frame: &[u8], out: &[u8], allowed: &[[u8; 4]]) -> Result<(), String> {
    let settings = network.vxlan().expect("a VXLAN network");
    ensure!(out.len() == frame.len() + 50, "encapsulated to {} bytes from {}", out.len(), frame.len());
    ensure!(out[50..] == *frame, "the inner frame is not the frame the endpoint sent");
    ensure!(out[6..12] == network.parent.mac.0 && out[12..14] == [0x08, 0x00], "outer Ethernet header");
    let ip = &out[14..34];
    ensure!(ip[0] == 0x45 && reference::ipv4_header_ok(ip), "outer IPv4 header (version/IHL or checksum)");
    ensure!(u16::from_be_bytes([ip[2], ip[3]]) as usize == out.len() - 14, "outer IPv4 total length");
    ensure!(ip[6..8] == [0x40, 0] && ip[8] == 64 && ip[9] == 17, "outer IPv4 DF, TTL 64, UDP");
    ensure!(ip[12..16] == settings.local.octets(), "outer source {:?} is not the network's local VTEP", &ip[12..16]);
    let dst: [u8; 4] = ip[16..20].try_into().unwrap();
    ensure!(allowed.contains(&dst), "outer destination {dst:?} is none this frame may go to ({allowed:?})");
    let group = settings.flood.group().map(|g| g.octets());
    ensure!(
        (unicast_vtep(dst) || group == Some(dst)) && dst != settings.local.octets(),
        "outer destination {dst:?} is no VTEP address"
    );
    if group == Some(dst) {
        ensure!(out[0..6] == [0x01, 0x00, 0x5e, dst[1] & 0x7f, dst[2], dst[3]], "the group's multicast MAC");
    }
    let udp = &out[34..42];
    let source_port = u16::from_be_bytes([udp[0], udp[1]]);
    ensure!((32768..61000).contains(&source_port), "outer UDP source port {source_port}");
    ensure!(u16::from_be_bytes([udp[2], udp[3]]) == settings.dstport, "outer UDP port is not the network's");
    ensure!(
        u16::from_be_bytes([udp[4], udp[5]]) as usize == out.len() - 34 && udp[6..8] == [0, 0],
        "outer UDP length/checksum"
    );
    let vni = settings.vni.to_be_bytes();
    ensure!(out[42..50] == [0x08, 0, 0, 0, vni[1], vni[2], vni[3], 0], "VXLAN header does not carry the network's VNI");
    Ok(())
}

pub fn verdict_name(program: Program, verdict: u32) -> &'static str {
    match (program.is_xdp(), verdict) {
        (true, 0) => "XDP_ABORTED",
        (true, XDP_DROP) => "XDP_DROP",
        (true, XDP_PASS) => "XDP_PASS",
        (true, 3) => "XDP_TX",
        (true, XDP_REDIRECT) => "XDP_REDIRECT",
        (false, TC_ACT_OK) => "TC_ACT_OK",
        (false, TC_ACT_SHOT) => "TC_ACT_SHOT",
        (false, TC_ACT_REDIRECT) => "TC_ACT_REDIRECT",
        _ => "?",
    }
}
