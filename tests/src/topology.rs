//! The macvlan test topology, built from namespaces and veths with either the kernel's macvlan driver or xlan, on
//! the [`Site`] every one-host topology is made of:
//!
//! ```text
//!   out (eth0) ── to-out ─┐
//!                         br0   (switch namespace: a Linux bridge standing in for the physical LAN)
//!   host (uplink) ─ to-host ┘
//!     └── e1..e3 (eth0 each): macvlan endpoints on the host's parent `uplink`, each in its own namespace
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use anyhow::{Context, Result};

use crate::counters::EndpointCounters;
use crate::link;
use crate::netns::Netns;
use crate::site::{self, Site, BRIDGE, SWITCH_PORT_HOST, SWITCH_PORT_OUTSIDE};
use crate::xlan::XlanHost;

/// The xlan network the Xlan backend creates.
pub const NETWORK: &str = "net0";
/// The host's parent interface for the endpoints.
pub const PARENT: &str = "uplink";
/// The interface name of the outside node and of every endpoint, inside their namespaces.
pub const NODE_IFNAME: &str = "eth0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Bridge,
    Private,
    Vepa,
    Passthru,
    Source,
}

impl Mode {
    pub const ALL: [Mode; 5] = [Mode::Bridge, Mode::Private, Mode::Vepa, Mode::Passthru, Mode::Source];

    /// The name both `ip link ... type macvlan mode` and `xlan network create --mode` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bridge => "bridge",
            Mode::Private => "private",
            Mode::Vepa => "vepa",
            Mode::Passthru => "passthru",
            Mode::Source => "source",
        }
    }

    /// A passthru macvlan takes over its parent, so there can be only one.
    pub fn endpoint_count(self) -> u8 {
        match self {
            Mode::Passthru => 1,
            _ => 3,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Mode> {
        by_name(&Mode::ALL, Mode::as_str, s, "macvlan mode")
    }
}

/// The one of `all` whose `name` is `text`; else an error that lists the names (`what`: "macvlan mode", ...).
pub fn by_name<T: Copy>(all: &[T], name: fn(T) -> &'static str, text: &str, what: &str) -> Result<T> {
    all.iter().copied().find(|&value| name(value) == text).with_context(|| {
        let names: Vec<&str> = all.iter().map(|&value| name(value)).collect();
        format!("unknown {what} {text:?} ({})", names.join(", "))
    })
}

/// Who implements the endpoints: the kernel's macvlan driver (the reference) or the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Kernel,
    /// `xdp_hook`: `--parent-hook xdp` (XDP on the parent, stubs on the endpoints) instead of the default for a
    /// veth parent (tc).
    Xlan {
        host_access: bool,
        xdp_hook: bool,
    },
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Kernel => f.write_str("kernel"),
            Backend::Xlan { host_access, xdp_hook } => {
                f.write_str("xlan")?;
                if *host_access {
                    f.write_str(" --host-access")?;
                }
                if *xdp_hook {
                    f.write_str(" --parent-hook xdp")?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// A node of the topology that sends and receives probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Outside,
    Host,
    /// 1-based.
    Endpoint(u8),
}

impl Node {
    /// The last byte of the node's IPv4 and IPv6 addresses and of its MAC: out .1, host .2, endpoint X .1X.
    fn host_part(self) -> u8 {
        match self {
            Node::Outside => 0x01,
            Node::Host => 0x02,
            Node::Endpoint(index) => 0x10 + index,
        }
    }

    /// 10.77.0.1, 10.77.0.2, 10.77.0.1X (decimal 1X).
    pub fn ipv4(self) -> Ipv4Addr {
        let last = match self {
            Node::Endpoint(index) => 10 + index,
            _ => self.host_part(),
        };
        Ipv4Addr::new(10, 77, 0, last)
    }

    /// fd77::1, fd77::2, fd77::1X.
    pub fn ipv6(self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, self.host_part().into())
    }

    pub fn addr(self, family: Family) -> IpAddr {
        match family {
            Family::V4 => self.ipv4().into(),
            Family::V6 => self.ipv6().into(),
        }
    }

    /// The fixed, locally administered MAC of the node: 02:77:00:00:00:01, :02, :1X.
    pub fn mac(self) -> String {
        format!("02:77:00:00:00:{:02x}", self.host_part())
    }

    /// The node's addresses with their prefix lengths: 10.77.0.x/24 and fd77::x/64.
    pub fn cidrs(self) -> [String; 2] {
        [format!("{}/24", self.ipv4()), format!("{}/64", self.ipv6())]
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Outside => f.write_str("out"),
            Node::Host => f.write_str("host"),
            Node::Endpoint(index) => write!(f, "e{index}"),
        }
    }
}

pub struct Topology {
    // Fields drop in declaration order: xlan must delete its network while the host namespace still exists, and the
    // namespaces (taking every veth and macvlan in them along) go after it.
    xlan: Option<XlanHost>,
    mode: Mode,
    backend: Backend,
    site: Site,
}

impl Topology {
    pub fn build(mode: Mode, backend: Backend) -> Result<Topology> {
        let site = Site::create(mode.endpoint_count())?;
        let mut topology = Topology { xlan: None, mode, backend, site };
        // VEPA sends endpoint-to-endpoint traffic to the switch, which must reflect it back out the same port.
        topology.site.build_wire(mode == Mode::Vepa)?;
        match backend {
            Backend::Kernel => topology.add_kernel_endpoints()?,
            Backend::Xlan { host_access, xdp_hook } => topology.add_xlan_endpoints(host_access, xdp_hook)?,
        }
        topology.wait_until_up()?;
        Ok(topology)
    }

    pub fn prefix(&self) -> &str {
        &self.site.prefix
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The host namespace's xlan handle (Xlan backend only).
    pub fn xlan(&self) -> Option<&XlanHost> {
        self.xlan.as_ref()
    }

    pub fn nodes(&self) -> Vec<Node> {
        [Node::Outside, Node::Host].into_iter().chain(self.endpoint_nodes()).collect()
    }

    pub fn endpoint_nodes(&self) -> impl Iterator<Item = Node> {
        (1..=self.mode.endpoint_count()).map(Node::Endpoint)
    }

    pub fn netns(&self, node: Node) -> &Netns {
        self.site.netns(node)
    }

    pub fn ifname(&self, node: Node) -> &'static str {
        site::ifname(node)
    }

    /// The MAC the node is given; `None` for a passthru endpoint, which inherits its parent's.
    fn assigned_mac(&self, node: Node) -> Option<String> {
        match (self.mode, node) {
            (Mode::Passthru, Node::Endpoint(_)) => None,
            _ => Some(node.mac()),
        }
    }

    /// Per-endpoint counters: `xlan stats` for the Xlan backend, the endpoint interfaces' own statistics for the
    /// Kernel backend.
    pub fn endpoint_counters(&self) -> Result<Vec<(Node, EndpointCounters)>> {
        let Some(xlan) = &self.xlan else {
            return self
                .endpoint_nodes()
                .map(|node| Ok((node, EndpointCounters::of_interface(self.netns(node), NODE_IFNAME)?)))
                .collect();
        };
        self.endpoint_nodes()
            .map(|node| Ok((node, xlan.endpoint_stats(NETWORK, self.netns(node).name(), NODE_IFNAME)?)))
            .collect()
    }

    /// Sets the endpoint's MAC (unless it inherits one) and addresses, and brings its interface up.
    fn configure_endpoint(&self, node: Node) -> Result<()> {
        link::configure(self.netns(node), NODE_IFNAME, self.assigned_mac(node).as_deref(), &node.cidrs())
    }

    fn add_kernel_endpoints(&self) -> Result<()> {
        for node in self.endpoint_nodes() {
            let netns = self.netns(node);
            link::add_macvlan(&self.site.host, PARENT, self.mode.as_str(), netns, NODE_IFNAME)?;
            if self.mode == Mode::Source {
                link::set(netns, NODE_IFNAME, &["type", "macvlan", "macaddr", "add", &Node::Outside.mac()])?;
            }
            // In passthru mode the kernel has given the macvlan its parent's MAC; assigned_mac() leaves it.
            self.configure_endpoint(node)?;
        }
        Ok(())
    }

    fn add_xlan_endpoints(&mut self, host_access: bool, xdp_hook: bool) -> Result<()> {
        let xlan = self.xlan.insert(XlanHost::new(&self.site.host)?);
        let mut args = vec!["--driver", "macvlan", "--parent", PARENT, "--mode", self.mode.as_str()];
        if host_access {
            args.push("--host-access");
        }
        if xdp_hook {
            args.extend(["--parent-hook", "xdp"]);
        }
        xlan.create_network(NETWORK, &args)?;
        if self.mode == Mode::Source {
            xlan.run(&["macaddr", "add", NETWORK, &Node::Outside.mac()])?;
        }
        let xlan = self.xlan.as_ref().expect("set above");
        for node in self.endpoint_nodes() {
            let [v4, v6] = node.cidrs();
            let mut args =
                vec!["endpoint", "add", NETWORK, "--netns", self.netns(node).name(), "--ifname", NODE_IFNAME];
            // Without --mac (passthru) xlan uses the parent's MAC, as the kernel does.
            let mac = self.assigned_mac(node);
            if let Some(mac) = &mac {
                args.extend(["--mac", mac]);
            }
            args.extend(["--ip", &v4, "--ip", &v6]);
            xlan.run(&args)?;
        }
        Ok(())
    }

    fn wait_until_up(&self) -> Result<()> {
        self.site.wait_wire_up()?;
        for node in self.endpoint_nodes() {
            link::wait_up(self.netns(node), NODE_IFNAME)?;
        }
        Ok(())
    }
}

/// One node of the topology as shown to people (text) and programs (JSON).
struct NodeRow {
    node: Node,
    netns: String,
    ifname: &'static str,
    mac: Option<String>,
    role: String,
}

impl Topology {
    fn node_rows(&self) -> Vec<NodeRow> {
        self.nodes()
            .into_iter()
            .map(|node| NodeRow {
                node,
                netns: self.netns(node).name().to_string(),
                ifname: self.ifname(node),
                mac: self.assigned_mac(node),
                role: match node {
                    Node::Outside => "outside node, tx checksum offload off".to_string(),
                    Node::Host => {
                        format!("host, parent of the endpoints, on switch port {SWITCH_PORT_HOST}")
                    }
                    Node::Endpoint(_) => format!("macvlan {} endpoint on {PARENT}", self.mode),
                },
            })
            .collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .node_rows()
            .into_iter()
            .map(|row| {
                serde_json::json!({
                    "node": row.node.to_string(), "netns": row.netns, "ifname": row.ifname,
                    "mac": row.mac, "ipv4": format!("{}/24", row.node.ipv4()),
                    "ipv6": format!("{}/64", row.node.ipv6()), "role": row.role,
                })
            })
            .collect();
        serde_json::json!({
            "prefix": self.site.prefix, "driver": "macvlan", "mode": self.mode.as_str(), "backend": self.backend.to_string(),
            "switch": self.site.switch_json(self.mode == Mode::Vepa),
            "nodes": nodes,
        })
    }
}

/// The topology in the style of ip(8): one line per node with namespace, interface, MAC and addresses.
impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "topology {}: macvlan mode {}, backend {}", self.site.prefix, self.mode, self.backend)?;
        let hairpin = if self.mode == Mode::Vepa { ", hairpin on " } else { " " };
        writeln!(
            f,
            "{:<6} {:<14} {BRIDGE}: bridge stp off{hairpin}ports {SWITCH_PORT_OUTSIDE} {SWITCH_PORT_HOST}",
            "switch",
            self.site.switch.name()
        )?;
        for row in self.node_rows() {
            writeln!(
                f,
                "{:<6} {:<14} {:<7} link/ether {:<17} inet {}/24 inet6 {}/64  ({})",
                row.node.to_string(),
                row.netns,
                row.ifname,
                row.mac.as_deref().unwrap_or("(parent's)"),
                row.node.ipv4(),
                row.node.ipv6(),
                row.role,
            )?;
        }
        Ok(())
    }
}
