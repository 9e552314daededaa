//! The library's typed errors. The binary turns any of them into one line on stderr and exit status 1.
use std::{io, path::PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("invalid MAC address \"{0}\": {1}")]
    InvalidMac(String, &'static str),
    #[error("invalid address \"{0}\": expected CIDR such as 10.0.0.2/24 or fd00::2/64")]
    InvalidCidr(String),
    #[error("invalid interface name \"{0}\": 1-15 characters, no '/', ':' or whitespace")]
    InvalidIfname(String),
    #[error("invalid network name \"{0}\": 1-64 characters of letters, digits, '-', '_' and '.'")]
    InvalidName(String),
    #[error("network \"{0}\" already exists")]
    NetworkExists(String),
    #[error("network \"{0}\" not found")]
    NetworkNotFound(String),
    #[error("parent {0} already carries network \"{1}\"")]
    ParentInUse(String, String),
    #[error("device \"{0}\" does not exist in {1}")]
    NoSuchDevice(String, String),
    #[error("network namespace \"{0}\" not found (expected /run/netns/{0})")]
    NoSuchNetns(String),
    #[error("endpoint {ifname} in netns {netns} already exists (network \"{network}\")")]
    EndpointExists { network: String, netns: String, ifname: String },
    #[error("no endpoint {ifname} in netns {netns} on network \"{network}\"")]
    EndpointNotFound { network: String, netns: String, ifname: String },
    #[error("device \"{0}\" already exists in netns {1}")]
    DeviceExists(String, String),
    #[error("MAC {0} is already used on network \"{1}\"")]
    MacInUse(String, String),
    #[error("a passthru network takes one endpoint only, and \"{0}\" has one")]
    PassthruFull(String),
    #[error("network \"{0}\" is in mode {1}: allowed source MACs need mode source")]
    NotSourceMode(String, String),
    #[error("--host-access works with modes bridge and private, not {0}")]
    HostAccessMode(String),
    #[error("network \"{0}\" is full ({1} endpoints at most)")]
    NetworkFull(String, usize),
    #[error("no free network id: at most {0} networks per host")]
    TooManyNetworks(u32),
    #[error("VNI {0} is out of range: 1-16777215")]
    InvalidVni(u32),
    #[error("a vxlan network needs --vni")]
    MissingVni,
    #[error("--remote and --group exclude each other")]
    RemoteWithGroup,
    #[error("--group {0} is not an IPv4 multicast address")]
    GroupNotMulticast(String),
    #[error("invalid VTEP address {0}: a unicast IPv4 address is needed")]
    InvalidVtep(String),
    #[error("parent {0} has no IPv4 address: give --local")]
    NoLocalAddress(String),
    #[error("VNI {vni} is already used on parent {parent} by network \"{network}\"")]
    VniInUse { vni: u32, parent: String, network: String },
    #[error("{0} does not apply to a {1} network")]
    NotForDriver(&'static str, String),
    #[error("no FDB entry {0} on network \"{1}\"")]
    FdbNotFound(String, String),
    #[error("{0} is a local endpoint's MAC on network \"{1}\"")]
    FdbLocal(String, String),
    #[error("{0} needs --dst")]
    MissingDst(String),
    #[error("unknown {1} mode \"{0}\": {2}")]
    UnknownMode(String, String, &'static str),
    #[error("parent {0} already carries {1} network \"{2}\": macvlan and ipvlan do not share a parent")]
    ParentTaken(String, String, String),
    #[error("an ipvlan endpoint needs at least one --ip")]
    MissingIp,
    #[error("ipvlan endpoints have the parent's MAC: --mac does not apply")]
    MacNotForIpvlan,
    #[error("address {0} is already used on parent {1} (network \"{2}\")")]
    AddressInUse(String, String, String),
    #[error("invalid prefix {0}: host bits are set (did you mean {1}?)")]
    InvalidPrefix(String, String),
    #[error("no route {0} on network \"{1}\"")]
    RouteNotFound(String, String),
    #[error("parent {0} is handled by {1} for the networks already on it: --parent-hook must match")]
    HookInUse(String, String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("eBPF: {0}")]
    Bpf(String),
    #[error("state file {0}: {1}")]
    State(PathBuf, String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }

    pub fn bpf(what: &str, error: impl std::fmt::Display) -> Self {
        Error::Bpf(format!("{what}: {error}"))
    }
}

impl From<rtnetlink::Error> for Error {
    fn from(error: rtnetlink::Error) -> Self {
        Error::Netlink(error.to_string())
    }
}
