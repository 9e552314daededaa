//! The bench topologies: one per (LAN, backend), built from namespaces and veths, all alive side by side for the
//! whole run. What every topology has, whatever its LAN (the LAN's own part is in `macvlan`, `vxlan`, `ipvlan`):
//!
//! ```text
//!   e1: gen0 ══ veth ══ gen1          the injector: frames generated on gen0 leave e1 through its eth0
//!   eN: eth0 + delivery counter        a tcx counter on every endpoint's own interface, a bound UDP socket behind it
//! ```
//!
//! Everything that is not the backend is identical between the backends of one LAN: addresses and MACs, offloads,
//! the counters, the sockets and the injector. Namespace names are `xl<pid>b<lan><backend><role>`, so the harness's
//! sweep recognises them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};

use anyhow::{bail, Context, Result};
use aya::maps::{HashMap as BpfHashMap, Map, MapData};
use datapath_common::bench::{program_names as bench_programs, BenchConfig};
use datapath_common::{map_names, program_names, FdbEntry, MacKey, NetworkConfig, NetworkKind};

use super::frame::{parse_mac, Flow};
use super::generator::Injection;
use super::programs::BenchPrograms;
use super::{ipvlan, macvlan, vxlan};
use crate::link::{self, ifindex_in};
use crate::netns::Netns;
use crate::topology::{Family, Node, NODE_IFNAME, PARENT};
use crate::xlan::{remove_leftover_state, XlanHost};
use xlan_lib::driver::port as driver_port;
use xlan_lib::model::ParentHook;

/// The UDP port the generator sends to, bound in every endpoint so datagrams reach a socket (not an ICMP error).
pub const SINK_PORT: u16 = 9000;
/// The generator's flows use UDP source ports from here on.
pub const BASE_SOURCE_PORT: u16 = 40000;
/// Every LAN here has two endpoints.
pub const ENDPOINTS: u8 = 2;
const INJECTOR_TX: &str = "gen0";
const INJECTOR_RX: &str = "gen1";

/// Who forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    /// The kernel's driver, what users would use instead (for ipvlan, which this kernel lacks: plain routing).
    Kernel,
    /// xlan with its defaults: on a veth parent, the tc parent hook.
    Xlan,
    /// xlan with `--parent-hook xdp`: XDP on the parent, XDP_PASS stubs on the endpoints.
    XlanXdp,
    /// vxlan: host A runs xlan, host B the kernel's vxlan + bridge.
    Mixed,
    /// Bare redirects on the same kind of veths xlan uses, in the shape of xlan's default (tc) hook: what no
    /// datapath built that way can beat.
    Limit,
    /// The same with a bare XDP redirect on the parent: the limit of the xdp hook.
    LimitXdp,
}

impl Backend {
    pub const ALL: [Backend; 6] =
        [Backend::Kernel, Backend::Xlan, Backend::XlanXdp, Backend::Mixed, Backend::Limit, Backend::LimitXdp];

    /// The key in report.json and the table's column.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Kernel => "kernel",
            Backend::Xlan => "xlan",
            Backend::XlanXdp => "xlan-xdp",
            Backend::Mixed => "mixed",
            Backend::Limit => "limit",
            Backend::LimitXdp => "limit-xdp",
        }
    }

    fn letter(self) -> char {
        match self {
            Backend::Kernel => 'k',
            Backend::Xlan => 'x',
            Backend::XlanXdp => 'd',
            Backend::Mixed => 'm',
            Backend::Limit => 'l',
            Backend::LimitXdp => 'q',
        }
    }

    pub fn is_limit(self) -> bool {
        matches!(self, Backend::Limit | Backend::LimitXdp)
    }

    /// The limit a backend is held against (the same hook, bare).
    pub fn limit(self) -> Option<Backend> {
        match self {
            Backend::Xlan => Some(Backend::Limit),
            Backend::XlanXdp => Some(Backend::LimitXdp),
            _ => None,
        }
    }
}

/// The virtual LAN a topology is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LanKind {
    MacvlanBridge,
    /// Two VTEP hosts on a veth underlay, one endpoint on each.
    Vxlan,
    /// ipvlan l3; the kernel side is a router namespace.
    IpvlanL3,
}

impl LanKind {
    pub fn name(self) -> &'static str {
        match self {
            LanKind::MacvlanBridge => "macvlan-bridge",
            LanKind::Vxlan => "vxlan",
            LanKind::IpvlanL3 => "ipvlan-l3",
        }
    }

    fn letter(self) -> char {
        match self {
            LanKind::MacvlanBridge => 'm',
            LanKind::Vxlan => 'v',
            LanKind::IpvlanL3 => 'i',
        }
    }

    /// Host namespaces (VTEPs for vxlan) and whether there is an outside node on a wire into the first host.
    fn shape(self) -> (usize, bool) {
        match self {
            LanKind::MacvlanBridge | LanKind::IpvlanL3 => (1, true),
            LanKind::Vxlan => (2, false),
        }
    }

    /// What a backend is on this LAN, for the report.
    pub fn describe(self, backend: Backend) -> &'static str {
        match self {
            LanKind::MacvlanBridge => macvlan::describe(backend),
            LanKind::Vxlan => vxlan::describe(backend),
            LanKind::IpvlanL3 => ipvlan::describe(backend),
        }
    }
}

/// A node's interface as the generator's frames and the round-trip tools address it.
#[derive(Debug, Clone, Copy)]
pub struct Addressing {
    pub node: Node,
    pub mac: [u8; 6],
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
    /// Set when the node reaches the others through a router (ipvlan l3, routing): the MAC its frames go to.
    pub next_hop_mac: Option<[u8; 6]>,
}

impl Addressing {
    /// On one L2 segment, with the node's own conformance addresses.
    pub fn bridged(node: Node, mac: &str) -> Result<Addressing> {
        Ok(Addressing { node, mac: parse_mac(mac)?, ipv4: node.ipv4(), ipv6: node.ipv6(), next_hop_mac: None })
    }

    pub fn addr(&self, family: Family) -> IpAddr {
        match family {
            Family::V4 => self.ipv4.into(),
            Family::V6 => self.ipv6.into(),
        }
    }
}

pub struct BenchTopology {
    pub(super) lan: LanKind,
    pub(super) backend: Backend,
    // Torn down in this order by Drop: programs (their links), xlan's networks, then the namespaces (fields).
    programs: Option<BenchPrograms>,
    pub(super) xlan: Vec<XlanHost>,
    sinks: Vec<UdpSocket>,
    /// Dummy MACs added to xlan's FDB so far (FDB scale).
    fdb_dummies: u32,
    pub(super) nodes: Vec<Addressing>,
    /// Paths whose warm-up ping got no answer.
    silent: Vec<(Node, Node, Family)>,
    /// Interfaces to wait for (namespace, name) before measuring.
    pub(super) links: Vec<(String, String)>,
    pub(super) hosts: Vec<Netns>,
    pub(super) endpoints: Vec<Netns>,
    pub(super) outside: Option<Netns>,
}

impl BenchTopology {
    pub fn build(lan: LanKind, backend: Backend) -> Result<BenchTopology> {
        let prefix = format!("xl{}b{}{}", std::process::id(), lan.letter(), backend.letter());
        let (hosts, with_outside) = lan.shape();
        // All namespaces exist before any step that can fail, so a failure drops a whole topology that cleans up.
        let outside = if with_outside { Some(Netns::create(&format!("{prefix}out"))?) } else { None };
        let hosts = (0..hosts)
            .map(|index| Netns::create(&format!("{prefix}h{}", char::from(b'a' + index as u8))))
            .collect::<Result<Vec<_>>>()?;
        let endpoints = Netns::create_numbered(&prefix, "e", ENDPOINTS)?;
        let mut topology = BenchTopology {
            lan,
            backend,
            programs: None,
            xlan: Vec::new(),
            sinks: Vec::new(),
            fdb_dummies: 0,
            nodes: Vec::new(),
            silent: Vec::new(),
            links: Vec::new(),
            hosts,
            endpoints,
            outside,
        };
        match lan {
            LanKind::MacvlanBridge => macvlan::build(&mut topology)?,
            LanKind::Vxlan => vxlan::build(&mut topology)?,
            LanKind::IpvlanL3 => ipvlan::build(&mut topology)?,
        }
        topology.add_injector()?;
        topology.attach_programs()?;
        topology.sinks = topology.bind_sinks()?;
        topology.wait_until_up()?;
        Ok(topology)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn netns(&self, node: Node) -> &Netns {
        match node {
            Node::Outside => self.outside.as_ref().expect("no scenario uses an outside node its LAN lacks"),
            Node::Host => &self.hosts[0],
            Node::Endpoint(index) => &self.endpoints[usize::from(index) - 1],
        }
    }

    pub fn addressing(&self, node: Node) -> Result<Addressing> {
        self.nodes.iter().find(|a| a.node == node).copied().with_context(|| format!("{node} has no addresses here"))
    }

    pub fn addr(&self, node: Node, family: Family) -> Result<IpAddr> {
        Ok(self.addressing(node)?.addr(family))
    }

    /// The generator's flow from `src` to `dst`: to the destination's MAC on one segment, to the next hop's when
    /// routed.
    pub fn flow(&self, src: Node, dst: Node, family: Family) -> Result<Flow> {
        let (from, to) = (self.addressing(src)?, self.addressing(dst)?);
        Ok(Flow {
            src_mac: from.mac,
            dst_mac: from.next_hop_mac.unwrap_or(to.mac),
            src: from.addr(family),
            dst: to.addr(family),
            src_port: BASE_SOURCE_PORT,
            dst_port: SINK_PORT,
        })
    }

    /// One ping of `family` from `src` to `dst` (best effort): the request and its answer resolve the neighbours and
    /// refresh learned FDB entries (vxlan, bridges) both ways, before a load of raw frames that teaches nothing. A
    /// path that does not answer is not asked again. The limits only forward one way: nothing to do.
    pub fn warm_up(&mut self, src: Node, dst: Node, family: Family) {
        if self.backend.is_limit() || self.silent.contains(&(src, dst, family)) {
            return;
        }
        let Ok(addr) = self.addr(dst, family) else { return };
        if self.netns(src).exec("ping", &["-n", "-q", "-c", "1", "-W", "1", &addr.to_string()]).is_err() {
            self.silent.push((src, dst, family));
        }
    }

    pub fn programs(&mut self) -> &mut BenchPrograms {
        self.programs.as_mut().expect("loaded by build")
    }

    /// Where frames from `node` are generated: on the wire's far end for the outside node, through the injector for
    /// the first endpoint.
    pub fn injection(&self, node: Node) -> Result<Injection> {
        let ifname = match node {
            Node::Outside if self.outside.is_some() => NODE_IFNAME,
            Node::Endpoint(1) => INJECTOR_TX,
            other => bail!("the bench cannot generate traffic from {other}"),
        };
        Ok(Injection { netns: self.netns(node).name().to_string(), ifname: ifname.to_string() })
    }

    /// Fills xlan's FDB on the first host with dummy MACs until it holds `entries` (the real ones included).
    /// Straight into the pinned map: going through `xlan` a million times would measure the CLI, not the lookups.
    pub fn fill_fdb(&mut self, entries: u32) -> Result<()> {
        if self.xlan.is_empty() {
            bail!("only xlan has an FDB to fill");
        }
        let mut fdb = self.fdb_map()?;
        let real: Vec<MacKey> = fdb.keys().collect::<Result<_, _>>()?;
        let real = real.into_iter().filter(|key| !is_dummy(key.mac)).collect::<Vec<_>>();
        let first = *real.first().context("xlan's FDB has no endpoint")?;
        // Dummies point where the first real entry points (many MACs behind one port or VTEP); none is looked up.
        let entry = fdb.get(&first, 0)?;
        let wanted = entries.saturating_sub(real.len() as u32);
        if wanted < self.fdb_dummies {
            bail!("the FDB already holds more than {entries} entries");
        }
        for n in self.fdb_dummies..wanted {
            fdb.insert(MacKey::new(first.network_id, dummy_mac(n)), entry, 0)
                .with_context(|| format!("adding dummy FDB entry {n}"))?;
            self.fdb_dummies = n + 1;
        }
        Ok(())
    }

    /// Removes the dummy entries `fill_fdb` added (the next scenario fills again).
    fn clear_fdb(&mut self) -> Result<()> {
        let mut fdb = self.fdb_map()?;
        let dummies: Vec<MacKey> = fdb.keys().filter_map(|key| key.ok()).filter(|key| is_dummy(key.mac)).collect();
        for key in dummies {
            fdb.remove(&key).context("removing a dummy FDB entry")?;
        }
        self.fdb_dummies = 0;
        Ok(())
    }

    /// The instance's FDB (all its networks'), from its pin.
    fn fdb_map(&self) -> Result<BpfHashMap<MapData, MacKey, FdbEntry>> {
        self.pinned_hash(map_names::FDB)
    }

    /// One of the first host's instance's pinned hash maps.
    fn pinned_hash<K: aya::Pod, V: aya::Pod>(&self, name: &str) -> Result<BpfHashMap<MapData, K, V>> {
        Ok(BpfHashMap::try_from(Map::HashMap(crate::xlan::pinned_map(&self.hosts[0], name)?))?)
    }

    /// How long `xlan network delete` takes for a VXLAN network holding `entries` learned FDB entries: a second
    /// network on the first host (the FDB is the instance's, so the scenario's own dummies are removed first), filled
    /// with entries as learning leaves them (a remote VTEP, a time stamp), then deleted.
    pub(super) fn time_network_delete(&mut self, entries: u32) -> Result<std::time::Duration> {
        const NAME: &str = "deleted";
        const VNI: u32 = 4242;
        self.clear_fdb()?;
        let xlan = self.xlan.first().context("only xlan deletes networks here")?;
        let vni = VNI.to_string();
        xlan.run(&["network", "create", NAME, "--driver", "vxlan", "--parent", vxlan::UNDERLAY, "--vni", &vni])?;
        let filled = (|| -> Result<()> {
            let networks: BpfHashMap<MapData, u32, NetworkConfig> = self.pinned_hash(map_names::NETWORKS)?;
            let network_id = networks
                .iter()
                .filter_map(|entry| entry.ok())
                .find(|(_, config)| config.kind == NetworkKind::VXLAN && config.vni == VNI)
                .map(|(id, _)| id)
                .context("the new network is not in XLAN_NETWORK_CONFIGS")?;
            let mut fdb = self.fdb_map()?;
            let learned =
                FdbEntry { remote_ip: u32::from_ne_bytes([10, 99, 0, 200]), last_seen_ns: 1, ..FdbEntry::default() };
            for n in 0..entries {
                fdb.insert(MacKey::new(network_id, dummy_mac(n)), learned, 0)
                    .with_context(|| format!("adding learned FDB entry {n}"))?;
            }
            Ok(())
        })();
        let start = std::time::Instant::now();
        let deleted = xlan.run(&["network", "delete", NAME]);
        let took = start.elapsed();
        filled?;
        deleted?;
        Ok(took)
    }

    pub(super) fn host(&self, index: usize) -> &Netns {
        &self.hosts[index]
    }

    pub(super) fn endpoint(&self, index: u8) -> &Netns {
        self.netns(Node::Endpoint(index))
    }

    pub(super) fn outside(&self) -> &Netns {
        self.netns(Node::Outside)
    }

    fn add_injector(&mut self) -> Result<()> {
        let e1 = self.endpoint(1);
        link::add_veth_pair(e1, INJECTOR_TX, INJECTOR_RX)?;
        let name = e1.name().to_string();
        self.links.push((name, INJECTOR_RX.to_string()));
        Ok(())
    }

    fn attach_programs(&mut self) -> Result<()> {
        let mut programs = BenchPrograms::load(self.hosts[0].name())?;
        let e1 = self.endpoint(1).name().to_string();
        let mut config = BenchConfig {
            flows: 1,
            base_port: u32::from(BASE_SOURCE_PORT),
            inject_ifindex: ifindex_in(&e1, NODE_IFNAME)?,
            ..BenchConfig::default()
        };
        // The generator's XDP_TX into gen0 reaches gen1 only if gen1 runs NAPI, which an XDP program gives it.
        programs.attach_xdp(&e1, INJECTOR_RX, program_names::XDP_PASS)?;
        programs.attach_tc_ingress(&e1, INJECTOR_RX, bench_programs::INJECTOR)?;
        for index in 1..=ENDPOINTS {
            programs.attach_tc_ingress(self.endpoint(index).name(), NODE_IFNAME, bench_programs::COUNTER)?;
        }
        if self.backend.is_limit() {
            match self.lan {
                LanKind::MacvlanBridge | LanKind::IpvlanL3 => {
                    attach_wire_limit(self, &mut programs, &mut config, self.backend)?
                }
                LanKind::Vxlan => vxlan::attach_limit(self, &mut programs, &mut config)?,
            }
        }
        programs.set_config(config)?;
        self.programs = Some(programs);
        Ok(())
    }

    /// A UDP socket on SINK_PORT (IPv4 and IPv6) in every endpoint: the generator's datagrams end in its queue, or
    /// are dropped there once it is full, both counted by the endpoint's UDP statistics.
    fn bind_sinks(&self) -> Result<Vec<UdpSocket>> {
        (1..=ENDPOINTS)
            .map(|index| {
                let netns = self.endpoint(index);
                netns
                    .run(|| UdpSocket::bind((Ipv6Addr::UNSPECIFIED, SINK_PORT)))?
                    .with_context(|| format!("binding the UDP sink in {}", netns.name()))
            })
            .collect()
    }

    fn wait_until_up(&self) -> Result<()> {
        let all = self.outside.iter().chain(&self.hosts).chain(&self.endpoints);
        for netns in all {
            for (_, ifname) in self.links.iter().filter(|(name, _)| name == netns.name()) {
                link::wait_up(netns, ifname)?;
            }
        }
        Ok(())
    }
}

impl Drop for BenchTopology {
    fn drop(&mut self) {
        drop(self.programs.take());
        while let Some(xlan) = self.xlan.pop() {
            drop(xlan);
        }
        // The program load pinned the datapath's maps under the first host's instance directory.
        remove_leftover_state(self.hosts[0].name());
    }
}

/// The limits of the LANs with a wire into one host (macvlan, ipvlan): on the parent, every frame into e1 — a bare
/// tcx `bpf_redirect_peer` (tc hook) or a bare XDP redirect into its host-side veth (xdp hook, which also needs
/// XDP stubs on the endpoints, as xlan's xdp hook has); on e1's host-side veth, every frame straight into e2 (tc
/// hook) or back out of the parent (xdp hook, whose limit serves outside → endpoint only, TCP included).
fn attach_wire_limit(
    topology: &BenchTopology,
    programs: &mut BenchPrograms,
    config: &mut BenchConfig,
    backend: Backend,
) -> Result<()> {
    let host = topology.host(0).name();
    config.limit_wire_ifindex = ifindex_in(host, &host_port(1))?;
    config.limit_tc_ifindex = ifindex_in(host, &host_port(2))?;
    for index in 1..=ENDPOINTS {
        endpoint_veth_like_xlans(topology, 0, index, backend == Backend::LimitXdp)?;
    }
    if backend == Backend::LimitXdp {
        // The xdp limit is measured outside → endpoint only, so e1's answers may go back out of the parent (a bare
        // tcx redirect): TCP runs through it, the limit of the xdp hook's TCP on this wire.
        config.limit_egress_ifindex = ifindex_in(host, PARENT)?;
        programs.attach_tc_ingress(host, &host_port(1), bench_programs::LIMIT_EGRESS)?;
    } else {
        programs.attach_tc_ingress(host, &host_port(1), bench_programs::LIMIT_TC)?;
    }
    if backend == Backend::LimitXdp {
        programs.attach_xdp(host, PARENT, bench_programs::LIMIT_XDP)?;
        for index in 1..=ENDPOINTS {
            programs.attach_xdp(topology.endpoint(index).name(), NODE_IFNAME, program_names::XDP_PASS)?;
        }
    } else {
        programs.attach_tc_ingress(host, PARENT, bench_programs::LIMIT_WIRE_TC)?;
    }
    Ok(())
}

/// Sets the limit's endpoint veth as xlan sets its own (`driver::port::queue_copies_per_endpoint`): TSO off on the
/// host side, GRO on at the endpoint's end, and two transmit queues on the host side for the tc hook (the copies'
/// two ways in; one with the xdp hook, whose XDP stub on the endpoint's end needs as many receive queues). What xlan
/// redirects in XDP into an endpoint goes through that GRO (about 45 ns per 64-byte UDP frame by `perf`, and what
/// merges TCP segments again); a limit without it would measure the veth's configuration, not the datapath's
/// lookups.
pub(super) fn endpoint_veth_like_xlans(topology: &BenchTopology, host: usize, index: u8, xdp_hook: bool) -> Result<()> {
    veth_like_xlans(topology.host(host), &host_port(index), topology.endpoint(index), NODE_IFNAME, xdp_hook)
}

/// The same for any endpoint veth: `port` in `host`, its peer `ifname` in `endpoint`.
pub(super) fn veth_like_xlans(host: &Netns, port: &str, endpoint: &Netns, ifname: &str, xdp_hook: bool) -> Result<()> {
    let hook = if xdp_hook { ParentHook::Xdp } else { ParentHook::Tc };
    let port = port.to_owned();
    host.run(move || driver_port::set_host_end(&port, hook))??;
    let ifname = ifname.to_owned();
    endpoint.run(move || driver_port::set_endpoint_end(&ifname))??;
    Ok(())
}

/// The host-side veth of endpoint `index` where the bench makes it (the kernel's bridges and routers, the limits):
/// "p1" for e1.
pub(super) fn host_port(index: u8) -> String {
    format!("p{index}")
}

/// A veth from `host` (named `port`) to `NODE_IFNAME` in endpoint `index`'s namespace; the host end up.
pub(super) fn add_endpoint_veth(topology: &mut BenchTopology, host: usize, index: u8) -> Result<()> {
    let port = host_port(index);
    let (host_ns, endpoint_ns) = (topology.host(host), topology.endpoint(index));
    link::add_veth(host_ns, &port, NODE_IFNAME, endpoint_ns)?;
    link::up(host_ns, &port)?;
    let host_name = host_ns.name().to_string();
    topology.links.push((host_name, port));
    Ok(())
}

/// The wire of the LANs with one host (macvlan, ipvlan), no switch in between: `out` (eth0) ══ veth ══ host
/// (uplink), with the conformance nodes' MACs and addresses. Offloads: tx checksum off on `out` (as on a wire: a
/// veth would otherwise hand on unfinished checksums, which the xdp hook cannot take), `uplink` NIC-like.
pub(super) fn wire_into_host(topology: &mut BenchTopology) -> Result<()> {
    let (outside, host) = (topology.outside(), topology.host(0));
    link::add_veth(outside, NODE_IFNAME, PARENT, host)?;
    link::configure(outside, NODE_IFNAME, Some(&Node::Outside.mac()), &Node::Outside.cidrs())?;
    link::tx_checksum_offload_off(outside, NODE_IFNAME)?;
    link::configure(host, PARENT, Some(&Node::Host.mac()), &Node::Host.cidrs())?;
    link::nic_like(host, PARENT)?;
    let (outside, host) = (outside.name().to_string(), host.name().to_string());
    topology.links.push((outside, NODE_IFNAME.to_string()));
    topology.links.push((host, PARENT.to_string()));
    Ok(())
}

/// `xlan --netns HOST network create NETWORK args...` on host `host`; the network is deleted when the topology is.
pub(super) fn create_xlan_network<'a>(
    topology: &'a mut BenchTopology,
    host: usize,
    args: &[&str],
) -> Result<&'a XlanHost> {
    let mut xlan = XlanHost::new(topology.host(host))?;
    xlan.create_network(crate::topology::NETWORK, args)?;
    topology.xlan.push(xlan);
    Ok(topology.xlan.last().expect("pushed above"))
}

/// Dummy FDB MACs: locally administered, 02:fd:..., numbered.
fn dummy_mac(n: u32) -> [u8; 6] {
    let [a, b, c, d] = n.to_be_bytes();
    [0x02, 0xfd, a, b, c, d]
}

fn is_dummy(mac: [u8; 6]) -> bool {
    mac[..2] == [0x02, 0xfd]
}
