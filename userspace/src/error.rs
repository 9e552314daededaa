//! The library's typed errors, in its own words. They name the setting that is wrong ([`Setting`]) rather than a
//! command-line flag, a Docker option or a CNI key: each front end phrases them for its user. Underlying errors
//! (I/O, netlink, aya) are kept as sources, never flattened into strings.
use std::{fmt, io, path::PathBuf};

use thiserror::Error;

use crate::{mac::Mac, model::Driver};

/// A setting a user gives to a network or endpoint, whatever the front end calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Mode,
    HostAccess,
    IpvlanFlag,
    ParentHook,
    Vni,
    Local,
    Remote,
    Group,
    Dstport,
    Learning,
    Ageing,
    Mac,
    Address,
    Vtep,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Setting::Mode => "mode",
            Setting::HostAccess => "host access",
            Setting::IpvlanFlag => "ipvlan flag",
            Setting::ParentHook => "parent hook",
            Setting::Vni => "VNI",
            Setting::Local => "local VTEP address",
            Setting::Remote => "remote VTEP",
            Setting::Group => "multicast group",
            Setting::Dstport => "UDP port",
            Setting::Learning => "learning",
            Setting::Ageing => "ageing time",
            Setting::Mac => "MAC address",
            Setting::Address => "IP address",
            Setting::Vtep => "VTEP address",
        })
    }
}

/// Who holds an address an ipvlan endpoint or route asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressOwner {
    /// One of the host's own addresses on the parent.
    Host,
    /// An endpoint or route of this ipvlan network.
    Network(String),
}

impl fmt::Display for AddressOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressOwner::Host => f.write_str("the host's own"),
            AddressOwner::Network(name) => write!(f, "network \"{name}\""),
        }
    }
}

/// An underlying failure kept as the source of an [`Error`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Error)]
pub enum Error {
    #[error("invalid MAC address \"{text}\": {reason}")]
    InvalidMac { text: String, reason: &'static str },
    #[error("invalid address {address}: {reason}")]
    InvalidAddress { address: String, reason: &'static str },
    #[error("invalid interface name \"{0}\": 1-15 characters, no '/', ':' or whitespace")]
    InvalidIfname(String),
    #[error("invalid network name \"{0}\": 1-64 characters of letters, digits, '-', '_' and '.'")]
    InvalidName(String),
    #[error("unknown {what} \"{text}\": {expected}")]
    UnknownWord { what: &'static str, text: String, expected: &'static str },
    #[error("network \"{0}\" already exists")]
    NetworkExists(String),
    #[error("network \"{0}\" not found")]
    NetworkNotFound(String),
    #[error("parent {parent} already carries network \"{network}\"")]
    ParentInUse { parent: String, network: String },
    #[error(
        "parent {parent} already carries {driver} network \"{network}\": macvlan and ipvlan do not share a parent"
    )]
    ParentTaken { parent: String, driver: Driver, network: String },
    #[error("device \"{device}\" does not exist in {place}")]
    NoSuchDevice { device: String, place: String },
    #[error("{parent} cannot be a parent: it is {reason}")]
    UnsuitableParent { parent: String, reason: &'static str },
    #[error("UDP port 0 is not a port (the kernel would read it as its default)")]
    InvalidPort,
    #[error("VLAN {vlan} is not a VLAN ID (1-4094)")]
    InvalidVlan { vlan: String },
    #[error("parent {parent} names VLAN {named}, but VLAN {asked} was asked for")]
    VlanMismatch { parent: String, named: u16, asked: u16 },
    #[error("{what} cannot be on VLAN {vlan} of {parent}: {reason}")]
    NotOnVlan { what: &'static str, parent: String, vlan: u16, reason: &'static str },
    #[error("{mac} is the parent's MAC: an endpoint with it would take the host's traffic")]
    ParentMac { mac: Mac },
    #[error("device \"{0}\" has no MAC address")]
    NoMac(String),
    #[error("network namespace \"{0}\" not found (expected /run/netns/{0})")]
    NoSuchNetns(String),
    #[error("network namespace {0} not found (no network namespace file there)")]
    NoSuchNetnsPath(String),
    /// Restore does not make a container runtime's endpoints: the runtime makes new ones for its containers.
    #[error("the endpoint was handed over to a container runtime, which makes it again with its container")]
    HandedOver,
    #[error("endpoint {ifname} in netns {netns} already exists (network \"{network}\")")]
    EndpointExists { network: String, netns: String, ifname: String },
    #[error("no endpoint {ifname} in netns {netns} on network \"{network}\"")]
    EndpointNotFound { network: String, netns: String, ifname: String },
    #[error("device \"{device}\" already exists in netns {netns}")]
    DeviceExists { device: String, netns: String },
    #[error(
        "device \"{device}\" exists but is not an end of xlan's broadcast spreader (the veth pair xlan-spread/xlan-spread-rx): rename or delete it"
    )]
    SpreaderNameTaken { device: String },
    #[error("MAC {mac} is already used on network \"{network}\"")]
    MacInUse { mac: Mac, network: String },
    #[error("a passthru network takes one endpoint only, and \"{0}\" has one")]
    PassthruFull(String),
    #[error("network \"{network}\" is in mode {mode}: allowed source MACs need mode source")]
    NotSourceMode { network: String, mode: String },
    #[error("host access works with modes bridge and private, not {0}")]
    HostAccessMode(String),
    #[error("network \"{network}\" is full ({max} endpoints at most)")]
    NetworkFull { network: String, max: usize },
    #[error("no room for another endpoint: at most {0} endpoints per host, over all its networks")]
    TooManyEndpoints(u32),
    #[error("no free network id: at most {0} networks per host")]
    TooManyNetworks(u32),
    #[error("VNI {0} is out of range: 1-16777215")]
    InvalidVni(u32),
    #[error("remote VTEPs and a multicast group exclude each other")]
    RemoteWithGroup,
    #[error("group {0} is not an IPv4 multicast address")]
    GroupNotMulticast(std::net::Ipv4Addr),
    #[error("invalid VTEP address {0}: a unicast IPv4 address is needed")]
    InvalidVtep(std::net::Ipv4Addr),
    #[error("parent {0} has no IPv4 address to use as the local VTEP address")]
    NoLocalAddress(String),
    #[error("VNI {vni} is already used on parent {parent} by network \"{network}\"")]
    VniInUse { vni: u32, parent: String, network: String },
    #[error("the {setting} does not apply to a {driver} network")]
    NotForDriver { setting: Setting, driver: Driver },
    #[error("a {driver} network needs a {setting}")]
    Missing { setting: Setting, driver: Driver },
    #[error("network \"{network}\" is a {driver} network, not a VXLAN one")]
    NotVxlan { network: String, driver: Driver },
    #[error("network \"{network}\" is a {driver} network, not an ipvlan one")]
    NotIpvlan { network: String, driver: Driver },
    #[error("removing a VTEP from the flood list needs its address")]
    FloodEntryNeedsVtep,
    #[error("no FDB entry {entry} on network \"{network}\"")]
    FdbNotFound { entry: String, network: String },
    #[error("{mac} is a local endpoint's MAC on network \"{network}\"")]
    FdbLocal { mac: Mac, network: String },
    #[error("ipvlan endpoints have the parent's MAC: a MAC address does not apply")]
    MacNotForIpvlan,
    #[error("address {address} is already used on parent {parent} ({owner})")]
    AddressInUse { address: String, parent: String, owner: AddressOwner },
    #[error("invalid prefix {given}: host bits are set (did you mean {network}?)")]
    InvalidPrefix { given: ipnet::IpNet, network: ipnet::IpNet },
    #[error("no route {prefix} on network \"{network}\"")]
    RouteNotFound { prefix: ipnet::IpNet, network: String },
    #[error("parent {parent} is handled by the {in_use} hook for the networks already on it")]
    HookInUse { parent: String, in_use: crate::model::ParentHook },
    #[error("the state and the datapath disagree: {first}{}", and_more(*.more))]
    Inconsistent { first: Box<crate::check::Finding>, more: usize },
    #[error("{what} {address} is outside the network's subnets")]
    OutsideSubnets { what: &'static str, address: String },
    #[error("two {what}s for subnet {subnet} (one IPv4 and one IPv6 subnet at most, each with one gateway and range)")]
    IpamTwice { what: &'static str, subnet: ipnet::IpNet },
    #[error("{address} is {why} in subnet {subnet}")]
    AddressTaken { address: std::net::IpAddr, why: &'static str, subnet: ipnet::IpNet },
    #[error("subnet {0} is exhausted")]
    SubnetExhausted(ipnet::IpNet),
    #[error("subnet {subnet} overlaps {other} of network \"{network}\" on the same parent")]
    SubnetsOverlap { subnet: ipnet::IpNet, other: ipnet::IpNet, network: String },
    #[error("netlink: {what}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("eBPF: {what}")]
    Bpf {
        what: String,
        #[source]
        source: Source,
    },
    #[error("eBPF: {0}")]
    BpfObject(String),
    #[error("state file {path}: {problem}")]
    State { path: PathBuf, problem: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn and_more(more: usize) -> String {
    match more {
        0 => String::new(),
        n => format!(" (and {n} more)"),
    }
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }

    /// Wraps an aya error with what was being done.
    pub fn bpf(what: impl Into<String>, source: impl Into<Source>) -> Self {
        Error::Bpf { what: what.into(), source: source.into() }
    }

    /// Wraps a netlink error with what was being done.
    pub fn netlink(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Self {
        let what = what.into();
        move |source| Error::Netlink { what, source }
    }
}

impl From<rtnetlink::Error> for Error {
    fn from(source: rtnetlink::Error) -> Self {
        Error::Netlink { what: "request failed".into(), source }
    }
}
