//! The command line, in the words of ip(8), bridge(8) and docker.
//! Values are parsed by the library's own `FromStr`s (the same words the daemon and the CNI plugin take), but for
//! addresses with prefix length, whose message is the CLI's.
use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
};

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use xlan::{
    mac::Mac,
    model::{AuxAddress, Driver, EndpointRef, IpvlanFlag, ParentHook},
};

#[derive(Debug, Parser)]
#[command(
    name = "xlan",
    version,
    about = "Virtual LANs (macvlan, ipvlan, vxlan) with the forwarding done in XDP/TC eBPF"
)]
pub struct Cli {
    /// Act as the host whose network namespace is NS (/run/netns/NS); default: the current one.
    #[arg(long, value_name = "NS")]
    pub netns: Option<String>,
    /// Where the instance keeps its state (default /run/xlan/<NS or "default">).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where the instance keeps the configuration `restore` brings back after a reboot (default
    /// /var/lib/xlan/<NS or "default">).
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, delete and inspect networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Add endpoints (a namespace's interface) to a network, or remove them.
    #[command(subcommand)]
    Endpoint(EndpointCommand),
    /// The allowed source MACs of a source-mode network.
    #[command(subcommand)]
    Macaddr(MacaddrCommand),
    /// A VXLAN network's forwarding table: static entries, the flood list, what was learned.
    #[command(subcommand)]
    Fdb(FdbCommand),
    /// Prefixes routed to an ipvlan endpoint (l3: networks behind it).
    #[command(subcommand)]
    Route(RouteCommand),
    /// The multicast groups endpoints joined (learned from their IGMP and MLD reports), like `bridge mdb`.
    #[command(subcommand)]
    Mdb(MdbCommand),
    /// The datapath's log (drops that need attention), like `ip monitor`, until Ctrl-C.
    Monitor {
        #[arg(long)]
        json: bool,
    },
    /// After a reboot: make the networks and endpoints (whose namespaces exist again) of the kept configuration
    /// again; the xlan-restore.service unit runs it at boot.
    Restore {
        #[arg(long)]
        json: bool,
    },
    /// Replace the running datapath's programs with this binary's, atomically through their pinned links (no frame
    /// lost, maps kept); a newer binary's new maps are filled from the state first.
    Upgrade {
        #[arg(long)]
        json: bool,
    },
    /// Every disagreement between the state, the pinned datapath and the host's devices; --repair fixes what it can.
    Doctor {
        /// Rebuild what the datapath lost from the state, drop endpoints whose devices are gone, bind re-created
        /// parents again, remove what xlan made that the state does not know.
        #[arg(long)]
        repair: bool,
        #[arg(long)]
        json: bool,
    },
    /// Per-endpoint counters: rx (delivered to it) and tx (sent by it) packets and bytes, drops by reason.
    Stats {
        network: Option<String>,
        /// How broadcast copies were spread over CPUs instead: shares handed to other CPUs, and those made on the
        /// receiving CPU because the other's backlog was full.
        #[arg(long, conflicts_with = "network")]
        spread: bool,
        #[arg(long)]
        json: bool,
    },
    /// A Docker network driver (drivers xlan-macvlan, xlan-ipvlan, xlan-vxlan) and Prometheus metrics, until
    /// SIGTERM or SIGINT; the datapath keeps forwarding after it stops.
    Serve(ServeArgs),
}

/// The options of `xlan serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where dockerd looks for plugin sockets (one DRIVER.sock per driver name).
    #[arg(long, value_name = "DIR", default_value = "/run/docker/plugins")]
    pub plugin_dir: PathBuf,
    /// Driver names are PREFIX followed by macvlan, ipvlan and vxlan (`docker network create -d xlan-macvlan`).
    #[arg(long, value_name = "PREFIX", default_value = "xlan-")]
    pub driver_prefix: String,
    /// Where /metrics is served (Prometheus' text format).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9419")]
    pub metrics: std::net::SocketAddr,
    /// Only make the missing parents of the internal Docker networks the kept configuration lists (veth pairs: gone
    /// after a reboot), then exit: xlan-restore.service runs it before `xlan restore`.
    #[arg(long)]
    pub internal_parents: bool,
}

// Parsed once per process: the size of `Create` costs nothing worth boxing it for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network on a parent interface.
    Create {
        name: String,
        #[arg(long, short = 'd')]
        driver: Driver,
        /// The uplink the network's endpoints share; IFACE.VID (when no link has that name) for 802.1Q VLAN VID of
        /// IFACE, done in BPF (no 8021q link is made), as Docker reads `-o parent=eth0.10`.
        #[arg(long)]
        parent: String,
        /// The 802.1Q VLAN (1-4094) on the parent, as IFACE.VID gives it.
        #[arg(long, value_name = "VID")]
        vlan: Option<u16>,
        /// macvlan: bridge|private|vepa|passthru|source [default: bridge]; ipvlan: l2|l3 [default: l2, as
        /// Docker and the CNI plugin; the kernel's own default is l3].
        #[arg(long)]
        mode: Option<String>,
        /// ipvlan: bridge|private|vepa, as `ip link add … type ipvlan mode MODE FLAG` [default: bridge].
        #[arg(long)]
        flag: Option<IpvlanFlag>,
        /// macvlan: let endpoints and the host's address on the parent reach each other (bridge and private
        /// modes; the kernel's macvlan cannot).
        #[arg(long)]
        host_access: bool,
        /// Where the parent's frames are first handled [default: tc for a veth parent, whose frames are skbs
        /// already (XDP there costs GRO and a copy); xdp otherwise]. The networks on one parent share it.
        #[arg(long)]
        parent_hook: Option<ParentHook>,
        #[command(flatten)]
        vxlan: VxlanArgs,
        #[command(flatten)]
        ipam: IpamArgs,
    },
    /// Delete a network, its endpoints and everything the datapath holds for it.
    #[command(alias = "rm")]
    Delete { name: String },
    /// List networks.
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one network and its endpoints.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// The IPAM options of `docker network create`.
#[derive(Debug, Args)]
pub struct IpamArgs {
    /// A subnet endpoints get addresses from (one IPv4, one IPv6 at most).
    #[arg(long = "subnet", value_name = "CIDR", value_parser = prefix)]
    pub subnets: Vec<IpNet>,
    /// The gateway of the subnet it falls in: endpoints' default route.
    #[arg(long = "gateway", value_name = "IP")]
    pub gateways: Vec<IpAddr>,
    /// Allocate from this part of the subnet it falls in.
    #[arg(long = "ip-range", value_name = "CIDR", value_parser = prefix)]
    pub ip_ranges: Vec<IpNet>,
    /// An address of the subnet never allocated (a router, a DNS server), as NAME=IP.
    #[arg(long = "aux-address", value_name = "NAME=IP", value_parser = aux_address)]
    pub aux_addresses: Vec<AuxAddress>,
}

/// `NAME=IP`, as Docker's --aux-address.
fn aux_address(text: &str) -> Result<AuxAddress, String> {
    let (name, ip) = text.split_once('=').ok_or_else(|| format!("invalid aux address \"{text}\": expected NAME=IP"))?;
    let address = ip.parse().map_err(|_| format!("invalid aux address \"{text}\": {ip} is not an IP address"))?;
    Ok(AuxAddress { name: name.into(), address })
}

/// The options of `ip link add … type vxlan`.
#[derive(Debug, Args)]
pub struct VxlanArgs {
    /// vxlan: the VXLAN network identifier, 1-16777215.
    #[arg(long)]
    pub vni: Option<u32>,
    /// vxlan: outer source address [default: the parent's first IPv4 address].
    #[arg(long)]
    pub local: Option<Ipv4Addr>,
    /// vxlan: a remote VTEP for broadcast and unknown unicast (head-end replication); repeatable.
    #[arg(long = "remote", value_name = "IP", conflicts_with = "group")]
    pub remotes: Vec<Ipv4Addr>,
    /// vxlan: multicast group for broadcast and unknown unicast.
    #[arg(long)]
    pub group: Option<Ipv4Addr>,
    /// vxlan: UDP port [default: 4789, IANA's; the kernel's own default is 8472].
    #[arg(long)]
    pub dstport: Option<u16>,
    /// vxlan: learn remote MACs from received frames [default].
    #[arg(long, conflicts_with = "no_learning")]
    pub learning: bool,
    /// vxlan: do not learn; only static entries (`xlan fdb add`) and flooding.
    #[arg(long)]
    pub no_learning: bool,
    /// vxlan: seconds a learned entry lives without traffic [default: 300].
    #[arg(long, value_name = "SECS")]
    pub ageing: Option<u32>,
}

impl VxlanArgs {
    /// None when neither --learning nor --no-learning was given.
    pub fn learning(&self) -> Option<bool> {
        match (self.learning, self.no_learning) {
            (_, true) => Some(false),
            (true, false) => Some(true),
            (false, false) => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Route CIDR to the endpoint in NS.
    Add {
        network: String,
        #[arg(value_parser = prefix)]
        cidr: IpNet,
        /// The endpoint's namespace.
        #[arg(long = "endpoint", value_name = "NS")]
        netns: String,
        #[arg(long, default_value = "eth0")]
        ifname: String,
    },
    /// Remove a route.
    #[command(alias = "delete")]
    Del {
        network: String,
        #[arg(value_parser = prefix)]
        cidr: IpNet,
    },
    /// The network's routes.
    Show {
        network: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FdbCommand {
    /// Add a static entry (MAC → VTEP), or with the all-zero MAC a VTEP to the flood list.
    #[command(alias = "append")]
    Add {
        network: String,
        mac: Mac,
        #[arg(long, value_name = "IP")]
        dst: Option<Ipv4Addr>,
    },
    /// Remove an entry (static or learned), or with the all-zero MAC a VTEP from the flood list.
    #[command(alias = "delete")]
    Del {
        network: String,
        mac: Mac,
        #[arg(long, value_name = "IP")]
        dst: Option<Ipv4Addr>,
    },
    /// Static and learned entries with their VTEP and age, like `bridge fdb show`.
    Show {
        network: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MdbCommand {
    /// Which endpoint is in which group, like `bridge mdb show`.
    Show {
        network: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct EndpointTarget {
    pub network: String,
    /// The endpoint's network namespace: a name (/run/netns/NS) or the path of a namespace file (/proc/PID/ns/net).
    #[arg(long, value_name = "NS")]
    pub netns: String,
    /// The endpoint's interface name inside NS.
    #[arg(long, default_value = "eth0")]
    pub ifname: String,
}

impl EndpointTarget {
    pub fn endpoint_ref(&self) -> EndpointRef {
        EndpointRef { netns: self.netns.clone(), ifname: self.ifname.clone() }
    }
}

#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Add an endpoint: a veth whose end in NS is named IF, with the given (or a random) MAC and addresses.
    Add {
        #[command(flatten)]
        target: EndpointTarget,
        /// Default: random locally administered (passthru: the parent's MAC, as the kernel).
        #[arg(long)]
        mac: Option<Mac>,
        /// An address with prefix length, e.g. 10.0.0.2/24; repeatable.
        #[arg(long = "ip", value_name = "CIDR", value_parser = prefix)]
        ips: Vec<IpNet>,
    },
    /// Remove an endpoint and its interface.
    #[command(alias = "delete")]
    Del {
        #[command(flatten)]
        target: EndpointTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum MacaddrCommand {
    Add { network: String, mac: Mac },
    Del { network: String, mac: Mac },
    Flush { network: String },
}

/// An address with prefix length, as `ip addr add` takes it.
fn prefix(text: &str) -> Result<IpNet, String> {
    text.parse().map_err(|_| format!("invalid address \"{text}\": expected CIDR such as 10.0.0.2/24 or fd00::2/64"))
}
