//! The configurations the fuzzer runs the programs under: every driver and mode, networks on the fixture's `parent`
//! and a second parent, `parent2`, untagged and on 802.1Q VLANs of them, so that crossing between parents and VLANs
//! can be seen, ports in no network, and MACs and addresses that two networks share. Networks are the product's model
//! values, put into the maps with the product's own code (`Fixture::install`, `driver::put_parent_entries`,
//! `driver::macvlan::allow_source`, `driver::ipvlan::learn_prefix`, `driver::vxlan::remote_entry`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xlan::{
    driver::{self, vxlan::ip_key},
    mac::Mac,
    model::{
        DriverSettings, Endpoint, EndpointRef, Flood, HostPort, IpRoute, Ipvlan, IpvlanFlag, IpvlanMode, Macvlan,
        MacvlanMode, Network, Parent, ParentHook, State, StaticFdb, Vxlan,
    },
};

use super::{
    frames::{Palette, VxlanTarget},
    world::{ip_octets, World},
};
use crate::common::{ifindex, on_vlan, Fixture, ENDPOINT_MACS, OUTSIDE_MAC, PARENT_MAC};

pub const PARENT2_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 3];
/// MACs of endpoints behind remote VTEPs (and outsiders on a macvlan wire).
pub const FAR_MACS: [[u8; 6]; 4] =
    [[0x02, 0xdd, 0, 0, 0, 1], [0x02, 0xdd, 0, 0, 0, 2], [0x02, 0xdd, 0, 0, 0, 3], [0x02, 0xdd, 0, 0, 0, 4]];
const MORE_MACS: [[u8; 6]; 4] = [
    [0x02, 0x77, 0, 0, 0, 0x14],
    [0x02, 0x77, 0, 0, 0, 0x15],
    [0x02, 0x77, 0, 0, 0, 0x16],
    [0x02, 0x77, 0, 0, 0, 0x17],
];
const REMOTE_HOP_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 2];
/// Ports 1-7: the fixture's three and four more.
pub const PORTS: usize = 7;

const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const LOCAL2: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
/// Remote VTEPs: resolved, resolved, configured but not resolved yet (an all-zero MAC, as `manage_neighbour` leaves
/// it), not resolved at all.
const REMOTES: [Ipv4Addr; 4] =
    [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4), Ipv4Addr::new(10, 0, 0, 5)];
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
/// A VLAN no network of any scenario is on.
const UNUSED_VLAN: u16 = 99;

pub struct Scenario {
    pub name: &'static str,
    pub fixture: Fixture,
    pub world: World,
    pub palette: Palette,
    pub parents: [u32; 2],
    /// Devices that are neither parents nor ports (the parents' peers).
    pub others: Vec<u32>,
    /// The endpoints' own ends (where the XDP pass stub runs).
    pub endpoint_ends: Vec<u32>,
    pub names: Vec<(u32, String)>,
}

impl Scenario {
    pub fn device_name(&self, ifindex: u32) -> String {
        self.names.iter().find(|(i, _)| *i == ifindex).map_or(format!("ifindex {ifindex}"), |(_, n)| n.clone())
    }
}

/// The fixture with a second parent (`parent2`, peer `wire2`) and ports 4-7 (peers ep4-ep7), all with counters.
struct Base {
    fixture: Fixture,
    parent2: u32,
    ports: [u32; PORTS],
}

fn base() -> Base {
    let fixture = Fixture::bare();
    fixture.ip(&["link", "add", "parent2", "type", "veth", "peer", "name", "wire2"]);
    for n in 4..=PORTS {
        fixture.ip(&["link", "add", &format!("port{n}"), "type", "veth", "peer", "name", &format!("ep{n}")]);
    }
    for device in ["parent2", "wire2"]
        .into_iter()
        .map(String::from)
        .chain((4..=PORTS).flat_map(|n| [format!("port{n}"), format!("ep{n}")]))
    {
        fixture.ip(&["link", "set", &device, "up"]);
    }
    let ports: [u32; PORTS] = std::array::from_fn(|i| ifindex(&format!("port{}", i + 1)));
    for port in &ports[3..] {
        fixture.tables().reset_stats(*port).unwrap();
    }
    Base { parent2: ifindex("parent2"), ports, fixture }
}

impl Base {
    /// Port `n` (1-7) as an endpoint.
    fn endpoint(&self, n: usize, mac: [u8; 6], addresses: &[&str]) -> Endpoint {
        Endpoint {
            at: EndpointRef { netns: self.fixture.netns.name().into(), ifname: format!("ep{n}") },
            mac: Mac(mac),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            host: HostPort { ifname: format!("port{n}"), ifindex: self.ports[n - 1] },
            container_id: None,
            placement: Default::default(),
        }
    }

    fn network(&self, id: u32, second_parent: bool, driver: DriverSettings, endpoints: Vec<Endpoint>) -> Network {
        let parent = if second_parent {
            Parent { name: "parent2".into(), ifindex: self.parent2, mac: Mac(PARENT2_MAC), vlan: None }
        } else {
            Parent { name: "parent".into(), ifindex: self.fixture.parent, mac: Mac(PARENT_MAC), vlan: None }
        };
        Network {
            name: format!("net{id}"),
            id,
            parent,
            hook: ParentHook::Xdp,
            driver,
            next_port: endpoints.len() as u32,
            subnets: Vec::new(),
            endpoints,
        }
    }

    /// A macvlan network of `mode` on VLAN `vlan` of the parent, its endpoints ports `n` with MAC `mac`.
    fn vlan_network(&self, id: u32, vlan: u16, mode: MacvlanMode, endpoints: [(usize, [u8; 6]); 2]) -> Network {
        let endpoints = endpoints.iter().map(|(n, mac)| self.endpoint(*n, *mac, &[])).collect();
        on_vlan(self.network(id, false, macvlan(mode, false, &[]), endpoints), vlan)
    }

    /// Fills the maps as `network create`, `endpoint add`, `macaddr add`, `route add` and `fdb add` do, and makes the
    /// scenario.
    fn finish(self, name: &'static str, networks: Vec<Network>) -> Scenario {
        let f = self.fixture;
        f.install(&networks);
        let tables = f.tables();
        let state = State { networks: networks.clone(), ..State::default() };
        driver::put_parent_entries(&tables, &state, self.parent2).unwrap();
        let mut palette = Palette {
            macs: vec![OUTSIDE_MAC, PARENT_MAC, PARENT2_MAC, REMOTE_HOP_MAC],
            v4: vec![[10, 0, 0, 255], [10, 123, 0, 77], [10, 0, 0, 200]],
            v6: vec![Ipv6Addr::new(0xfd00, 0x123, 0, 0, 0, 0, 0, 5).octets()],
            vnis: vec![42],
            vxlan_ports: vec![4789],
            vtep_locals: vec![LOCAL.octets(), LOCAL2.octets()],
            vtep_remotes: REMOTES.iter().map(|r| r.octets()).collect(),
            vxlan_networks: Vec::new(),
            vxlan_share: 10,
            vids: Vec::new(),
        };
        palette.macs.extend(FAR_MACS);
        for network in &networks {
            for endpoint in &network.endpoints {
                palette.macs.push(endpoint.mac.0);
                for address in &endpoint.addresses {
                    match address.addr() {
                        IpAddr::V4(v4) => palette.v4.push(v4.octets()),
                        IpAddr::V6(v6) => palette.v6.push(v6.octets()),
                    }
                }
            }
            match &network.driver {
                DriverSettings::Macvlan(settings) => {
                    for mac in &settings.source_macs {
                        driver::macvlan::allow_source(&tables, network, *mac).unwrap();
                    }
                }
                DriverSettings::Ipvlan(settings) => {
                    for route in &settings.routes {
                        let port = network.endpoint(&route.endpoint).unwrap().host.ifindex;
                        driver::ipvlan::learn_prefix(&tables, network, &route.prefix, port).unwrap();
                    }
                    for host in &settings.host_addresses {
                        match ip_octets(*host) {
                            v if host.is_ipv4() => palette.v4.push(v[12..].try_into().unwrap()),
                            v => palette.v6.push(v),
                        }
                    }
                }
                DriverSettings::Vxlan(settings) => {
                    for entry in &settings.fdb {
                        tables
                            .put_fdb(driver::vxlan::mac_key(network, entry.mac), driver::vxlan::remote_entry(entry.dst))
                            .unwrap();
                    }
                    palette.vnis.push(settings.vni);
                    palette.vxlan_ports.push(settings.dstport);
                    palette.vtep_locals.extend(settings.flood.group().map(|g| g.octets()));
                    palette.vxlan_share = 60;
                    for dst in [Some(settings.local), settings.flood.group()].into_iter().flatten() {
                        palette.vxlan_networks.push(VxlanTarget {
                            vni: settings.vni,
                            port: settings.dstport,
                            dst: dst.octets(),
                            macs: network.endpoints.iter().map(|e| e.mac.0).collect(),
                        });
                    }
                }
            }
        }
        palette.vids = networks.iter().filter_map(|n| n.parent.vlan).collect();
        if !palette.vids.is_empty() {
            // A VLAN no network is on, next to theirs.
            palette.vids.push(UNUSED_VLAN);
        }
        palette.vids.sort_unstable();
        palette.vids.dedup();
        palette.macs.dedup();
        palette.vnis.sort_unstable();
        palette.vnis.dedup();
        palette.vxlan_ports.sort_unstable();
        palette.vxlan_ports.dedup();
        // A host that does not forward (a new namespace may inherit forwarding from the host's): bpf_fib_lookup
        // answers nothing, the VTEPs' next hops below are all there is. With no addresses on the namespace's devices
        // either, its stack sends nothing of its own: the fuzzer counts what the devices transmit.
        let status = std::process::Command::new("ip")
            .args(["netns", "exec", f.netns.name(), "sysctl", "-qw", "net.ipv4.conf.all.forwarding=0"])
            .status()
            .unwrap();
        assert!(status.success(), "turn forwarding off in {}", f.netns.name());
        if networks.iter().any(|n| n.vxlan().is_some()) {
            // The next hops `xlan` reads from the VTEPs' managed neighbour entries: two resolved, one still the
            // all-zero placeholder, one with no entry at all.
            tables.put_vtep_mac(ip_key(REMOTES[0]), REMOTE_HOP_MAC).unwrap();
            tables.put_vtep_mac(ip_key(REMOTES[1]), REMOTE_HOP_MAC).unwrap();
            tables.put_vtep_mac(ip_key(REMOTES[2]), [0; 6]).unwrap();
        }
        let mut names = vec![(f.parent, "parent".to_string()), (self.parent2, "parent2".to_string())];
        names.extend(self.ports.iter().enumerate().map(|(i, p)| (*p, format!("port{}", i + 1))));
        let others = vec![ifindex("wire"), ifindex("wire2")];
        names.push((others[0], "wire".into()));
        names.push((others[1], "wire2".into()));
        let endpoint_ends: Vec<u32> = (1..=PORTS).map(|n| ifindex(&format!("ep{n}"))).collect();
        names.extend(endpoint_ends.iter().enumerate().map(|(i, e)| (*e, format!("ep{}", i + 1))));
        Scenario {
            name,
            parents: [f.parent, self.parent2],
            world: World { networks, ports: self.ports.to_vec(), parents: vec![f.parent, self.parent2] },
            palette,
            others,
            endpoint_ends,
            names,
            fixture: f,
        }
    }
}

fn macvlan(mode: MacvlanMode, host_access: bool, source_macs: &[[u8; 6]]) -> DriverSettings {
    DriverSettings::Macvlan(Macvlan { mode, host_access, source_macs: source_macs.iter().map(|m| Mac(*m)).collect() })
}

/// Two macvlan networks, `first` on the parent with ports 1-3 and `second` on parent2 with ports 4-5 (passthru:
/// port 4 alone, with the parent's MAC); the others are in no network. Port 4 has port 1's MAC: one MAC in two
/// networks.
fn macvlan_pair(name: &'static str, first: DriverSettings, second: DriverSettings) -> Scenario {
    let b = base();
    let one = (1..=3).map(|n| b.endpoint(n, ENDPOINT_MACS[n - 1], &[])).collect();
    let passthru = matches!(&second, DriverSettings::Macvlan(m) if m.mode == MacvlanMode::Passthru);
    let two = if passthru {
        vec![b.endpoint(4, PARENT2_MAC, &[])]
    } else {
        vec![b.endpoint(4, ENDPOINT_MACS[0], &[]), b.endpoint(5, MORE_MACS[1], &[])]
    };
    let networks = vec![b.network(7, false, first, one), b.network(8, true, second, two)];
    b.finish(name, networks)
}

fn ipvlan(mode: IpvlanMode, flag: IpvlanFlag) -> Ipvlan {
    Ipvlan { mode, flag, routes: Vec::new(), host_addresses: Vec::new() }
}

/// Two ipvlan networks: on the parent with ports 1-3 (port 3 on a subnet of its own), routes and the host's
/// addresses; on parent2 with ports 4-5, port 4 owning port 1's addresses (one address on two parents).
fn ipvlan_pair(name: &'static str, first: (IpvlanMode, IpvlanFlag), second: (IpvlanMode, IpvlanFlag)) -> Scenario {
    let b = base();
    let one = vec![
        b.endpoint(1, PARENT_MAC, &["10.0.0.11/24", "fd00::11/64"]),
        b.endpoint(2, PARENT_MAC, &["10.0.0.12/24", "fd00::12/64"]),
        b.endpoint(3, PARENT_MAC, &["10.9.0.13/24", "fd09::13/64"]),
    ];
    let route =
        |prefix: &str, endpoint: &Endpoint| IpRoute { prefix: prefix.parse().unwrap(), endpoint: endpoint.at.clone() };
    let mut first = ipvlan(first.0, first.1);
    first.routes =
        vec![route("10.123.0.0/24", &one[1]), route("10.0.0.128/25", &one[2]), route("fd00:123::/64", &one[0])];
    first.host_addresses = vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()];
    let two = vec![
        b.endpoint(4, PARENT2_MAC, &["10.0.0.11/24", "fd00::11/64"]),
        b.endpoint(5, PARENT2_MAC, &["10.0.0.15/24", "fd00::15/64"]),
    ];
    let mut second = ipvlan(second.0, second.1);
    second.routes = vec![route("10.0.0.128/25", &two[1])];
    second.host_addresses = vec!["10.0.0.3".parse().unwrap()];
    let networks = vec![
        b.network(7, false, DriverSettings::Ipvlan(first), one),
        b.network(8, true, DriverSettings::Ipvlan(second), two),
    ];
    b.finish(name, networks)
}

fn vxlan(vni: u32, local: Ipv4Addr, dstport: u16, flood: Flood, learning: bool) -> Vxlan {
    Vxlan { vni, local, dstport, flood, learning, ageing: 300, fdb: Vec::new(), managed_neighbours: Vec::new() }
}

/// VNI 42 (port 4789, learning, four remotes in every state of resolution, a static remote entry) with ports 1-2 and
/// VNI 43 (port 8472, a multicast group, no learning) with port 3 on the parent; VNI 42 again on parent2 with ports
/// 4-5 (port 4 with port 1's MAC).
fn vxlan_scenario() -> Scenario {
    let b = base();
    let mut a = vxlan(42, LOCAL, 4789, Flood::Remotes(REMOTES.to_vec()), true);
    a.fdb = vec![StaticFdb { mac: Mac(FAR_MACS[3]), dst: REMOTES[1] }];
    let networks = vec![
        b.network(
            7,
            false,
            DriverSettings::Vxlan(a),
            vec![b.endpoint(1, ENDPOINT_MACS[0], &[]), b.endpoint(2, ENDPOINT_MACS[1], &[])],
        ),
        b.network(
            8,
            false,
            DriverSettings::Vxlan(vxlan(43, LOCAL, 8472, Flood::Group(GROUP), false)),
            vec![b.endpoint(3, ENDPOINT_MACS[2], &[])],
        ),
        b.network(
            9,
            true,
            DriverSettings::Vxlan(vxlan(42, LOCAL2, 4789, Flood::Remotes(vec![REMOTES[0]]), true)),
            vec![b.endpoint(4, ENDPOINT_MACS[0], &[]), b.endpoint(5, MORE_MACS[1], &[])],
        ),
    ];
    b.finish("vxlan: VNI 42 and 43 on one parent, 42 again on another", networks)
}

/// What one parent may carry at once: a macvlan bridge network with host access and a VXLAN network on the parent,
/// an ipvlan l2 network and another VXLAN network on parent2.
fn mixed_scenario() -> Scenario {
    let b = base();
    let networks = vec![
        b.network(
            7,
            false,
            macvlan(MacvlanMode::Bridge, true, &[]),
            vec![b.endpoint(1, ENDPOINT_MACS[0], &[]), b.endpoint(2, ENDPOINT_MACS[1], &[])],
        ),
        b.network(
            8,
            false,
            DriverSettings::Vxlan(vxlan(42, LOCAL, 4789, Flood::Remotes(REMOTES[..2].to_vec()), true)),
            vec![b.endpoint(3, ENDPOINT_MACS[2], &[])],
        ),
        b.network(
            9,
            true,
            DriverSettings::Ipvlan(ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge)),
            vec![
                b.endpoint(4, PARENT2_MAC, &["10.0.0.11/24", "fd00::11/64"]),
                b.endpoint(5, PARENT2_MAC, &["10.0.0.15/24"]),
            ],
        ),
        b.network(
            10,
            true,
            DriverSettings::Vxlan(vxlan(43, LOCAL2, 4789, Flood::Remotes(vec![REMOTES[0]]), true)),
            vec![b.endpoint(6, ENDPOINT_MACS[0], &[])],
        ),
    ];
    b.finish("mixed: macvlan + vxlan on one parent, ipvlan + vxlan on another", networks)
}

/// 802.1Q VLANs of macvlan networks: on the parent a bridge network with host access untagged (ports 1-2), a private
/// one on VLAN 10 (ports 3-4) and a bridge one on VLAN 20 (ports 5-6); a vepa one on VLAN 10 of parent2 (port 7).
/// Ports 1, 3, 5 and 7 share one MAC: only the frame's VLAN (and parent) tells their networks apart.
fn vlan_macvlan_scenario() -> Scenario {
    let b = base();
    let shared = ENDPOINT_MACS[0];
    let networks = vec![
        b.network(
            7,
            false,
            macvlan(MacvlanMode::Bridge, true, &[]),
            vec![b.endpoint(1, shared, &[]), b.endpoint(2, ENDPOINT_MACS[1], &[])],
        ),
        b.vlan_network(8, 10, MacvlanMode::Private, [(3, shared), (4, ENDPOINT_MACS[2])]),
        b.vlan_network(9, 20, MacvlanMode::Bridge, [(5, shared), (6, MORE_MACS[1])]),
        on_vlan(b.network(10, true, macvlan(MacvlanMode::Vepa, false, &[]), vec![b.endpoint(7, shared, &[])]), 10),
    ];
    b.finish(
        "vlan: macvlan bridge untagged, private on VLAN 10, bridge on VLAN 20; vepa on VLAN 10 of parent2",
        networks,
    )
}

/// 802.1Q VLANs of ipvlan networks with the same addresses: on the parent l2 bridge on VLAN 10 (ports 1-2, a route
/// behind port 2) and l2 private on VLAN 20 (ports 3-4, the same addresses), l3 bridge untagged (port 5, port 1's
/// addresses again); on parent2 VXLAN untagged (port 6) next to a macvlan source network on VLAN 30 (port 7), so
/// that VXLAN is left to TC there.
fn vlan_ipvlan_scenario() -> Scenario {
    let b = base();
    let pair = |first: usize| {
        vec![
            b.endpoint(first, PARENT_MAC, &["10.0.0.11/24", "fd00::11/64"]),
            b.endpoint(first + 1, PARENT_MAC, &["10.0.0.12/24", "fd00::12/64"]),
        ]
    };
    let ten = pair(1);
    let mut bridge = ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge);
    bridge.routes = vec![IpRoute { prefix: "10.123.0.0/24".parse().unwrap(), endpoint: ten[1].at.clone() }];
    let mut untagged = ipvlan(IpvlanMode::L3, IpvlanFlag::Bridge);
    untagged.host_addresses = vec!["10.0.0.2".parse().unwrap()];
    let networks = vec![
        on_vlan(b.network(7, false, DriverSettings::Ipvlan(bridge), ten), 10),
        on_vlan(b.network(8, false, DriverSettings::Ipvlan(ipvlan(IpvlanMode::L2, IpvlanFlag::Private)), pair(3)), 20),
        b.network(
            9,
            false,
            DriverSettings::Ipvlan(untagged),
            vec![b.endpoint(5, PARENT_MAC, &["10.0.0.11/24", "fd00::11/64"])],
        ),
        b.network(
            10,
            true,
            DriverSettings::Vxlan(vxlan(42, LOCAL2, 4789, Flood::Remotes(vec![REMOTES[0]]), true)),
            vec![b.endpoint(6, ENDPOINT_MACS[0], &[])],
        ),
        on_vlan(
            b.network(
                11,
                true,
                macvlan(MacvlanMode::Source, false, &[OUTSIDE_MAC]),
                vec![b.endpoint(7, ENDPOINT_MACS[0], &[])],
            ),
            30,
        ),
    ];
    b.finish("vlan: ipvlan l2 bridge on VLAN 10, l2 private on VLAN 20 (same addresses), l3 untagged; vxlan untagged + macvlan source on VLAN 30 of parent2", networks)
}

/// The modes the other VLAN scenarios leave out: on the parent ipvlan l2 vepa on VLAN 10 (ports 1-2, hairpins through
/// the switch) and macvlan passthru on VLAN 20 (port 3, the parent's MAC) next to an untagged macvlan private network
/// (ports 4-5); on parent2 macvlan bridge on VLAN 4094, the highest (port 6), next to untagged ipvlan l2 (port 7, the
/// address port 1 has on VLAN 10).
fn vlan_modes_scenario() -> Scenario {
    let b = base();
    let v4 = |n: usize, last: u8| b.endpoint(n, PARENT_MAC, &[&format!("10.0.0.{last}/24")]);
    let networks = vec![
        on_vlan(
            b.network(
                7,
                false,
                DriverSettings::Ipvlan(ipvlan(IpvlanMode::L2, IpvlanFlag::Vepa)),
                vec![v4(1, 11), v4(2, 12)],
            ),
            10,
        ),
        on_vlan(
            b.network(8, false, macvlan(MacvlanMode::Passthru, false, &[]), vec![b.endpoint(3, PARENT_MAC, &[])]),
            20,
        ),
        b.network(
            9,
            false,
            macvlan(MacvlanMode::Private, false, &[]),
            vec![b.endpoint(4, ENDPOINT_MACS[0], &[]), b.endpoint(5, ENDPOINT_MACS[1], &[])],
        ),
        on_vlan(
            b.network(10, true, macvlan(MacvlanMode::Bridge, false, &[]), vec![b.endpoint(6, ENDPOINT_MACS[0], &[])]),
            4094,
        ),
        b.network(
            11,
            true,
            DriverSettings::Ipvlan(ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge)),
            vec![b.endpoint(7, PARENT2_MAC, &["10.0.0.11/24"])],
        ),
    ];
    b.finish("vlan: ipvlan l2 vepa on VLAN 10, macvlan passthru on VLAN 20, private untagged; bridge on VLAN 4094 and ipvlan l2 untagged on parent2", networks)
}

/// Makes a scenario: a namespace, a datapath and networks of its own.
pub type Make = fn() -> Scenario;

/// Every scenario, each built when it is its turn.
pub fn all() -> Vec<Make> {
    vec![
        || {
            macvlan_pair(
                "macvlan: bridge / private",
                macvlan(MacvlanMode::Bridge, false, &[]),
                macvlan(MacvlanMode::Private, false, &[]),
            )
        },
        || {
            macvlan_pair(
                "macvlan: vepa / source",
                macvlan(MacvlanMode::Vepa, false, &[]),
                macvlan(MacvlanMode::Source, false, &[OUTSIDE_MAC, FAR_MACS[0]]),
            )
        },
        || {
            macvlan_pair(
                "macvlan: bridge host-access / passthru",
                macvlan(MacvlanMode::Bridge, true, &[]),
                macvlan(MacvlanMode::Passthru, false, &[]),
            )
        },
        || {
            macvlan_pair(
                "macvlan: private host-access / bridge",
                macvlan(MacvlanMode::Private, true, &[]),
                macvlan(MacvlanMode::Bridge, false, &[]),
            )
        },
        || {
            ipvlan_pair(
                "ipvlan: l2 bridge / l3 private",
                (IpvlanMode::L2, IpvlanFlag::Bridge),
                (IpvlanMode::L3, IpvlanFlag::Private),
            )
        },
        || {
            ipvlan_pair(
                "ipvlan: l2 private / l3 vepa",
                (IpvlanMode::L2, IpvlanFlag::Private),
                (IpvlanMode::L3, IpvlanFlag::Vepa),
            )
        },
        || {
            ipvlan_pair(
                "ipvlan: l2 vepa / l3 bridge",
                (IpvlanMode::L2, IpvlanFlag::Vepa),
                (IpvlanMode::L3, IpvlanFlag::Bridge),
            )
        },
        vxlan_scenario,
        mixed_scenario,
        vlan_macvlan_scenario,
        vlan_ipvlan_scenario,
        vlan_modes_scenario,
    ]
}
