//! The macvlan bridge topology:
//!
//! ```text
//!   out (eth0) ══ veth ══ host (uplink)        the wire: no switch in between, the generator in `out` is the far end
//!                           ├─ e1 (eth0)        kernel: macvlan bridge on uplink; xlan: an xlan endpoint;
//!                           └─ e2 (eth0)        limit: a veth pair per endpoint, like xlan's, with bare redirects
//! ```
//!
//! Addresses and MACs are those of the conformance topology's nodes. Offloads: tx checksum off on `out` (as on a
//! wire: a veth would otherwise hand on unfinished checksums, which the xdp hook cannot take), GRO on `uplink`.

use anyhow::Result;

use super::topology::{
    add_endpoint_veth, configure, nic_like, Addressing, Backend, BenchTopology, XlanInstance, ENDPOINTS,
};
use crate::topology::{Node, NETWORK, NODE_IFNAME, PARENT};

pub fn describe(backend: Backend) -> &'static str {
    match backend {
        Backend::Kernel => "the kernel's macvlan, mode bridge, on uplink",
        Backend::Xlan => "xlan network create --driver macvlan --mode bridge (default parent hook on a veth: tc)",
        Backend::XlanXdp => "xlan network create --driver macvlan --mode bridge --parent-hook xdp",
        Backend::Limit => {
            "bare tcx bpf_redirect_peer on uplink into e1; bare tcx bpf_redirect_peer from e1's veth into e2"
        }
        Backend::LimitXdp => "bare XDP bpf_redirect on uplink into e1's veth (XDP stubs on the endpoints)",
        Backend::Mixed => "-",
    }
}

pub fn build(topology: &mut BenchTopology) -> Result<()> {
    let (outside, host) = (topology.outside(), topology.host(0));
    outside.ip(&["link", "add", NODE_IFNAME, "type", "veth", "peer", "name", PARENT, "netns", host.name()])?;
    configure_node(topology, Node::Outside, NODE_IFNAME)?;
    outside.exec("ethtool", &["-K", NODE_IFNAME, "tx", "off"])?;
    configure_node(topology, Node::Host, PARENT)?;
    nic_like(host, PARENT)?;
    let (outside, host) = (topology.outside().name().to_string(), topology.host(0).name().to_string());
    topology.links.push((outside, NODE_IFNAME.to_string()));
    topology.links.push((host, PARENT.to_string()));

    match topology.backend {
        Backend::Kernel => {
            for index in 1..=ENDPOINTS {
                let netns = topology.endpoint(index).name().to_string();
                let args =
                    ["link", "add", NODE_IFNAME, "link", PARENT, "netns", &netns, "type", "macvlan", "mode", "bridge"];
                topology.host(0).ip(&args)?;
                configure_node(topology, Node::Endpoint(index), NODE_IFNAME)?;
            }
        }
        Backend::Xlan | Backend::XlanXdp => {
            let mut xlan = XlanInstance::new(topology.host(0))?;
            let mut args = vec!["--driver", "macvlan", "--parent", PARENT, "--mode", "bridge"];
            if topology.backend == Backend::XlanXdp {
                args.extend(["--parent-hook", "xdp"]);
            }
            xlan.create_network(NETWORK, &args)?;
            for index in 1..=ENDPOINTS {
                let node = Node::Endpoint(index);
                let netns = topology.endpoint(index).name().to_string();
                let (mac, v4, v6) = (node.mac(), format!("{}/24", node.ipv4()), format!("{}/64", node.ipv6()));
                xlan.run(&["endpoint", "add", NETWORK, "--netns", &netns, "--mac", &mac, "--ip", &v4, "--ip", &v6])?;
            }
            topology.xlan.push(xlan);
        }
        Backend::Limit | Backend::LimitXdp => {
            for index in 1..=ENDPOINTS {
                add_endpoint_veth(topology, 0, index)?;
                configure_node(topology, Node::Endpoint(index), NODE_IFNAME)?;
            }
        }
        Backend::Mixed => anyhow::bail!("macvlan has no mixed backend"),
    }
    for index in 1..=ENDPOINTS {
        let netns = topology.endpoint(index).name().to_string();
        topology.links.push((netns, NODE_IFNAME.to_string()));
    }
    topology.nodes = [Node::Outside, Node::Endpoint(1), Node::Endpoint(2)]
        .into_iter()
        .map(|node| Addressing::bridged(node, &node.mac()))
        .collect::<Result<_>>()?;
    Ok(())
}

/// The node's MAC and conformance addresses on `ifname`, up.
fn configure_node(topology: &BenchTopology, node: Node, ifname: &str) -> Result<()> {
    let addresses = [format!("{}/24", node.ipv4()), format!("{}/64", node.ipv6())];
    configure(topology.netns(node), ifname, Some(&node.mac()), &addresses)
}
