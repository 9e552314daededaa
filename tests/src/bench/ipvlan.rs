//! The ipvlan l3 topology. This kernel has no ipvlan, so the kernel side is what ipvlan l3 stands in for: the
//! host routes between the wire and the endpoints' subnets.
//!
//! ```text
//!   out (eth0 10.77.0.1) ══ veth ══ host (uplink 10.77.0.2)     out routes 10.78.0.0/16 and fd78::/32 via the host
//!                                     ├─ e1 (eth0 10.78.1.11/24, fd78:1::11/64)
//!                                     └─ e2 (eth0 10.78.2.12/24, fd78:2::12/64)
//!
//!   kernel: forwarding on in the host; a veth per endpoint, the host's end p<N> with 10.78.N.1 and fd78:N::1, the
//!           endpoint's default routes via them
//!   xlan:   xlan network create net0 --driver ipvlan --parent uplink --mode l3; xlan endpoints (the parent's MAC,
//!           NOARP, `default dev eth0`)
//!   limit:  endpoints on veths as xlan's (the parent's MAC); bare tcx bpf_redirect_peer on uplink into e1 and
//!           from e1's veth into e2
//! ```
//!
//! The endpoints are on subnets of their own, so every packet is routed (by the host or by xlan's parent); the wire
//! is as in the macvlan topology (tx checksum off on `out`, GRO on `uplink`).

use anyhow::{bail, Result};

use super::frame::parse_mac;
use super::topology::{
    add_endpoint_veth, create_xlan_network, host_port, wire_into_host, Addressing, Backend, BenchTopology, ENDPOINTS,
};
use crate::link;
use crate::topology::{Node, NETWORK, NODE_IFNAME, PARENT};

pub fn describe(backend: Backend) -> &'static str {
    match backend {
        Backend::Kernel => "plain kernel routing: the host forwards between uplink and a veth per endpoint",
        Backend::Xlan => "xlan network create --driver ipvlan --mode l3 (default parent hook on a veth: tc)",
        Backend::Limit => {
            "bare tcx bpf_redirect_peer on uplink into e1; bare tcx bpf_redirect_peer from e1's veth into e2"
        }
        _ => "-",
    }
}

fn subnet(index: u8) -> (String, String) {
    (format!("10.78.{index}"), format!("fd78:{index}:"))
}

/// The host's end of endpoint `index`'s veth, the endpoint's gateway (kernel routing).
fn router_mac(index: u8) -> String {
    format!("02:78:00:00:00:{index:02x}")
}

pub fn build(topology: &mut BenchTopology) -> Result<()> {
    wire_into_host(topology)?;
    let (outside, gateway) = (topology.outside(), (Node::Host.ipv4().to_string(), Node::Host.ipv6().to_string()));
    outside.ip(&["route", "add", "10.78.0.0/16", "via", &gateway.0])?;
    outside.ip(&["-6", "route", "add", "fd78::/32", "via", &gateway.1])?;

    let parent_mac = parse_mac(&Node::Host.mac())?;
    let mut nodes = vec![Addressing {
        node: Node::Outside,
        mac: parse_mac(&Node::Outside.mac())?,
        ipv4: Node::Outside.ipv4(),
        ipv6: Node::Outside.ipv6(),
        next_hop_mac: Some(parent_mac),
    }];
    if topology.backend == Backend::Kernel {
        topology.host(0).sysctl("net.ipv4.ip_forward", "1")?;
        topology.host(0).sysctl("net.ipv6.conf.all.forwarding", "1")?;
    }
    if topology.backend == Backend::Xlan {
        create_xlan_network(topology, 0, &["--driver", "ipvlan", "--parent", PARENT, "--mode", "l3"])?;
    }
    for index in 1..=ENDPOINTS {
        let (v4, v6) = subnet(index);
        let node = Node::Endpoint(index);
        let (ipv4, ipv6) = (format!("{v4}.{}", 10 + index), format!("{v6}:{:x}", 0x10 + index));
        let addresses = [format!("{ipv4}/24"), format!("{ipv6}/64")];
        let netns = topology.endpoint(index).name().to_string();
        let (mac, next_hop) = match topology.backend {
            Backend::Kernel => {
                add_endpoint_veth(topology, 0, index)?;
                let port = host_port(index);
                let router = [format!("{v4}.1/24"), format!("{v6}:1/64")];
                link::configure(topology.host(0), &port, Some(&router_mac(index)), &router)?;
                link::configure(topology.endpoint(index), NODE_IFNAME, Some(&node.mac()), &addresses)?;
                let endpoint = topology.endpoint(index);
                endpoint.ip(&["route", "add", "default", "via", &format!("{v4}.1")])?;
                endpoint.ip(&["-6", "route", "add", "default", "via", &format!("{v6}:1")])?;
                (parse_mac(&node.mac())?, parse_mac(&router_mac(index))?)
            }
            Backend::Xlan => {
                let instance = topology.xlan.last().expect("made above");
                let args =
                    ["endpoint", "add", NETWORK, "--netns", &netns, "--ip", &addresses[0], "--ip", &addresses[1]];
                instance.run(&args)?;
                // Every endpoint has the parent's MAC; NOARP sends to the device's own address.
                (parent_mac, parent_mac)
            }
            Backend::Limit => {
                add_endpoint_veth(topology, 0, index)?;
                link::configure(topology.endpoint(index), NODE_IFNAME, Some(&Node::Host.mac()), &addresses)?;
                (parent_mac, parent_mac)
            }
            other => bail!("ipvlan has no {} backend", other.name()),
        };
        nodes.push(Addressing { node, mac, ipv4: ipv4.parse()?, ipv6: ipv6.parse()?, next_hop_mac: Some(next_hop) });
        topology.links.push((netns, NODE_IFNAME.to_string()));
    }
    topology.nodes = nodes;
    Ok(())
}
