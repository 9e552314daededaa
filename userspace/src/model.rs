//! What an instance has made, as typed values that cannot express an invalid combination: a network's driver
//! settings are one enum (a macvlan network has no VNI, a VXLAN network no host access), addresses are `IpAddr` and
//! `IpNet`, and the names of an endpoint's veth pair are derived in one place ([`VethNames`]). The store
//! (`store.rs`) keeps these as versioned JSON; the operations (`ops/`) return them, `Serialize`d by the front ends.
use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
    str::FromStr,
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    mac::Mac,
};

/// The schema version of the state file this release writes (see `store.rs` for the migrations).
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one instance has made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub schema: u32,
    pub networks: Vec<Network>,
    /// Mutations under way: recorded before they touch the host, removed once complete, so that the next command
    /// finishes or undoes one that was killed in the middle (see `session.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Pending>,
}

impl Default for State {
    fn default() -> Self {
        State { schema: SCHEMA_VERSION, networks: Vec::new(), pending: Vec::new() }
    }
}

/// A mutation under way, with what its undoing (or completing) needs to know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Pending {
    /// Undone: the network is not in `networks` yet.
    CreateNetwork { network: Network },
    /// Undone: the endpoint is not in its network yet; `names` were free when it started.
    AddEndpoint { network: String, endpoint: Endpoint, names: VethNames },
    /// Completed: the endpoint is no longer in its network.
    DeleteEndpoint { network: Network, endpoint: Endpoint },
    /// Completed: the network is no longer in `networks`.
    DeleteNetwork { network: Network },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    /// Key of the network in the datapath maps.
    pub id: u32,
    pub parent: Parent,
    /// Where frames from the parent are first handled (shared by the networks on one parent).
    pub hook: ParentHook,
    pub driver: DriverSettings,
    pub endpoints: Vec<Endpoint>,
    /// The number the next endpoint's veth pair is named by ([`VethNames`]).
    pub next_port: u32,
    /// Where endpoint addresses come from (`ipam.rs`); the endpoints' addresses are the allocations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<Subnet>,
}

/// One subnet of a network, as `docker network create --subnet --gateway --ip-range --aux-address` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub subnet: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Where addresses are allocated from (default: the whole subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
    /// Addresses the network's own hosts use (a router, a DNS server): never allocated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aux_addresses: Vec<AuxAddress>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuxAddress {
    pub name: String,
    pub address: IpAddr,
}

/// The uplink a network's endpoints share, as it was when the network was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// The link's name (`eth0` for a network on `eth0.10`, which is no link: the VLAN is done in BPF).
    pub name: String,
    pub ifindex: u32,
    pub mac: Mac,
    /// The 802.1Q VLAN the network is on, none for untagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

impl Parent {
    /// The VLAN as the datapath keys it (0: untagged).
    pub fn vlan_id(&self) -> u16 {
        self.vlan.unwrap_or(0)
    }
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&segment_name(&self.name, self.vlan))
    }
}

/// A link, or VLAN `vlan` of it as Docker and ip(8) name VLAN sub-interfaces (`eth0.10`).
pub fn segment_name(link: &str, vlan: Option<u16>) -> String {
    match vlan {
        Some(vlan) => format!("{link}.{vlan}"),
        None => link.to_string(),
    }
}

/// A network's driver and the settings only that driver has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DriverSettings {
    Macvlan(Macvlan),
    Ipvlan(Ipvlan),
    Vxlan(Vxlan),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Macvlan {
    pub mode: MacvlanMode,
    /// Endpoints and the host's address on the parent reach each other (bridge and private modes).
    pub host_access: bool,
    /// The source MACs whose frames a source-mode network's endpoints receive.
    pub source_macs: Vec<Mac>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipvlan {
    pub mode: IpvlanMode,
    pub flag: IpvlanFlag,
    /// Prefixes routed to an endpoint.
    pub routes: Vec<IpRoute>,
    /// The host's own addresses on the parent when the network was made: they stay the host's.
    pub host_addresses: Vec<IpAddr>,
}

/// A prefix routed to an ipvlan endpoint (the networks behind it, in l3 mode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRoute {
    pub prefix: IpNet,
    pub endpoint: EndpointRef,
}

/// A VXLAN network's settings, in the words of `ip link add … type vxlan` and `bridge fdb`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vxlan {
    pub vni: u32,
    /// The outer source address.
    pub local: Ipv4Addr,
    pub dstport: u16,
    /// Where broadcast and unknown unicast go.
    pub flood: Flood,
    pub learning: bool,
    /// Seconds a learned entry lives without traffic.
    pub ageing: u32,
    /// Static entries: MAC → VTEP.
    pub fdb: Vec<StaticFdb>,
    /// VTEP neighbour entries xlan added to the parent (and removes with the network).
    pub managed_neighbours: Vec<Ipv4Addr>,
}

/// A VXLAN network's flooding: head-end replication to a list of VTEPs, or one multicast group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flood {
    Remotes(Vec<Ipv4Addr>),
    Group(Ipv4Addr),
}

impl Flood {
    /// The flooding a user asked for: one multicast group, or head-end replication to `remotes` (none: to VTEPs
    /// added later by `fdb add`). Not both.
    pub fn new(group: Option<Ipv4Addr>, remotes: Vec<Ipv4Addr>) -> Result<Self> {
        match group {
            Some(_) if !remotes.is_empty() => Err(Error::RemoteWithGroup),
            Some(group) => Ok(Flood::Group(group)),
            None => Ok(Flood::Remotes(remotes)),
        }
    }

    /// The VTEPs broadcast is replicated to (none with a group).
    pub fn remotes(&self) -> &[Ipv4Addr] {
        match self {
            Flood::Remotes(remotes) => remotes,
            Flood::Group(_) => &[],
        }
    }

    pub fn group(&self) -> Option<Ipv4Addr> {
        match self {
            Flood::Group(group) => Some(*group),
            Flood::Remotes(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticFdb {
    pub mac: Mac,
    pub dst: Ipv4Addr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    #[serde(flatten)]
    pub at: EndpointRef,
    pub mac: Mac,
    pub addresses: Vec<IpNet>,
    /// The host-side end of the veth pair, which carries the endpoint's TC program.
    pub host: HostPort,
    /// The container the endpoint was made for (a CNI runtime's CNI_CONTAINERID): how the CNI plugin finds it again
    /// for DEL, CHECK and GC, when the namespace may be gone or given by another path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Who put the endpoint's end where it is (absent in the state: xlan, into `at.netns`).
    #[serde(default, skip_serializing_if = "Placement::is_netns")]
    pub placement: Placement,
}

/// Where the endpoint's end of the veth pair goes when it is made. The host-side end, the datapath's port, stays in
/// the host namespace either way: it is what the check and the doctor know the endpoint by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// xlan moves it into `at.netns`, names it `at.ifname` and configures it (MAC, addresses, routes, sysctls).
    #[default]
    Netns,
    /// Left in the host namespace, down, under `ifname` (with its MAC and MTU), for a container runtime to move into
    /// its container, rename and configure: Docker's remote driver hands it over as Join's `SrcName`. `at` is then
    /// the runtime's name for the endpoint (no namespace xlan could open).
    HandedOver { ifname: String },
}

impl Placement {
    pub fn is_netns(&self) -> bool {
        *self == Placement::Netns
    }

    /// The name the endpoint's end was handed over under, if it was.
    pub fn handed_over(&self) -> Option<&str> {
        match self {
            Placement::HandedOver { ifname } => Some(ifname),
            Placement::Netns => None,
        }
    }
}

/// Where an endpoint lives: its interface name inside its network namespace, given by name (/run/netns/NAME) or by
/// the path of a namespace file (`Netns::locate`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EndpointRef {
    pub netns: String,
    pub ifname: String,
}

impl fmt::Display for EndpointRef {
    /// `eth0@ns1`, as ip(8) names a link's peer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.ifname, self.netns)
    }
}

/// The host-side veth of an endpoint: a port of the datapath.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPort {
    pub ifname: String,
    pub ifindex: u32,
}

/// The names of an endpoint's veth pair: the host-side end, and the temporary name of the endpoint's end before it
/// moves into its namespace and takes its final name (which may well exist in the host namespace). Derived here and
/// nowhere else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VethNames {
    pub host: String,
    pub transit: String,
}

impl VethNames {
    pub fn for_port(network_id: u32, port: u32) -> Self {
        VethNames { host: format!("xl{network_id}p{port}"), transit: format!("xl{network_id}t{port}") }
    }

    /// True for a name `for_port` gives a host-side veth: how the doctor tells xlan's devices from anyone else's.
    pub fn is_host_name(name: &str) -> bool {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        name.strip_prefix("xl").and_then(|rest| rest.split_once('p')).is_some_and(|(id, n)| digits(id) && digits(n))
    }
}

impl Network {
    pub fn driver_kind(&self) -> Driver {
        match self.driver {
            DriverSettings::Macvlan(_) => Driver::Macvlan,
            DriverSettings::Ipvlan(_) => Driver::Ipvlan,
            DriverSettings::Vxlan(_) => Driver::Vxlan,
        }
    }

    pub fn macvlan(&self) -> Option<&Macvlan> {
        match &self.driver {
            DriverSettings::Macvlan(settings) => Some(settings),
            _ => None,
        }
    }

    pub fn ipvlan(&self) -> Option<&Ipvlan> {
        match &self.driver {
            DriverSettings::Ipvlan(settings) => Some(settings),
            _ => None,
        }
    }

    pub fn vxlan(&self) -> Option<&Vxlan> {
        match &self.driver {
            DriverSettings::Vxlan(settings) => Some(settings),
            _ => None,
        }
    }

    /// The macvlan mode the datapath forwards local traffic by: VXLAN and ipvlan networks bridge among their
    /// endpoints (ipvlan's flag says more, see the driver).
    pub fn macvlan_mode(&self) -> MacvlanMode {
        self.macvlan().map_or(MacvlanMode::Bridge, |settings| settings.mode)
    }

    pub fn endpoint(&self, at: &EndpointRef) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.at == *at)
    }

    /// The endpoint, or the error naming it.
    pub fn require_endpoint(&self, at: &EndpointRef) -> Result<&Endpoint> {
        self.endpoint(at).ok_or_else(|| Error::EndpointNotFound {
            network: self.name.clone(),
            netns: at.netns.clone(),
            ifname: at.ifname.clone(),
        })
    }

    /// The host-side ports of the network's endpoints.
    pub fn ports(&self) -> impl Iterator<Item = u32> + '_ {
        self.endpoints.iter().map(|e| e.host.ifindex)
    }
}

impl State {
    pub fn network(&self, name: &str) -> Result<&Network> {
        self.networks.iter().find(|n| n.name == name).ok_or_else(|| Error::NetworkNotFound(name.into()))
    }

    /// The named network, or every network without a name (what `show`-like commands list).
    pub fn networks_named(&self, name: Option<&str>) -> Result<Vec<&Network>> {
        match name {
            Some(name) => Ok(vec![self.network(name)?]),
            None => Ok(self.networks.iter().collect()),
        }
    }

    pub fn network_mut(&mut self, name: &str) -> Result<&mut Network> {
        self.networks.iter_mut().find(|n| n.name == name).ok_or_else(|| Error::NetworkNotFound(name.into()))
    }

    /// The endpoint at (netns, ifname) on any network of the instance.
    pub fn find_endpoint(&self, at: &EndpointRef) -> Option<(&Network, &Endpoint)> {
        self.networks.iter().find_map(|network| network.endpoint(at).map(|e| (network, e)))
    }

    /// The endpoint made for the container `container_id` with interface `ifname` (the CNI's attachment), on any
    /// network of the instance.
    pub fn find_container_endpoint(&self, container_id: &str, ifname: &str) -> Option<(&Network, &Endpoint)> {
        self.networks.iter().find_map(|network| {
            let owned = |e: &&Endpoint| e.container_id.as_deref() == Some(container_id) && e.at.ifname == ifname;
            network.endpoints.iter().find(owned).map(|e| (network, e))
        })
    }

    /// The networks on one parent interface, untagged and on its VLANs.
    pub fn on_parent(&self, parent_ifindex: u32) -> impl Iterator<Item = &Network> {
        self.networks.iter().filter(move |n| n.parent.ifindex == parent_ifindex)
    }

    /// The networks on one VLAN of a parent (`vlan` 0: untagged): one LAN segment.
    pub fn on_segment(&self, parent_ifindex: u32, vlan: u16) -> impl Iterator<Item = &Network> {
        self.on_parent(parent_ifindex).filter(move |n| n.parent.vlan_id() == vlan)
    }

    /// The lowest network id not in use.
    pub fn free_network_id(&self, max: u32) -> Result<u32> {
        (1..=max).find(|id| self.networks.iter().all(|n| n.id != *id)).ok_or(Error::TooManyNetworks(max))
    }
}

/// Words a user gives for an enum setting, parsed and printed the same way everywhere: the CLI's `--mode bridge`,
/// Docker's `-o macvlan_mode=bridge`, a CNI config's `"mode": "bridge"`.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every word, as "a|b|c".
            pub const WORDS: &'static str = concat!($($word, "|"),+);

            pub const fn word(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.word())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self> {
                match text.to_ascii_lowercase().as_str() {
                    $($word => Ok($name::$variant),)+
                    _ => Err(Error::UnknownWord {
                        what: $what,
                        text: text.into(),
                        expected: Self::WORDS.trim_end_matches('|'),
                    }),
                }
            }
        }
    };
}

words!(
    /// The kind of virtual LAN.
    Driver, "driver", { Macvlan => "macvlan", Vxlan => "vxlan", Ipvlan => "ipvlan" }
);

words!(
    /// macvlan modes, with the names ip-link(8) uses.
    #[derive(Default)]
    MacvlanMode, "macvlan mode", {
        /// Endpoints reach each other directly (the kernel's and Docker's default).
        #[default]
        Bridge => "bridge",
        /// Endpoints never reach each other.
        Private => "private",
        /// Endpoint-to-endpoint goes out of the parent and back only if the switch hairpins it.
        Vepa => "vepa",
        /// One endpoint that receives all of the parent's traffic.
        Passthru => "passthru",
        /// Endpoints receive only frames from allowed source MACs.
        Source => "source",
    }
);

words!(
    /// ipvlan modes, as `ip link add … type ipvlan mode l2|l3`.
    #[derive(Default)]
    IpvlanMode, "ipvlan mode", {
        #[default]
        /// Broadcast and multicast reach the endpoints, which answer ARP/ND themselves (Docker's and the CNI
        /// plugin's default; the kernel's own default is l3).
        L2 => "l2",
        /// The parent routes for the endpoints; no broadcast or multicast reaches them; xlan answers ARP/ND for
        /// their addresses with the parent's MAC.
        L3 => "l3",
    }
);

words!(
    /// ipvlan flags, as `ip link add … type ipvlan mode MODE bridge|private|vepa`.
    #[derive(Default)]
    IpvlanFlag, "ipvlan flag", { #[default] Bridge => "bridge", Private => "private", Vepa => "vepa" }
);

words!(
    /// The hook that first handles the parent's incoming frames.
    ParentHook, "parent hook", {
        /// XDP on the parent (and an XDP_PASS stub on every endpoint, which native redirect into a veth needs).
        Xdp => "xdp",
        /// tcx ingress only: unicast goes into the endpoint by `bpf_redirect_peer`, GSO packets intact.
        Tc => "tc",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_parse_and_print_alike() {
        assert_eq!("Passthru".parse::<MacvlanMode>().unwrap(), MacvlanMode::Passthru);
        assert_eq!(MacvlanMode::Passthru.to_string(), "passthru");
        assert_eq!(IpvlanMode::WORDS, "l2|l3|");
        let error = "l4".parse::<IpvlanMode>().unwrap_err().to_string();
        assert_eq!(error, "unknown ipvlan mode \"l4\": l2|l3");
    }

    #[test]
    fn veth_names_are_derived_from_the_port() {
        let names = VethNames::for_port(3, 12);
        assert_eq!((names.host.as_str(), names.transit.as_str()), ("xl3p12", "xl3t12"));
        assert!(VethNames::is_host_name(&names.host));
        for other in [names.transit.as_str(), "eth0", "xlp0", "xl1p", "xl1p0x", "uplink"] {
            assert!(!VethNames::is_host_name(other), "{other}");
        }
    }

    #[test]
    fn driver_settings_serialise_with_their_kind() {
        let settings = DriverSettings::Macvlan(Macvlan {
            mode: MacvlanMode::Source,
            host_access: false,
            source_macs: vec![Mac([2, 0, 0, 0, 0, 1])],
        });
        let json = serde_json::to_value(&settings).unwrap();
        assert_eq!(json["kind"], "macvlan");
        assert_eq!(json["mode"], "source");
        assert_eq!(serde_json::from_value::<DriverSettings>(json).unwrap(), settings);
    }
}
