//! The bench topology, built once per backend from namespaces and veths:
//!
//! ```text
//!   out (eth0) ══ veth ══ host (uplink)        the wire: no switch in between, the generator in `out` is the far end
//!                           ├─ e1 (eth0)        kernel: macvlan bridge on uplink; xlan: an xlan endpoint;
//!                           └─ e2 (eth0)        limit: a veth pair per endpoint, like xlan's, with bare redirects
//!   e1: gen0 ══ veth ══ gen1                    the injector: frames generated on gen0 leave e1 through eth0
//! ```
//!
//! Everything that is not the backend is identical in the three: addresses and MACs (those of the conformance
//! topology's nodes), offloads (tx checksum off on `out` as on a wire; GRO on `uplink`, which gives it NAPI like a
//! NIC so it can take the generator's XDP frames), the delivery counter on each endpoint's eth0, a bound UDP socket
//! behind it, and the injector. Names are `xl<pid>b<backend letter>...`, so the harness's sweep recognises them.

use std::net::{Ipv6Addr, UdpSocket};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aya::maps::{HashMap as BpfHashMap, Map, MapData};
use datapath_common::bench::{program_names as bench_programs, BenchConfig};
use datapath_common::{map_names, program_names, FdbEntry, MacKey};

use super::generator::{ifindex, Injection};
use super::programs::{enter, BenchPrograms};
use crate::netns::Netns;
use crate::topology::{Node, NETWORK, NODE_IFNAME, PARENT};
use crate::xlan::{remove_leftover_state, XlanHost};

/// The UDP port the generator sends to, bound in every endpoint so datagrams reach a socket (not an ICMP error).
pub const SINK_PORT: u16 = 9000;
/// The generator's flows use UDP source ports from here on.
pub const BASE_SOURCE_PORT: u16 = 40000;
const ENDPOINTS: u8 = 2;
const INJECTOR_TX: &str = "gen0";
const INJECTOR_RX: &str = "gen1";
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(5);

/// Who forwards between the wire and the endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    /// The kernel's driver, what users would use instead.
    Kernel,
    Xlan,
    /// Bare redirects on the same kind of veths xlan uses: what no datapath built on them can beat.
    Limit,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Kernel, Backend::Xlan, Backend::Limit];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Kernel => "kernel",
            Backend::Xlan => "xlan",
            Backend::Limit => "limit",
        }
    }

    fn letter(self) -> char {
        self.name().chars().next().expect("non-empty name")
    }
}

/// The virtual LAN a topology is made of. vxlan and ipvlan add theirs here (and a way to build each backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LanKind {
    MacvlanBridge,
}

impl LanKind {
    pub fn name(self) -> &'static str {
        match self {
            LanKind::MacvlanBridge => "macvlan-bridge",
        }
    }
}

pub struct BenchTopology {
    backend: Backend,
    // Torn down in this order by Drop: programs (their links), xlan's network, then the namespaces (fields).
    programs: Option<BenchPrograms>,
    xlan: Option<XlanHost>,
    _sinks: Vec<UdpSocket>,
    /// Dummy MACs added to xlan's FDB so far (FDB scale).
    fdb_dummies: u32,
    endpoints: Vec<Netns>,
    host: Netns,
    outside: Netns,
}

impl BenchTopology {
    pub fn build(kind: LanKind, backend: Backend) -> Result<BenchTopology> {
        let LanKind::MacvlanBridge = kind;
        let prefix = format!("xl{}b{}", std::process::id(), backend.letter());
        // All namespaces exist before any step that can fail, so a failure drops a whole topology that cleans up.
        let outside = Netns::create(&format!("{prefix}out"))?;
        let host = Netns::create(&format!("{prefix}h"))?;
        let endpoints = (1..=ENDPOINTS)
            .map(|index| Netns::create(&format!("{prefix}e{index}")))
            .collect::<Result<Vec<_>>>()?;
        let mut topology = BenchTopology {
            backend,
            programs: None,
            xlan: None,
            _sinks: Vec::new(),
            fdb_dummies: 0,
            endpoints,
            host,
            outside,
        };
        topology.wire()?;
        match backend {
            Backend::Kernel => topology.add_macvlan_endpoints()?,
            Backend::Xlan => topology.add_xlan_endpoints()?,
            Backend::Limit => topology.add_veth_endpoints()?,
        }
        topology.add_injector()?;
        topology.attach_programs()?;
        topology._sinks = topology.bind_sinks()?;
        topology.wait_until_up()?;
        Ok(topology)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn netns(&self, node: Node) -> &Netns {
        match node {
            Node::Outside => &self.outside,
            Node::Host => &self.host,
            Node::Endpoint(index) => &self.endpoints[usize::from(index) - 1],
        }
    }

    pub fn programs(&mut self) -> &mut BenchPrograms {
        self.programs.as_mut().expect("loaded by build")
    }

    /// Where frames from `node` are generated: on the wire's far end for the outside node, through the injector for
    /// the first endpoint.
    pub fn injection(&self, node: Node) -> Result<Injection> {
        let ifname = match node {
            Node::Outside => NODE_IFNAME,
            Node::Endpoint(1) => INJECTOR_TX,
            other => bail!("the bench cannot generate traffic from {other}"),
        };
        Ok(Injection { netns: self.netns(node).name().to_string(), ifname: ifname.to_string() })
    }

    /// Fills xlan's FDB with dummy MACs of the network until it holds `entries` (the endpoints' own included).
    /// Straight into the pinned map: going through `xlan` a million times would measure the CLI, not the lookups.
    pub fn fill_fdb(&mut self, entries: u32) -> Result<()> {
        if self.backend != Backend::Xlan {
            bail!("only xlan has an FDB to fill");
        }
        let pin = xlan_lib::pins::PinDir::for_instance(self.host.name()).map(map_names::FDB);
        let data = MapData::from_pin(&pin).with_context(|| format!("opening {}", pin.display()))?;
        let mut fdb: BpfHashMap<MapData, MacKey, FdbEntry> = BpfHashMap::try_from(Map::HashMap(data))?;
        let real: Vec<MacKey> = fdb.keys().collect::<Result<_, _>>()?;
        let real = real.into_iter().filter(|key| !is_dummy(key.mac)).collect::<Vec<_>>();
        let first = *real.first().context("xlan's FDB has no endpoint")?;
        // Dummies point where the first endpoint's MAC points (many MACs behind one port); none is ever looked up.
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

    /// The wire between the outside node and the host, addressed like the conformance topology.
    fn wire(&self) -> Result<()> {
        self.outside.ip(&["link", "add", NODE_IFNAME, "type", "veth", "peer", "name", PARENT, "netns", self.host.name()])?;
        self.configure(Node::Outside, NODE_IFNAME)?;
        self.outside.exec("ethtool", &["-K", NODE_IFNAME, "tx", "off"])?;
        self.configure(Node::Host, PARENT)?;
        self.host.exec("ethtool", &["-K", PARENT, "gro", "on"])?;
        Ok(())
    }

    fn endpoint_nodes(&self) -> impl Iterator<Item = Node> {
        (1..=ENDPOINTS).map(Node::Endpoint)
    }

    fn add_macvlan_endpoints(&self) -> Result<()> {
        for node in self.endpoint_nodes() {
            let netns = self.netns(node).name();
            self.host.ip(&["link", "add", NODE_IFNAME, "link", PARENT, "netns", netns, "type", "macvlan", "mode", "bridge"])?;
            self.configure(node, NODE_IFNAME)?;
        }
        Ok(())
    }

    fn add_xlan_endpoints(&mut self) -> Result<()> {
        let xlan = self.xlan.insert(XlanHost::new(&self.host)?);
        xlan.create_network(NETWORK, PARENT, "bridge", &[])?;
        for index in 1..=ENDPOINTS {
            let (node, netns) = (Node::Endpoint(index), self.endpoints[usize::from(index) - 1].name());
            let (mac, v4, v6) = (node.mac(), format!("{}/24", node.ipv4()), format!("{}/64", node.ipv6()));
            let args = ["endpoint", "add", NETWORK, "--netns", netns, "--mac", &mac, "--ip", &v4, "--ip", &v6];
            xlan.run(&args)?;
        }
        Ok(())
    }

    /// The limit's endpoints: host-side `pN` and the endpoint's eth0, as xlan makes them.
    fn add_veth_endpoints(&self) -> Result<()> {
        for node in self.endpoint_nodes() {
            let port = host_port(node);
            self.host.ip(&["link", "add", &port, "type", "veth", "peer", "name", NODE_IFNAME, "netns", self.netns(node).name()])?;
            self.host.ip(&["link", "set", &port, "up"])?;
            self.configure(node, NODE_IFNAME)?;
        }
        Ok(())
    }

    fn add_injector(&self) -> Result<()> {
        let e1 = self.netns(Node::Endpoint(1));
        e1.ip(&["link", "add", INJECTOR_TX, "type", "veth", "peer", "name", INJECTOR_RX])?;
        for ifname in [INJECTOR_TX, INJECTOR_RX] {
            e1.ip(&["link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    fn attach_programs(&mut self) -> Result<()> {
        let mut programs = BenchPrograms::load(self.host.name())?;
        let e1 = self.netns(Node::Endpoint(1)).name().to_string();
        let mut config = BenchConfig {
            flows: 1,
            base_port: u32::from(BASE_SOURCE_PORT),
            inject_ifindex: ifindex_in(&e1, NODE_IFNAME)?,
            ..BenchConfig::default()
        };
        // The generator's XDP_TX into gen0 reaches gen1 only if gen1 runs NAPI, which an XDP program gives it.
        programs.attach_xdp(&e1, INJECTOR_RX, program_names::XDP_PASS)?;
        programs.attach_tc_ingress(&e1, INJECTOR_RX, bench_programs::INJECTOR)?;
        for node in self.endpoint_nodes() {
            programs.attach_tc_ingress(self.netns(node).name(), NODE_IFNAME, bench_programs::COUNTER)?;
        }
        if self.backend == Backend::Limit {
            let host = self.host.name();
            config.limit_xdp_ifindex = ifindex_in(host, &host_port(Node::Endpoint(1)))?;
            config.limit_tc_ifindex = ifindex_in(host, &host_port(Node::Endpoint(2)))?;
            programs.attach_xdp(host, PARENT, bench_programs::LIMIT_XDP)?;
            programs.attach_tc_ingress(host, &host_port(Node::Endpoint(1)), bench_programs::LIMIT_TC)?;
            // As for xlan's endpoints: a native XDP redirect into a veth needs a program on its peer.
            for node in self.endpoint_nodes() {
                programs.attach_xdp(self.netns(node).name(), NODE_IFNAME, program_names::XDP_PASS)?;
            }
        }
        programs.set_config(config)?;
        self.programs = Some(programs);
        Ok(())
    }

    /// A UDP socket on SINK_PORT (IPv4 and IPv6) in every endpoint: the generator's datagrams end in its queue, or
    /// are dropped there once it is full, both counted by the endpoint's UDP statistics.
    fn bind_sinks(&self) -> Result<Vec<UdpSocket>> {
        self.endpoint_nodes()
            .map(|node| {
                let netns = self.netns(node);
                netns
                    .run(|| UdpSocket::bind((Ipv6Addr::UNSPECIFIED, SINK_PORT)))?
                    .with_context(|| format!("binding the UDP sink in {}", netns.name()))
            })
            .collect()
    }

    /// Sets the node's MAC and addresses on `ifname` and brings it up.
    fn configure(&self, node: Node, ifname: &str) -> Result<()> {
        let netns = self.netns(node);
        netns.ip(&["link", "set", ifname, "address", &node.mac()])?;
        netns.ip(&["addr", "add", &format!("{}/24", node.ipv4()), "dev", ifname])?;
        // nodad: usable at once, so the first measurement does not race duplicate address detection.
        netns.ip(&["addr", "add", &format!("{}/64", node.ipv6()), "dev", ifname, "nodad"])?;
        netns.ip(&["link", "set", ifname, "up"])?;
        Ok(())
    }

    fn wait_until_up(&self) -> Result<()> {
        self.outside.wait_link_up(NODE_IFNAME, LINK_UP_TIMEOUT)?;
        self.host.wait_link_up(PARENT, LINK_UP_TIMEOUT)?;
        for node in self.endpoint_nodes() {
            self.netns(node).wait_link_up(NODE_IFNAME, LINK_UP_TIMEOUT)?;
        }
        self.netns(Node::Endpoint(1)).wait_link_up(INJECTOR_RX, LINK_UP_TIMEOUT)
    }
}

impl Drop for BenchTopology {
    fn drop(&mut self) {
        drop(self.programs.take());
        drop(self.xlan.take());
        // The program load pinned the datapath's maps under the host's instance directory.
        remove_leftover_state(self.host.name());
    }
}

/// The limit's host-side veth of an endpoint ("p1" for e1).
fn host_port(node: Node) -> String {
    format!("p{}", node.to_string().trim_start_matches('e'))
}

fn ifindex_in(netns: &str, ifname: &str) -> Result<u32> {
    let _inside = enter(netns)?;
    ifindex(ifname).with_context(|| format!("in {netns}"))
}

/// Dummy FDB MACs: locally administered, 02:fd:..., numbered.
fn dummy_mac(n: u32) -> [u8; 6] {
    let [a, b, c, d] = n.to_be_bytes();
    [0x02, 0xfd, a, b, c, d]
}

fn is_dummy(mac: [u8; 6]) -> bool {
    mac[..2] == [0x02, 0xfd]
}
