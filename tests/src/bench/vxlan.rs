//! The VXLAN topology: two VTEP hosts on a veth underlay, one endpoint on each, one network (VNI 42).
//!
//! ```text
//!   e1 (eth0) ── host A (ul 10.99.0.1) ══ veth ══ (ul 10.99.0.2) host B ── e2 (eth0)
//!
//!   xlan host:   xlan network create net0 --driver vxlan --vni 42 --parent ul --remote <other VTEP>; xlan endpoints
//!   kernel host: vx42 (type vxlan id 42 local … remote … dstport 4789 dev ul) and a veth to the endpoint, both
//!                ports of bridge br42
//!   limit:       a veth to the endpoint; on A a bare tcx redirect from it out of ul, on B a bare tcx
//!                bpf_redirect_peer from ul into it — the same hops with no encapsulation and no lookups
//! ```
//!
//! Endpoints have the conformance nodes' MACs and addresses (e1 10.77.0.11, e2 10.77.0.12) and MTU 1450 (the
//! underlay's 1500 − 50), as xlan gives them. The underlay is the same for every backend: GRO on both ends, like a
//! NIC, offloads otherwise as a veth has them (xlan's default tc hook takes unfinished checksums as they are; its
//! xdp hook would need tx checksum offload off, which costs the kernel's TCP more than half here, so it is not
//! measured on this LAN).

use std::net::Ipv4Addr;

use anyhow::{bail, Result};
use datapath_common::bench::{program_names as bench_programs, BenchConfig};

use super::programs::BenchPrograms;
use super::topology::{
    add_endpoint_veth, create_xlan_network, endpoint_veth_like_xlans, host_port, Addressing, Backend, BenchTopology,
};
use crate::link::{self, ifindex_in, Snooping};
use crate::netns::Netns;
use crate::topology::{Node, NETWORK, NODE_IFNAME};

pub(super) const UNDERLAY: &str = "ul";
const VNI: u32 = 42;
const DSTPORT: u16 = 4789;
const ENDPOINT_MTU: &str = "1450";
const KERNEL_VXLAN: &str = "vx42";
const KERNEL_BRIDGE: &str = "br42";

/// Who implements one host's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Kernel,
    Xlan,
    Limit,
}

pub fn describe(backend: Backend) -> &'static str {
    match backend {
        Backend::Kernel => "the kernel's vxlan + a bridge on both hosts",
        Backend::Xlan => "xlan network create --driver vxlan on both hosts (default parent hook on a veth: tc)",
        Backend::Mixed => "xlan on host A (the sender's), the kernel's vxlan + bridge on host B",
        Backend::Limit => "no encapsulation: bare tcx bpf_redirect from e1's veth out of A's ul, bare tcx bpf_redirect_peer from B's ul into e2",
        Backend::XlanXdp | Backend::LimitXdp => "-",
    }
}

fn vtep(host: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, 0, host as u8 + 1)
}

pub fn build(topology: &mut BenchTopology) -> Result<()> {
    let sides = match topology.backend {
        Backend::Kernel => [Side::Kernel, Side::Kernel],
        Backend::Xlan => [Side::Xlan, Side::Xlan],
        Backend::Mixed => [Side::Xlan, Side::Kernel],
        Backend::Limit => [Side::Limit, Side::Limit],
        other => bail!("vxlan has no {} backend", other.name()),
    };
    link::add_veth(topology.host(0), UNDERLAY, UNDERLAY, topology.host(1))?;
    for host in 0..2 {
        let netns = topology.host(host);
        let mac = format!("02:99:00:00:00:{:02x}", host + 1);
        link::configure(netns, UNDERLAY, Some(&mac), &[format!("{}/24", vtep(host))])?;
        link::nic_like(netns, UNDERLAY)?;
        let name = netns.name().to_string();
        topology.links.push((name, UNDERLAY.to_string()));
    }
    for (host, side) in sides.into_iter().enumerate() {
        let index = host as u8 + 1;
        let node = Node::Endpoint(index);
        let [v4, v6] = node.cidrs();
        let remote = vtep(1 - host).to_string();
        match side {
            Side::Xlan => {
                let vni = VNI.to_string();
                let args = ["--driver", "vxlan", "--vni", &vni, "--parent", UNDERLAY, "--remote", &remote];
                let netns = topology.endpoint(index).name().to_string();
                let xlan = create_xlan_network(topology, host, &args)?;
                let mac = node.mac();
                xlan.run(&["endpoint", "add", NETWORK, "--netns", &netns, "--mac", &mac, "--ip", &v4, "--ip", &v6])?;
            }
            Side::Kernel => {
                let netns = topology.host(host);
                let remote = ["remote".to_string(), remote];
                link::add_vxlan(netns, KERNEL_VXLAN, VNI, DSTPORT, vtep(host), UNDERLAY, &remote)?;
                link::add_bridge(netns, KERNEL_BRIDGE, Snooping::KernelDefault)?;
                bridge_without_netfilter(netns)?;
                link::set(netns, KERNEL_VXLAN, &["master", KERNEL_BRIDGE, "up"])?;
                add_endpoint_veth(topology, host, index)?;
                let netns = topology.host(host);
                link::set(netns, &host_port(index), &["mtu", ENDPOINT_MTU, "master", KERNEL_BRIDGE])?;
                link::up(netns, KERNEL_BRIDGE)?;
                configure_endpoint(topology, index)?;
            }
            Side::Limit => {
                add_endpoint_veth(topology, host, index)?;
                link::set(topology.host(host), &host_port(index), &["mtu", ENDPOINT_MTU])?;
                configure_endpoint(topology, index)?;
            }
        }
        let netns = topology.endpoint(index).name().to_string();
        topology.links.push((netns, NODE_IFNAME.to_string()));
    }
    topology.nodes = [Node::Endpoint(1), Node::Endpoint(2)]
        .into_iter()
        .map(|node| Addressing::bridged(node, &node.mac()))
        .collect::<Result<_>>()?;
    Ok(())
}

/// This kernel has br_netfilter built in, and a new namespace starts with bridge-nf-call-{arp,ip,ip6}tables on: every
/// bridged IP frame would go through netfilter's hooks (and a route lookup) with no rule to apply. Off, as a host
/// that bridges without filtering would have it, so the kernel's bridge is measured at its best. Best effort: a
/// kernel without br_netfilter has no such settings.
fn bridge_without_netfilter(netns: &Netns) -> Result<()> {
    for table in ["arptables", "iptables", "ip6tables"] {
        if std::path::Path::new("/proc/sys/net/bridge").exists() {
            netns.sysctl(&format!("net.bridge.bridge-nf-call-{table}"), "0")?;
        }
    }
    Ok(())
}

/// Endpoint `index` with the endpoints' MTU, its node's MAC and conformance addresses, up.
fn configure_endpoint(topology: &BenchTopology, index: u8) -> Result<()> {
    let (node, endpoint) = (Node::Endpoint(index), topology.endpoint(index));
    link::set(endpoint, NODE_IFNAME, &["mtu", ENDPOINT_MTU])?;
    link::configure(endpoint, NODE_IFNAME, Some(&node.mac()), &node.cidrs())
}

/// The limit: e1's frames leave A's underlay as they are; B's underlay puts every frame into e2.
pub fn attach_limit(topology: &BenchTopology, programs: &mut BenchPrograms, config: &mut BenchConfig) -> Result<()> {
    let (a, b) = (topology.host(0).name(), topology.host(1).name());
    config.limit_egress_ifindex = ifindex_in(a, UNDERLAY)?;
    config.limit_wire_ifindex = ifindex_in(b, &host_port(2))?;
    endpoint_veth_like_xlans(topology, 0, 1, false)?;
    endpoint_veth_like_xlans(topology, 1, 2, false)?;
    programs.attach_tc_ingress(a, &host_port(1), bench_programs::LIMIT_EGRESS)?;
    programs.attach_tc_ingress(b, UNDERLAY, bench_programs::LIMIT_WIRE_TC)?;
    Ok(())
}
