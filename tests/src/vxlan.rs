//! The VXLAN test lab: VTEP hosts on one underlay segment, each implementing its VXLAN networks with xlan or with the
//! kernel's vxlan driver, and endpoints (one namespace each) on those networks.
//!
//! ```text
//!   host A (ul 10.99.0.1) ─ to-a ─┐
//!   host B (ul 10.99.0.2) ─ to-b ─┤ br0   (switch namespace: a Linux bridge standing in for the underlay LAN)
//!   host C (ul 10.99.0.3) ─ to-c ─┘
//!
//!   xlan host:   xlan network create NET --driver vxlan --vni VNI --parent ul ...; endpoints by `xlan endpoint add`
//!   kernel host: vx<VNI> (type vxlan ... dev ul) and a veth to each endpoint, both ports of bridge br<VNI>
//! ```
//!
//! Endpoints are matrix [`Node`]s (`Node::Endpoint(i)`), with the node's addresses (10.77.0.1i/24, fd77::1i/64), so
//! the probes and the reachability matrix of the macvlan tests work on a VXLAN network unchanged ([`NetworkView`]).
//! Two networks may use the same nodes (same addresses): that is how the isolation test makes a leak observable.

use std::fmt;
use std::net::Ipv4Addr;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::counters::EndpointCounters;
use crate::link::{self, Snooping};
use crate::matrix::Probed;
use crate::netns::{unique_prefix, Netns};
use crate::topology::Node;
use crate::xlan::XlanHost;

/// Every host's underlay interface, the xlan networks' parent.
pub const UNDERLAY: &str = "ul";
/// The endpoints' interface name inside their namespaces.
pub const ENDPOINT_IFNAME: &str = "eth0";
/// IANA's VXLAN port, xlan's default; the kernel side is given it explicitly (its own default is 8472).
pub const DSTPORT: u16 = 4789;
/// Outer Ethernet (14) + IPv4 (20) + UDP (8) + VXLAN (8): the endpoints' MTU is the underlay's less this.
pub const VXLAN_OVERHEAD: u32 = 50;
/// The underlay's MTU (a veth's default).
pub const UNDERLAY_MTU: u32 = 1500;
const SWITCH_BRIDGE: &str = "br0";

/// Who implements a host's VXLAN networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vtep {
    Xlan,
    Kernel,
}

impl fmt::Display for Vtep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Vtep::Xlan => "xlan",
            Vtep::Kernel => "kernel",
        })
    }
}

/// How broadcast and unknown unicast reach the other VTEPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    /// Head-end replication to every other host of the lab (`--remote` each / `remote` + `bridge fdb append`).
    Remotes,
    /// One copy to a multicast group (`--group G` / `group G dev ul`).
    Group(Ipv4Addr),
}

/// A VXLAN network as every host of the lab gets it.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    pub name: String,
    pub vni: u32,
    pub flood: Flood,
    pub learning: bool,
    /// Seconds; None: the default (300, xlan's and the kernel's).
    pub ageing: Option<u32>,
    /// xlan hosts: where the parent's frames are first handled (`--parent-hook tc|xdp`); None: xlan's default (tc
    /// on a veth parent, as here; xdp on a NIC). Every network on a parent must agree.
    pub parent_hook: Option<&'static str>,
}

impl NetworkSpec {
    /// Head-end replication to every other host, learning on, default ageing.
    pub fn new(name: &str, vni: u32) -> NetworkSpec {
        NetworkSpec {
            name: name.to_string(),
            vni,
            flood: Flood::Remotes,
            learning: true,
            ageing: None,
            parent_hook: None,
        }
    }

    pub fn parent_hook(mut self, hook: Option<&'static str>) -> NetworkSpec {
        self.parent_hook = hook;
        self
    }

    pub fn group(mut self, group: Ipv4Addr) -> NetworkSpec {
        self.flood = Flood::Group(group);
        self
    }

    pub fn no_learning(mut self) -> NetworkSpec {
        self.learning = false;
        self
    }

    pub fn ageing(mut self, secs: u32) -> NetworkSpec {
        self.ageing = Some(secs);
        self
    }

    /// The kernel's vxlan device for this network on a kernel host (and its bridge, `br<VNI>`).
    fn kernel_device(&self) -> String {
        format!("vx{}", self.vni)
    }

    fn kernel_bridge(&self) -> String {
        format!("br{}", self.vni)
    }
}

/// An endpoint to add: a matrix node (its addresses), the MAC, and whether it speaks IPv6.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    pub node: Node,
    pub mac: String,
    /// false: IPv4 only, with IPv6 disabled in the endpoint's namespace, so that the endpoint sends nothing on its
    /// own (no router solicitations, MLD reports or neighbour discovery): what tests that count packets or wait for
    /// silence need.
    pub ipv6: bool,
}

impl EndpointSpec {
    /// The node's own MAC (02:77:00:00:00:1i), IPv4 and IPv6.
    pub fn new(node: Node) -> EndpointSpec {
        EndpointSpec { mac: node.mac(), node, ipv6: true }
    }

    pub fn mac(mut self, mac: &str) -> EndpointSpec {
        self.mac = mac.to_string();
        self
    }

    pub fn ipv4_only(mut self) -> EndpointSpec {
        self.ipv6 = false;
        self
    }

    fn addresses(&self) -> Vec<String> {
        let [v4, v6] = self.node.cidrs();
        if self.ipv6 {
            vec![v4, v6]
        } else {
            vec![v4]
        }
    }
}

/// An endpoint of the lab: in `network`, behind host `host`.
#[derive(Debug)]
pub struct Endpoint {
    pub spec: EndpointSpec,
    pub host: usize,
    pub network: String,
    /// The host-side port on a kernel host (`vp<n>`); xlan names its own.
    kernel_port: Option<String>,
    netns: Netns,
}

impl Endpoint {
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    pub fn node(&self) -> Node {
        self.spec.node
    }

    pub fn mac(&self) -> &str {
        &self.spec.mac
    }

    /// The endpoint interface's own statistics (`ip -s link`), whoever implements the network.
    pub fn interface_counters(&self) -> Result<EndpointCounters> {
        EndpointCounters::of_interface(&self.netns, ENDPOINT_IFNAME)
    }
}

struct Host {
    vtep: Vtep,
    netns: Netns,
}

/// One row of `xlan fdb show --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbRow {
    pub network: String,
    pub mac: String,
    pub dst: Option<Ipv4Addr>,
    pub endpoint: Option<String>,
    /// "static" or "learned".
    pub state: String,
    pub age: Option<u64>,
}

impl FdbRow {
    fn from_json(row: &Value) -> Result<FdbRow> {
        let text = |key: &str| -> Result<String> {
            row[key].as_str().map(str::to_string).with_context(|| format!("fdb row without \"{key}\": {row}"))
        };
        let dst = match &row["dst"] {
            Value::Null => None,
            Value::String(ip) => Some(ip.parse().with_context(|| format!("fdb row with a bad \"dst\": {row}"))?),
            other => bail!("fdb row \"dst\" is not a string: {other}"),
        };
        Ok(FdbRow {
            network: text("network")?,
            mac: text("mac")?,
            dst,
            endpoint: row["endpoint"].as_str().map(str::to_string),
            state: text("state")?,
            age: row["age"].as_u64(),
        })
    }

    pub fn is_learned(&self) -> bool {
        self.state == "learned"
    }
}

pub struct VxlanLab {
    // Fields drop in declaration order: xlan deletes its networks (and so its endpoints' veths) while every namespace
    // still exists; then the endpoint namespaces, the hosts (taking the kernel's devices along) and the switch go.
    /// Per host: xlan, on an xlan host.
    xlan: Vec<Option<XlanHost>>,
    endpoints: Vec<Endpoint>,
    hosts: Vec<Host>,
    switch: Netns,
    prefix: String,
    networks: Vec<NetworkSpec>,
    /// Numbers endpoint namespaces and kernel ports; never reused, also after a removal.
    created_endpoints: usize,
}

impl VxlanLab {
    /// The switch and one host per element of `vteps` (A, B, C, ...), each with its underlay interface addressed,
    /// up, and with tx checksum offload off; no VXLAN network yet.
    pub fn build(vteps: &[Vtep]) -> Result<VxlanLab> {
        let prefix = unique_prefix();
        // All namespaces exist before any configuration step, so that a failing step drops a complete lab whose
        // guards clean up everything.
        let switch = Netns::create(&format!("{prefix}sw"))?;
        let hosts = vteps
            .iter()
            .enumerate()
            .map(|(index, &vtep)| {
                let netns = Netns::create(&format!("{prefix}h{}", host_letter(index)))?;
                Ok(Host { vtep, netns })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut lab = VxlanLab {
            xlan: Vec::new(),
            endpoints: Vec::new(),
            hosts,
            switch,
            prefix,
            networks: Vec::new(),
            created_endpoints: 0,
        };
        if vteps.contains(&Vtep::Xlan) {
            crate::xlan::binary()?; // fails at once, with the reason, when there is no xlan binary
        }
        link::add_bridge(&lab.switch, SWITCH_BRIDGE, Snooping::Off)?;
        for (index, host) in lab.hosts.iter().enumerate() {
            link::add_bridge_port(&lab.switch, SWITCH_BRIDGE, &switch_port(index), UNDERLAY, &host.netns)?;
            link::configure(&host.netns, UNDERLAY, None, &[format!("{}/24", underlay_ip(index))])?;
            // A veth underlay carries the senders' CHECKSUM_PARTIAL skbs, which an XDP redirect on the receiving
            // xlan host drops (the inner L4 checksums then arrive wrong); a real NIC always finishes the checksum.
            // So every host, xlan or kernel, checksums in software on its underlay.
            link::tx_checksum_offload_off(&host.netns, UNDERLAY)?;
        }
        link::up(&lab.switch, SWITCH_BRIDGE)?;
        link::wait_up(&lab.switch, SWITCH_BRIDGE)?;
        for (index, host) in lab.hosts.iter().enumerate() {
            link::wait_up(&lab.switch, &switch_port(index))?;
            link::wait_up(&host.netns, UNDERLAY)?;
        }
        lab.xlan = lab
            .hosts
            .iter()
            .map(|host| match host.vtep {
                Vtep::Xlan => Ok(Some(XlanHost::new(&host.netns)?)),
                Vtep::Kernel => Ok(None),
            })
            .collect::<Result<_>>()?;
        Ok(lab)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    pub fn host_netns(&self, host: usize) -> &Netns {
        &self.hosts[host].netns
    }

    pub fn vtep(&self, host: usize) -> Vtep {
        self.hosts[host].vtep
    }

    /// The xlan handle of an xlan host.
    pub fn xlan(&self, host: usize) -> Result<&XlanHost> {
        match &self.xlan[host] {
            Some(xlan) => Ok(xlan),
            None => bail!("host {} is a kernel VTEP", host_letter(host)),
        }
    }

    /// The network on every host.
    pub fn add_network(&mut self, spec: NetworkSpec) -> Result<()> {
        let all: Vec<usize> = (0..self.hosts.len()).collect();
        self.add_network_on(&all, spec)
    }

    /// The network on the given hosts only; another call can add it to the others later (with the same spec).
    pub fn add_network_on(&mut self, hosts: &[usize], spec: NetworkSpec) -> Result<()> {
        if !self.networks.iter().any(|known| known.name == spec.name) {
            self.networks.push(spec.clone());
        }
        for &host in hosts {
            match self.hosts[host].vtep {
                Vtep::Xlan => self.add_xlan_network(host, &spec)?,
                Vtep::Kernel => self.add_kernel_network(host, &spec)?,
            }
        }
        Ok(())
    }

    /// Takes a host's underlay interface down or up (waiting for its carrier when up): a host that is off the wire.
    pub fn set_underlay(&self, host: usize, up: bool) -> Result<()> {
        let netns = &self.hosts[host].netns;
        link::set(netns, UNDERLAY, &[if up { "up" } else { "down" }])?;
        if up {
            link::wait_up(netns, UNDERLAY)?;
        }
        Ok(())
    }

    /// The other hosts' underlay addresses: the flood list of `Flood::Remotes`.
    fn remotes_of(&self, host: usize) -> Vec<String> {
        (0..self.hosts.len()).filter(|&other| other != host).map(|other| underlay_ip(other).to_string()).collect()
    }

    fn add_xlan_network(&mut self, host: usize, spec: &NetworkSpec) -> Result<()> {
        let vni = spec.vni.to_string();
        let mut args: Vec<String> =
            ["--driver", "vxlan", "--vni", &vni, "--parent", UNDERLAY].into_iter().map(str::to_string).collect();
        match spec.flood {
            Flood::Remotes => {
                for remote in self.remotes_of(host) {
                    args.extend(["--remote".to_string(), remote]);
                }
            }
            Flood::Group(group) => args.extend(["--group".to_string(), group.to_string()]),
        }
        if !spec.learning {
            args.push("--no-learning".to_string());
        }
        if let Some(ageing) = spec.ageing {
            args.extend(["--ageing".to_string(), ageing.to_string()]);
        }
        if let Some(hook) = spec.parent_hook {
            args.extend(["--parent-hook".to_string(), hook.to_string()]);
        }
        let xlan = self.xlan[host].as_mut().context("not an xlan host")?;
        xlan.create_network(&spec.name, &args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn add_kernel_network(&self, host: usize, spec: &NetworkSpec) -> Result<()> {
        let netns = &self.hosts[host].netns;
        let (device, bridge) = (spec.kernel_device(), spec.kernel_bridge());
        let mut args = Vec::new();
        let remotes = self.remotes_of(host);
        match spec.flood {
            Flood::Remotes => {
                if let Some(first) = remotes.first() {
                    args.extend(["remote".to_string(), first.clone()]);
                }
            }
            Flood::Group(group) => args.extend(["group".to_string(), group.to_string()]),
        }
        if !spec.learning {
            args.push("nolearning".to_string());
        }
        if let Some(ageing) = spec.ageing {
            args.extend(["ageing".to_string(), ageing.to_string()]);
        }
        link::add_vxlan(netns, &device, spec.vni, DSTPORT, underlay_ip(host), UNDERLAY, &args)?;
        if spec.flood == Flood::Remotes {
            // The kernel takes one `remote`; further flood-list VTEPs are all-zero FDB entries.
            for remote in remotes.iter().skip(1) {
                netns.exec("bridge", &["fdb", "append", "00:00:00:00:00:00", "dev", &device, "dst", remote])?;
            }
        }
        link::add_bridge(netns, &bridge, Snooping::Off)?;
        link::set(netns, &device, &["master", &bridge, "up"])?;
        link::up(netns, &bridge)
    }

    fn network_spec(&self, network: &str) -> Result<&NetworkSpec> {
        self.networks
            .iter()
            .find(|spec| spec.name == network)
            .with_context(|| format!("no network {network} in the lab"))
    }

    /// Adds an endpoint (in a new namespace) to `network` behind `host`, and waits until its interface is up.
    pub fn add_endpoint(&mut self, host: usize, network: &str, spec: EndpointSpec) -> Result<()> {
        let network_spec = self.network_spec(network)?.clone();
        self.created_endpoints += 1;
        let number = self.created_endpoints;
        let netns = Netns::create(&format!("{}e{number}", self.prefix))?;
        let kernel_port = (self.hosts[host].vtep == Vtep::Kernel).then(|| format!("vp{number}"));
        self.endpoints.push(Endpoint {
            spec: spec.clone(),
            host,
            network: network.to_string(),
            kernel_port: kernel_port.clone(),
            netns,
        });
        let endpoint = self.endpoints.last().expect("pushed above");
        if !spec.ipv6 {
            endpoint.netns.disable_ipv6()?;
        }
        let host_ns = &self.hosts[host].netns;
        match kernel_port {
            None => {
                let mut args = vec![
                    "endpoint",
                    "add",
                    network,
                    "--netns",
                    endpoint.netns.name(),
                    "--ifname",
                    ENDPOINT_IFNAME,
                    "--mac",
                    &spec.mac,
                ];
                let addresses = spec.addresses();
                for cidr in &addresses {
                    args.extend(["--ip", cidr]);
                }
                self.xlan(host)?.run(&args)?;
            }
            Some(port) => {
                let bridge = network_spec.kernel_bridge();
                link::add_bridge_port(host_ns, &bridge, &port, ENDPOINT_IFNAME, &endpoint.netns)?;
                // As xlan does: room for the outer headers, VXLAN never fragments.
                let mtu = (UNDERLAY_MTU - VXLAN_OVERHEAD).to_string();
                link::set(host_ns, &port, &["mtu", &mtu])?;
                link::set(&endpoint.netns, ENDPOINT_IFNAME, &["mtu", &mtu])?;
                link::configure(&endpoint.netns, ENDPOINT_IFNAME, Some(&spec.mac), &spec.addresses())?;
                link::wait_up(host_ns, &port)?;
            }
        }
        link::wait_up(&endpoint.netns, ENDPOINT_IFNAME)?;
        Ok(())
    }

    /// Removes the endpoint `node` of `network` (`xlan endpoint del`, or the kernel host's veth) and its namespace.
    pub fn remove_endpoint(&mut self, network: &str, node: Node) -> Result<()> {
        let position = self
            .endpoints
            .iter()
            .position(|e| e.network == network && e.node() == node)
            .with_context(|| format!("no endpoint {node} on {network}"))?;
        let endpoint = &self.endpoints[position];
        match &endpoint.kernel_port {
            None => {
                self.xlan(endpoint.host)?.run(&[
                    "endpoint",
                    "del",
                    network,
                    "--netns",
                    endpoint.netns.name(),
                    "--ifname",
                    ENDPOINT_IFNAME,
                ])?;
            }
            Some(port) => link::delete(&self.hosts[endpoint.host].netns, port)?,
        }
        self.endpoints.remove(position);
        Ok(())
    }

    pub fn endpoint(&self, network: &str, node: Node) -> Result<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.network == network && e.node() == node)
            .with_context(|| format!("no endpoint {node} on {network}"))
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The probes' view of one network: its endpoints as matrix nodes.
    pub fn view<'a>(&'a self, network: &'a str) -> NetworkView<'a> {
        NetworkView { lab: self, network }
    }

    /// A static FDB entry on `host`: `mac` lives behind host `behind` (`xlan fdb add` / `bridge fdb add`).
    pub fn add_static_fdb(&self, host: usize, network: &str, mac: &str, behind: usize) -> Result<()> {
        let dst = underlay_ip(behind).to_string();
        match self.hosts[host].vtep {
            Vtep::Xlan => {
                self.xlan(host)?.run(&["fdb", "add", network, mac, "--dst", &dst])?;
            }
            Vtep::Kernel => {
                let device = self.network_spec(network)?.kernel_device();
                self.hosts[host].netns.exec("bridge", &["fdb", "add", mac, "dev", &device, "dst", &dst])?;
            }
        }
        Ok(())
    }

    /// `xlan fdb show NETWORK --json` on an xlan host.
    pub fn fdb(&self, host: usize, network: &str) -> Result<Vec<FdbRow>> {
        let text = self.xlan(host)?.run(&["fdb", "show", network, "--json"])?;
        let json: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing `xlan fdb show {network} --json`: {text}"))?;
        json.as_array()
            .with_context(|| format!("`xlan fdb show --json` is not an array: {text}"))?
            .iter()
            .map(FdbRow::from_json)
            .collect()
    }

    /// `xlan stats NETWORK --json` on an xlan host, for the endpoint of `network` at `node`.
    pub fn xlan_counters(&self, network: &str, node: Node) -> Result<EndpointCounters> {
        let endpoint = self.endpoint(network, node)?;
        self.xlan(endpoint.host)?
            .endpoint_stats(network, endpoint.netns.name(), ENDPOINT_IFNAME)
            .with_context(|| format!("on host {}", host_letter(endpoint.host)))
    }
}

impl VxlanLab {
    /// Per-endpoint counters of `network`: `xlan stats` for the endpoints behind xlan hosts, the endpoint
    /// interface's own statistics behind kernel hosts.
    pub fn endpoint_counters(&self, network: &str) -> Result<Vec<(Node, EndpointCounters)>> {
        let mut rows = self
            .endpoints
            .iter()
            .filter(|e| e.network == network)
            .map(|e| {
                let counters = match self.hosts[e.host].vtep {
                    Vtep::Xlan => self.xlan_counters(network, e.node())?,
                    Vtep::Kernel => e.interface_counters()?,
                };
                Ok((e.node(), counters))
            })
            .collect::<Result<Vec<_>>>()?;
        rows.sort_by_key(|(node, _)| *node);
        Ok(rows)
    }

    /// The lab for programs: what the text form shows, as JSON.
    pub fn to_json(&self) -> Value {
        let hosts: Vec<Value> = (self.hosts.iter().enumerate())
            .map(|(index, host)| {
                json!({
                    "host": host_letter(index).to_ascii_uppercase().to_string(), "netns": host.netns.name(),
                    "underlay": UNDERLAY, "ipv4": format!("{}/24", underlay_ip(index)), "vtep": host.vtep.to_string(),
                })
            })
            .collect();
        let networks: Vec<Value> = (self.networks.iter())
            .map(|spec| {
                let (remotes, group) = match spec.flood {
                    Flood::Remotes => (true, None),
                    Flood::Group(group) => (false, Some(group.to_string())),
                };
                json!({
                    "name": spec.name, "vni": spec.vni, "dstport": DSTPORT, "head_end_replication": remotes,
                    "group": group, "learning": spec.learning, "ageing": spec.ageing, "parent_hook": spec.parent_hook,
                })
            })
            .collect();
        let endpoints: Vec<Value> = (self.endpoints.iter())
            .map(|e| {
                json!({
                    "node": e.node().to_string(), "netns": e.netns.name(), "ifname": ENDPOINT_IFNAME,
                    "network": e.network, "host": host_letter(e.host).to_ascii_uppercase().to_string(),
                    "mac": e.spec.mac, "addresses": e.spec.addresses(),
                })
            })
            .collect();
        json!({
            "prefix": self.prefix, "driver": "vxlan",
            "switch": {"netns": self.switch.name(), "bridge": SWITCH_BRIDGE},
            "hosts": hosts, "networks": networks, "endpoints": endpoints,
        })
    }
}

/// The switch's port to host `host`: to-a, to-b, ...
fn switch_port(host: usize) -> String {
    format!("to-{}", host_letter(host))
}

/// Host 0 is A, 1 is B, ...
pub fn host_letter(host: usize) -> char {
    char::from(b'a' + u8::try_from(host).expect("a handful of hosts"))
}

/// The underlay address of host `host`: 10.99.0.1 for A, .2 for B, ...
pub fn underlay_ip(host: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, 0, 1 + u8::try_from(host).expect("a handful of hosts"))
}

/// The endpoints of one network, as the reachability matrix sees them.
pub struct NetworkView<'a> {
    lab: &'a VxlanLab,
    network: &'a str,
}

impl Probed for NetworkView<'_> {
    fn probed_nodes(&self) -> Vec<Node> {
        let mut nodes: Vec<Node> =
            self.lab.endpoints.iter().filter(|e| e.network == self.network).map(Endpoint::node).collect();
        nodes.sort();
        nodes
    }

    fn probed_netns(&self, node: Node) -> &Netns {
        self.lab.endpoint(self.network, node).map(Endpoint::netns).unwrap_or_else(|err| panic!("{err:#}"))
    }
}

/// The lab in the style of ip(8): the switch, one line per host, network and endpoint.
impl fmt::Display for VxlanLab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "vxlan lab {}", self.prefix)?;
        writeln!(f, "  switch {:<16} {SWITCH_BRIDGE}: bridge stp off, mcast_snooping off", self.switch.name())?;
        for (index, host) in self.hosts.iter().enumerate() {
            writeln!(
                f,
                "  host {}  {:<16} {UNDERLAY} inet {}/24, tx checksum offload off; VTEP: {}",
                host_letter(index).to_ascii_uppercase(),
                host.netns.name(),
                underlay_ip(index),
                host.vtep
            )?;
        }
        for spec in &self.networks {
            let flood = match spec.flood {
                Flood::Remotes => "head-end replication to every other host".to_string(),
                Flood::Group(group) => format!("group {group}"),
            };
            writeln!(
                f,
                "  network {} vni {} dstport {DSTPORT}: {flood}, learning {}, ageing {}, xlan parent hook {}",
                spec.name,
                spec.vni,
                if spec.learning { "on" } else { "off" },
                spec.ageing.map_or("default".to_string(), |secs| format!("{secs}s")),
                spec.parent_hook.unwrap_or("default")
            )?;
        }
        for e in &self.endpoints {
            writeln!(
                f,
                "  {:<4} {:<16} {ENDPOINT_IFNAME} on {} behind host {}: link/ether {} inet {}/24{}",
                e.node().to_string(),
                e.netns.name(),
                e.network,
                host_letter(e.host).to_ascii_uppercase(),
                e.spec.mac,
                e.node().ipv4(),
                if e.spec.ipv6 { format!(" inet6 {}/64", e.node().ipv6()) } else { " (IPv6 off)".to_string() }
            )?;
        }
        Ok(())
    }
}
