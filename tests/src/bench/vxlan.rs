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

use anyhow::{bail, Result};
use datapath_common::bench::{program_names as bench_programs, BenchConfig};

use super::programs::BenchPrograms;
use super::topology::{
    add_endpoint_veth, configure, host_port, ifindex_in, nic_like, sysctl, Addressing, Backend, BenchTopology,
    XlanInstance,
};
use crate::topology::{Node, NETWORK, NODE_IFNAME};

const UNDERLAY: &str = "ul";
const VNI: &str = "42";
const DSTPORT: &str = "4789";
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

fn vtep(host: usize) -> String {
    format!("10.99.0.{}", host + 1)
}

pub fn build(topology: &mut BenchTopology) -> Result<()> {
    let sides = match topology.backend {
        Backend::Kernel => [Side::Kernel, Side::Kernel],
        Backend::Xlan => [Side::Xlan, Side::Xlan],
        Backend::Mixed => [Side::Xlan, Side::Kernel],
        Backend::Limit => [Side::Limit, Side::Limit],
        other => bail!("vxlan has no {} backend", other.name()),
    };
    let (a, b) = (topology.host(0), topology.host(1));
    a.ip(&["link", "add", UNDERLAY, "type", "veth", "peer", "name", UNDERLAY, "netns", b.name()])?;
    for host in 0..2 {
        let netns = topology.host(host);
        let mac = format!("02:99:00:00:00:{:02x}", host + 1);
        configure(netns, UNDERLAY, Some(&mac), &[format!("{}/24", vtep(host))])?;
        nic_like(netns, UNDERLAY)?;
        let name = netns.name().to_string();
        topology.links.push((name, UNDERLAY.to_string()));
    }
    for (host, side) in sides.into_iter().enumerate() {
        let index = host as u8 + 1;
        let node = Node::Endpoint(index);
        let addresses = [format!("{}/24", node.ipv4()), format!("{}/64", node.ipv6())];
        let remote = vtep(1 - host);
        match side {
            Side::Xlan => {
                let mut xlan = XlanInstance::new(topology.host(host))?;
                let args = ["--driver", "vxlan", "--vni", VNI, "--parent", UNDERLAY, "--remote", &remote];
                xlan.create_network(NETWORK, &args)?;
                let netns = topology.endpoint(index).name().to_string();
                let mac = node.mac();
                let args = ["endpoint", "add", NETWORK, "--netns", &netns, "--mac", &mac, "--ip", &addresses[0]];
                xlan.run(&[&args[..], &["--ip", &addresses[1]]].concat())?;
                topology.xlan.push(xlan);
            }
            Side::Kernel => {
                let netns = topology.host(host);
                let local = vtep(host);
                netns.ip(&[
                    "link",
                    "add",
                    KERNEL_VXLAN,
                    "type",
                    "vxlan",
                    "id",
                    VNI,
                    "local",
                    &local,
                    "remote",
                    &remote,
                    "dstport",
                    DSTPORT,
                    "dev",
                    UNDERLAY,
                ])?;
                netns.ip(&["link", "add", KERNEL_BRIDGE, "type", "bridge", "stp_state", "0"])?;
                bridge_without_netfilter(netns)?;
                netns.ip(&["link", "set", KERNEL_VXLAN, "master", KERNEL_BRIDGE, "up"])?;
                add_endpoint_veth(topology, host, index)?;
                let netns = topology.host(host);
                netns.ip(&["link", "set", &host_port(index), "mtu", ENDPOINT_MTU, "master", KERNEL_BRIDGE])?;
                netns.ip(&["link", "set", KERNEL_BRIDGE, "up"])?;
                topology.endpoint(index).ip(&["link", "set", NODE_IFNAME, "mtu", ENDPOINT_MTU])?;
                configure(topology.endpoint(index), NODE_IFNAME, Some(&node.mac()), &addresses)?;
            }
            Side::Limit => {
                add_endpoint_veth(topology, host, index)?;
                topology.host(host).ip(&["link", "set", &host_port(index), "mtu", ENDPOINT_MTU])?;
                topology.endpoint(index).ip(&["link", "set", NODE_IFNAME, "mtu", ENDPOINT_MTU])?;
                configure(topology.endpoint(index), NODE_IFNAME, Some(&node.mac()), &addresses)?;
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
fn bridge_without_netfilter(netns: &crate::netns::Netns) -> Result<()> {
    for table in ["arptables", "iptables", "ip6tables"] {
        let setting = format!("net.bridge.bridge-nf-call-{table}=0");
        if std::path::Path::new("/proc/sys/net/bridge").exists() {
            sysctl(netns, &setting)?;
        }
    }
    Ok(())
}

/// The limit: e1's frames leave A's underlay as they are; B's underlay puts every frame into e2.
pub fn attach_limit(topology: &BenchTopology, programs: &mut BenchPrograms, config: &mut BenchConfig) -> Result<()> {
    let (a, b) = (topology.host(0).name(), topology.host(1).name());
    config.limit_egress_ifindex = ifindex_in(a, UNDERLAY)?;
    config.limit_wire_ifindex = ifindex_in(b, &host_port(2))?;
    programs.attach_tc_ingress(a, &host_port(1), bench_programs::LIMIT_EGRESS)?;
    programs.attach_tc_ingress(b, UNDERLAY, bench_programs::LIMIT_WIRE_TC)?;
    Ok(())
}
