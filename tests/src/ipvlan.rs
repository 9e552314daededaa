//! The ipvlan test topologies and their reachability matrices.
//!
//! [`IpvlanTopology`]: the macvlan topology's shape (the same [`Site`]), with an xlan ipvlan network on the host's
//! parent:
//!
//! ```text
//!   out (eth0) ── to-out ─┐
//!                         br0   (switch namespace; hairpin on to-host for the private and vepa flags)
//!   host (uplink) ─ to-host ┘
//!     └── e1..e3 (eth0 each): xlan ipvlan endpoints on `uplink`, all with uplink's MAC
//! ```
//!
//! In l2 every node is on 10.77.0.0/24 and fd77::/64. In l3, e3 is on a second subnet (10.99.0.0/24, fd99::/64)
//! that the outside node routes via the host's uplink address: the parent routes for it.
//!
//! [`RoutedReference`]: the same l3 scenario built with plain kernel routing — the host is a router (forwarding on)
//! and every endpoint is a namespace on its own veth and subnet, with the router's address as its gateway.
//!
//! Both implement [`Probed`], so [`Matrix::measure`] can build their matrices; a node's address is the topology's to
//! say (e3 of an l3 network, and every endpoint of the reference, are not on 10.77/16).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::counters::EndpointCounters;
use crate::link;
use crate::matrix::{Matrix, Probed};
use crate::netns::Netns;
use crate::probe::Probe;
pub use crate::site::SWITCH_PORT_HOST;
use crate::site::{self, Site, BRIDGE};
use crate::sniff::Capture;
use crate::topology::{by_name, Family, Node, NETWORK, NODE_IFNAME, PARENT};
use crate::xlan::XlanHost;

/// Duplicate address detection of link-local addresses takes one to two seconds.
const DAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The nodes of every matrix here, in row/column order.
pub const NODES: [Node; 5] = [Node::Outside, Node::Host, Node::Endpoint(1), Node::Endpoint(2), Node::Endpoint(3)];

/// `--mode` of an ipvlan network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    L2,
    L3,
}

impl IpvlanMode {
    pub const ALL: [IpvlanMode; 2] = [IpvlanMode::L2, IpvlanMode::L3];

    pub fn as_str(self) -> &'static str {
        match self {
            IpvlanMode::L2 => "l2",
            IpvlanMode::L3 => "l3",
        }
    }
}

/// `--flag` of an ipvlan network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanFlag {
    Bridge,
    Private,
    Vepa,
}

impl IpvlanFlag {
    pub const ALL: [IpvlanFlag; 3] = [IpvlanFlag::Bridge, IpvlanFlag::Private, IpvlanFlag::Vepa];

    pub fn as_str(self) -> &'static str {
        match self {
            IpvlanFlag::Bridge => "bridge",
            IpvlanFlag::Private => "private",
            IpvlanFlag::Vepa => "vepa",
        }
    }

    /// Whether the switch reflects frames back out the host's port: VEPA needs it; private gets it too, so that
    /// its "never, not even through a hairpinning switch" is what is tested.
    pub fn hairpin(self) -> bool {
        self != IpvlanFlag::Bridge
    }
}

impl FromStr for IpvlanMode {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<IpvlanMode> {
        by_name(&IpvlanMode::ALL, IpvlanMode::as_str, s, "ipvlan mode")
    }
}

impl FromStr for IpvlanFlag {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<IpvlanFlag> {
        by_name(&IpvlanFlag::ALL, IpvlanFlag::as_str, s, "ipvlan flag")
    }
}

/// One entry of an expected matrix: what the probes from one node to another do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Every probe gets through.
    Reachable,
    /// No probe gets through.
    Unreachable,
    /// The IPv4 probes (ping4, tcp4) get through, the IPv6 ones (ping6, udp6) do not.
    OnlyV4,
    /// The diagonal (a node to itself): not probed.
    Diagonal,
}

/// An expected matrix over [`NODES`]: rows are sources, columns destinations.
pub type Table = [[Want; 5]; 5];

/// The matrix a table describes: every probe of a pair as the table says.
pub fn expected(table: &Table) -> Matrix {
    let cells = NODES.iter().zip(table).flat_map(|(&src, row)| {
        NODES.iter().zip(row).flat_map(move |(&dst, &want)| {
            Probe::ALL.into_iter().filter_map(move |probe| {
                let reachable = match want {
                    Want::Reachable => true,
                    Want::Unreachable => false,
                    Want::OnlyV4 => probe.family() == Family::V4,
                    Want::Diagonal => return None,
                };
                Some(((src, dst, probe), reachable))
            })
        })
    });
    Matrix::from_cells(NODES.to_vec(), cells)
}

/// `Probed` for a topology of [`NODES`] with inherent `netns(node)` and `addr(node, family)`.
macro_rules! probed_over_nodes {
    ($topology:ty) => {
        impl Probed for $topology {
            fn probed_nodes(&self) -> Vec<Node> {
                NODES.to_vec()
            }

            fn probed_netns(&self, node: Node) -> &Netns {
                self.netns(node)
            }

            fn probed_addr(&self, node: Node, family: Family) -> IpAddr {
                self.addr(node, family)
            }
        }
    };
}

/// Waits until the wire is up and no IPv6 address on its outside node and host is tentative.
fn wait_wire_ready(site: &Site) -> Result<()> {
    site.wait_wire_up()?;
    wait_dad_done(&site.outside)?;
    wait_dad_done(&site.host)
}

/// Waits until no IPv6 address in the namespace is tentative. The nodes' own addresses skip DAD, but link-local
/// ones do not, and until a link-local address is usable the kernel sends no neighbour solicitation for traffic it
/// forwards (the host's routing for l3 endpoints, the reference router), so a first probe would wait out a
/// retransmission and fail.
fn wait_dad_done(netns: &Netns) -> Result<()> {
    let deadline = std::time::Instant::now() + DAD_TIMEOUT;
    loop {
        let text = netns.ip(&["-6", "-j", "addr", "show", "tentative"])?;
        let links: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing `ip -6 -j addr show tentative` in {}", netns.name()))?;
        let tentative = links
            .as_array()
            .into_iter()
            .flatten()
            .any(|link| link["addr_info"].as_array().is_some_and(|addresses| !addresses.is_empty()));
        if !tentative {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            anyhow::bail!("IPv6 addresses in {} still tentative after {DAD_TIMEOUT:?}: {text}", netns.name());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The second subnet of an l3 network, behind the host (e3's).
pub const ROUTED_V4: &str = "10.99.0.0/24";
pub const ROUTED_V6: &str = "fd99::/64";

pub struct IpvlanTopology {
    // Drops first: xlan deletes its network while the namespaces exist; they go after it.
    xlan: XlanHost,
    mode: IpvlanMode,
    flag: IpvlanFlag,
    site: Site,
}

impl IpvlanTopology {
    /// The topology with xlan's ipvlan network `net0` in `mode`/`flag` and endpoints e1..e3.
    pub fn build(mode: IpvlanMode, flag: IpvlanFlag) -> Result<IpvlanTopology> {
        let site = Site::create(3)?;
        let xlan = XlanHost::new(&site.host)?;
        let mut topology = IpvlanTopology { xlan, mode, flag, site };
        topology.site.build_wire(flag.hairpin())?;
        let args = ["--driver", "ipvlan", "--parent", PARENT, "--mode", mode.as_str(), "--flag", flag.as_str()];
        topology.xlan.create_network(NETWORK, &args)?;
        for index in 1..=3 {
            let node = Node::Endpoint(index);
            let (v4, v6) = (topology.cidr(node, Family::V4), topology.cidr(node, Family::V6));
            topology.xlan.run(&[
                "endpoint",
                "add",
                NETWORK,
                "--netns",
                topology.netns(node).name(),
                "--ifname",
                NODE_IFNAME,
                "--ip",
                &v4,
                "--ip",
                &v6,
            ])?;
        }
        if mode == IpvlanMode::L3 {
            topology.site.route_via_host(ROUTED_V4, ROUTED_V6)?;
        }
        wait_wire_ready(&topology.site)?;
        for netns in &topology.site.endpoints {
            link::wait_up(netns, NODE_IFNAME)?;
        }
        Ok(topology)
    }

    pub fn prefix(&self) -> &str {
        &self.site.prefix
    }

    pub fn mode(&self) -> IpvlanMode {
        self.mode
    }

    pub fn flag(&self) -> IpvlanFlag {
        self.flag
    }

    pub fn xlan(&self) -> &XlanHost {
        &self.xlan
    }

    /// The switch's namespace (its port to the host is [`SWITCH_PORT_HOST`]).
    pub fn switch(&self) -> &Netns {
        &self.site.switch
    }

    pub fn netns(&self, node: Node) -> &Netns {
        self.site.netns(node)
    }

    /// The node's address: 10.77.0.x / fd77::x, but for e3 of an l3 network, on the routed second subnet.
    pub fn addr(&self, node: Node, family: Family) -> IpAddr {
        match (self.mode, node, family) {
            (IpvlanMode::L3, Node::Endpoint(3), Family::V4) => Ipv4Addr::new(10, 99, 0, 13).into(),
            (IpvlanMode::L3, Node::Endpoint(3), Family::V6) => Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 0x13).into(),
            _ => node.addr(family),
        }
    }

    /// The node's address with its prefix length (/24, /64).
    pub fn cidr(&self, node: Node, family: Family) -> String {
        let length = if family == Family::V4 { 24 } else { 64 };
        format!("{}/{length}", self.addr(node, family))
    }

    /// `xlan stats net0 --json` for one endpoint.
    pub fn counters(&self, node: Node) -> Result<EndpointCounters> {
        self.xlan.endpoint_stats(NETWORK, self.netns(node).name(), NODE_IFNAME)
    }

    /// Every endpoint's counters.
    pub fn endpoint_counters(&self) -> Result<Vec<(Node, EndpointCounters)>> {
        (1..=3).map(Node::Endpoint).map(|node| Ok((node, self.counters(node)?))).collect()
    }

    /// What the node is in this topology, for people.
    fn role(&self, node: Node) -> String {
        match node {
            Node::Outside if self.mode == IpvlanMode::L3 => {
                format!("outside node; {ROUTED_V4}, {ROUTED_V6} via the host")
            }
            Node::Outside => "outside node".to_string(),
            Node::Host => "host, parent of the endpoints".to_string(),
            Node::Endpoint(_) => "ipvlan endpoint (parent's MAC)".to_string(),
        }
    }

    /// The topology for programs: what the text form shows, as JSON.
    pub fn to_json(&self) -> Value {
        let nodes: Vec<Value> = NODES
            .into_iter()
            .map(|node| {
                json!({
                    "node": node.to_string(), "netns": self.netns(node).name(), "ifname": site::ifname(node),
                    "ipv4": self.cidr(node, Family::V4), "ipv6": self.cidr(node, Family::V6), "role": self.role(node),
                })
            })
            .collect();
        json!({
            "prefix": self.site.prefix, "driver": "ipvlan", "mode": self.mode.as_str(), "flag": self.flag.as_str(),
            "switch": self.site.switch_json(self.flag.hairpin()), "nodes": nodes,
        })
    }
}

probed_over_nodes!(IpvlanTopology);

impl fmt::Display for IpvlanTopology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hairpin = if self.flag.hairpin() { ", hairpin on to-host" } else { "" };
        writeln!(
            f,
            "topology {}: xlan ipvlan mode {} {}; switch {} {BRIDGE}{hairpin}",
            self.site.prefix,
            self.mode.as_str(),
            self.flag.as_str(),
            self.site.switch.name()
        )?;
        for node in NODES {
            let (ifname, role) = (site::ifname(node), self.role(node));
            writeln!(
                f,
                "{:<5} {:<14} {ifname:<7} inet {:<15} inet6 {:<12} ({role})",
                node.to_string(),
                self.netns(node).name(),
                self.cidr(node, Family::V4),
                self.cidr(node, Family::V6),
            )?;
        }
        Ok(())
    }
}

/// The l3 scenario with plain kernel routing: the host is a router (IPv4 and IPv6 forwarding on) whose uplink is on
/// the switch; endpoint eN is a namespace on a veth `to-eN` of the router, on its own subnet (10.81.0.0/24,
/// 10.82.0.0/24, 10.99.0.0/24 and fd81::/64, fd82::/64, fd99::/64; router .1/::1, endpoint .1N/::1N), with the
/// router as its default gateway. The outside node routes the three subnets via the router's uplink address.
pub struct RoutedReference {
    site: Site,
}

impl RoutedReference {
    pub fn build() -> Result<RoutedReference> {
        let reference = RoutedReference { site: Site::create(3)? };
        reference.site.build_wire(false)?;
        let router = &reference.site.host;
        router.sysctl("net.ipv4.ip_forward", "1")?;
        router.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        for index in 1..=3u8 {
            let netns = reference.netns(Node::Endpoint(index));
            let port = format!("to-e{index}");
            link::add_veth(router, &port, NODE_IFNAME, netns)?;
            let (v4, v6) = Self::subnet(index);
            link::configure(router, &port, None, &[format!("{v4}.1/24"), format!("{v6}::1/64")])?;
            link::configure(netns, NODE_IFNAME, None, &[format!("{v4}.1{index}/24"), format!("{v6}::1{index}/64")])?;
            netns.ip(&["route", "add", "default", "via", &format!("{v4}.1")])?;
            netns.ip(&["-6", "route", "add", "default", "via", &format!("{v6}::1")])?;
            reference.site.route_via_host(&format!("{v4}.0/24"), &format!("{v6}::/64"))?;
        }
        wait_wire_ready(&reference.site)?;
        for (index, netns) in (1..).zip(&reference.site.endpoints) {
            link::wait_up(router, &format!("to-e{index}"))?;
            link::wait_up(netns, NODE_IFNAME)?;
        }
        wait_dad_done(router)?;
        for netns in &reference.site.endpoints {
            wait_dad_done(netns)?;
        }
        Ok(reference)
    }

    /// The first three bytes of endpoint N's IPv4 subnet and the first group of its IPv6 one.
    fn subnet(index: u8) -> (String, String) {
        let net = if index == 3 { 99 } else { 80 + index };
        (format!("10.{net}.0"), format!("fd{net}"))
    }

    pub fn netns(&self, node: Node) -> &Netns {
        self.site.netns(node)
    }

    pub fn addr(&self, node: Node, family: Family) -> IpAddr {
        let Node::Endpoint(index) = node else {
            return node.addr(family);
        };
        let (v4, v6) = Self::subnet(index);
        let text = match family {
            Family::V4 => format!("{v4}.1{index}"),
            Family::V6 => format!("{v6}::1{index}"),
        };
        text.parse().expect("well-formed address")
    }
}

probed_over_nodes!(RoutedReference);

impl fmt::Display for RoutedReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "topology {}: kernel routing reference; switch {} {BRIDGE}",
            self.site.prefix,
            self.site.switch.name()
        )?;
        for node in NODES {
            let role = match node {
                Node::Outside => "outside node; the endpoint subnets via the router",
                Node::Host => "router, forwarding on, uplink on the switch",
                Node::Endpoint(_) => "on its own veth to the router, default via the router",
            };
            writeln!(
                f,
                "{:<5} {:<14} inet {:<12} inet6 {:<9} ({role})",
                node.to_string(),
                self.netns(node).name(),
                self.addr(node, Family::V4).to_string(),
                self.addr(node, Family::V6).to_string(),
            )?;
        }
        Ok(())
    }
}

/// At most this many frames are kept by a [`WireTap`] (the rest are counted, not stored).
const TAP_MAX_FRAMES: usize = 10_000;
/// Room for the largest frame a veth carries.
const TAP_SNAP_LEN: usize = 65_536;

/// Every frame seen on one interface (both directions) from `start` to `stop`: a [`Capture`] that keeps the frames.
pub struct WireTap(Capture<Vec<Frame>>);

impl WireTap {
    /// Starts capturing on `ifname` in `netns`; returns once the socket is bound.
    pub fn start(netns: &Netns, ifname: &str) -> Result<WireTap> {
        let capture = Capture::start(netns, ifname, TAP_SNAP_LEN, Vec::new(), |frames: &mut Vec<Frame>, seen| {
            if frames.len() < TAP_MAX_FRAMES {
                frames.push(Frame { data: seen.bytes.to_vec(), received: !seen.outgoing });
            }
        })?;
        Ok(WireTap(capture))
    }

    /// Stops capturing and returns what was seen.
    pub fn stop(self) -> Result<Vec<Frame>> {
        self.0.finish()
    }
}

/// One captured Ethernet frame (untagged), with just enough parsing for the tests' questions.
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Vec<u8>,
    /// Received by the tapped interface, i.e. sent by the other end of its cable (else sent through it).
    pub received: bool,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ICMPV6: u8 = 58;
const ICMPV6_NEIGHBOUR_SOLICITATION: u8 = 135;

impl Frame {
    fn bytes<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.data.get(at..at + N)?.try_into().ok()
    }

    pub fn dst_mac(&self) -> Option<[u8; 6]> {
        self.bytes(0)
    }

    pub fn src_mac(&self) -> Option<[u8; 6]> {
        self.bytes(6)
    }

    fn ethertype(&self) -> Option<u16> {
        self.bytes(12).map(u16::from_be_bytes)
    }

    /// The IP source and destination, for IPv4 and IPv6 frames.
    pub fn ip_addrs(&self) -> Option<(IpAddr, IpAddr)> {
        match self.ethertype()? {
            ETHERTYPE_IPV4 => {
                Some((Ipv4Addr::from(self.bytes::<4>(26)?).into(), Ipv4Addr::from(self.bytes::<4>(30)?).into()))
            }
            ETHERTYPE_IPV6 => {
                Some((Ipv6Addr::from(self.bytes::<16>(22)?).into(), Ipv6Addr::from(self.bytes::<16>(38)?).into()))
            }
            _ => None,
        }
    }

    /// The target of an IPv6 neighbour solicitation (without extension headers).
    pub fn solicited_target(&self) -> Option<Ipv6Addr> {
        let is_ns = self.ethertype()? == ETHERTYPE_IPV6
            && self.bytes::<1>(20)? == [ICMPV6]
            && self.bytes::<1>(54)? == [ICMPV6_NEIGHBOUR_SOLICITATION];
        is_ns.then(|| self.bytes::<16>(62).map(Ipv6Addr::from)).flatten()
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mac = |mac: Option<[u8; 6]>| mac.map_or("?".to_string(), |m| crate::bench::frame::format_mac(&m));
        write!(f, "{} > {}", mac(self.src_mac()), mac(self.dst_mac()))?;
        if let Some((src, dst)) = self.ip_addrs() {
            write!(f, ", {src} > {dst}")?;
        }
        if let Some(target) = self.solicited_target() {
            write!(f, ", neighbour solicitation for {target}")?;
        }
        let direction = if self.received { "received" } else { "sent" };
        write!(f, ", {} bytes, {direction}", self.data.len())
    }
}
