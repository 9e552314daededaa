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
    add_endpoint_veth, create_xlan_network, wire_into_host, Addressing, Backend, BenchTopology, ENDPOINTS,
};
use crate::link;
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
    wire_into_host(topology)?;
    match topology.backend {
        Backend::Kernel => {
            for index in 1..=ENDPOINTS {
                link::add_macvlan(topology.host(0), PARENT, "bridge", topology.endpoint(index), NODE_IFNAME)?;
                configure_endpoint(topology, index)?;
            }
        }
        Backend::Xlan | Backend::XlanXdp => {
            let mut args = vec!["--driver", "macvlan", "--parent", PARENT, "--mode", "bridge"];
            if topology.backend == Backend::XlanXdp {
                args.extend(["--parent-hook", "xdp"]);
            }
            let netns: Vec<String> = (1..=ENDPOINTS).map(|index| topology.endpoint(index).name().to_string()).collect();
            let xlan = create_xlan_network(topology, 0, &args)?;
            for (index, netns) in (1..=ENDPOINTS).zip(&netns) {
                let node = Node::Endpoint(index);
                let (mac, [v4, v6]) = (node.mac(), node.cidrs());
                xlan.run(&["endpoint", "add", NETWORK, "--netns", netns, "--mac", &mac, "--ip", &v4, "--ip", &v6])?;
            }
        }
        Backend::Limit | Backend::LimitXdp => {
            for index in 1..=ENDPOINTS {
                add_endpoint_veth(topology, 0, index)?;
                configure_endpoint(topology, index)?;
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

/// Endpoint `index`'s MAC and conformance addresses on its eth0, up.
fn configure_endpoint(topology: &BenchTopology, index: u8) -> Result<()> {
    let node = Node::Endpoint(index);
    link::configure(topology.endpoint(index), NODE_IFNAME, Some(&node.mac()), &node.cidrs())
}
