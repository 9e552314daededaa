//! The namespaces every one-host topology is made of (macvlan's [`crate::Topology`], ipvlan's and the routed
//! reference in [`crate::ipvlan`]), and the wire they share: a switch namespace whose Linux bridge stands in for the
//! physical LAN, the outside node and the host on its ports, and the endpoints' namespaces (their interfaces are the
//! topology's to make).
//!
//! ```text
//!   out (eth0) ── to-out ─┐
//!                         br0   (switch namespace; optionally hairpin on to-host)
//!   host (uplink) ─ to-host ┘
//!     e1, e2, ... (one namespace each)
//! ```

use anyhow::Result;
use serde_json::{json, Value};

use crate::link::{self, Snooping};
use crate::netns::{unique_prefix, Netns};
use crate::topology::{Node, NODE_IFNAME, PARENT};

/// The switch's bridge.
pub const BRIDGE: &str = "br0";
/// The switch's port to the outside node.
pub const SWITCH_PORT_OUTSIDE: &str = "to-out";
/// The switch's port to the host's parent, in the switch namespace: what the host puts on the wire arrives here.
pub const SWITCH_PORT_HOST: &str = "to-host";

pub struct Site {
    /// The names' common prefix, unique to the site (see [`unique_prefix`]).
    pub prefix: String,
    /// e1, e2, ...: dropped first, before the wire.
    pub endpoints: Vec<Netns>,
    pub switch: Netns,
    pub outside: Netns,
    pub host: Netns,
}

impl Site {
    /// The namespaces `<prefix>sw`, `<prefix>out`, `<prefix>h` and `<prefix>e1` to `<prefix>e<endpoints>`, nothing in
    /// them yet. A topology creates every namespace before configuring any, so that a failing step drops a whole
    /// topology whose guards clean up.
    pub fn create(endpoints: u8) -> Result<Site> {
        let prefix = unique_prefix();
        let switch = Netns::create(&format!("{prefix}sw"))?;
        let outside = Netns::create(&format!("{prefix}out"))?;
        let host = Netns::create(&format!("{prefix}h"))?;
        let endpoints = Netns::create_numbered(&prefix, "e", endpoints)?;
        Ok(Site { prefix, endpoints, switch, outside, host })
    }

    /// Bridge and ports (STP and multicast snooping off), hairpin on the host's port if asked (a VEPA-capable switch
    /// that reflects a frame back out the port it came in on); outside and host with their nodes' MACs and addresses
    /// (10.77.0.1/.2, fd77::1/::2) and tx checksum offload off: a real wire never carries CHECKSUM_PARTIAL skbs, a
    /// veth passes them on, and an XDP redirect on the host's parent loses that state, so every sender onto the veth
    /// wire checksums in software — the outside node, and the host's parent, whose own frames come back to it
    /// through the hairpin port.
    pub fn build_wire(&self, hairpin: bool) -> Result<()> {
        let sw = &self.switch;
        link::add_bridge(sw, BRIDGE, Snooping::Off)?;
        for (port, peer_ifname, peer_ns) in
            [(SWITCH_PORT_OUTSIDE, NODE_IFNAME, &self.outside), (SWITCH_PORT_HOST, PARENT, &self.host)]
        {
            link::add_bridge_port(sw, BRIDGE, port, peer_ifname, peer_ns)?;
        }
        if hairpin {
            link::hairpin_on(sw, SWITCH_PORT_HOST)?;
        }
        link::up(sw, BRIDGE)?;
        for (netns, node) in [(&self.outside, Node::Outside), (&self.host, Node::Host)] {
            link::configure(netns, ifname(node), Some(&node.mac()), &node.cidrs())?;
            link::tx_checksum_offload_off(netns, ifname(node))?;
        }
        Ok(())
    }

    /// The node's namespace.
    pub fn netns(&self, node: Node) -> &Netns {
        match node {
            Node::Outside => &self.outside,
            Node::Host => &self.host,
            Node::Endpoint(index) => &self.endpoints[usize::from(index) - 1],
        }
    }

    /// The outside node routes `v4`/`v6` (CIDRs) via the host's uplink address.
    pub fn route_via_host(&self, v4: &str, v6: &str) -> Result<()> {
        let (gw4, gw6) = (Node::Host.ipv4().to_string(), Node::Host.ipv6().to_string());
        self.outside.ip(&["route", "add", v4, "via", &gw4])?;
        self.outside.ip(&["-6", "route", "add", v6, "via", &gw6])?;
        Ok(())
    }

    /// Waits until the bridge, its ports, the outside node's and the host's interfaces are up.
    pub fn wait_wire_up(&self) -> Result<()> {
        for port in [BRIDGE, SWITCH_PORT_OUTSIDE, SWITCH_PORT_HOST] {
            link::wait_up(&self.switch, port)?;
        }
        link::wait_up(&self.outside, NODE_IFNAME)?;
        link::wait_up(&self.host, PARENT)
    }

    /// The switch as JSON.
    pub fn switch_json(&self, hairpin: bool) -> Value {
        json!({"netns": self.switch.name(), "bridge": BRIDGE, "hairpin": hairpin})
    }
}

/// The node's interface: the host's parent, or `eth0` (the outside node, every endpoint).
pub fn ifname(node: Node) -> &'static str {
    match node {
        Node::Host => PARENT,
        _ => NODE_IFNAME,
    }
}
