//! The command line, in the words of ip(8), bridge(8) and docker.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::mode::Mode;

#[derive(Debug, Parser)]
#[command(name = "xlan", version, about = "Virtual LANs (macvlan) with the forwarding done in XDP/TC eBPF")]
pub struct Cli {
    /// Act as the host whose network namespace is NS (/run/netns/NS); default: the current one.
    #[arg(long, value_name = "NS")]
    pub netns: Option<String>,
    /// Where the instance keeps its state (default /run/xlan/<NS or "default">).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
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
    /// Per-endpoint counters: rx (delivered to it) and tx (sent by it) packets and bytes, drops by reason.
    Stats {
        network: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Driver {
    Macvlan,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network on a parent interface.
    Create {
        name: String,
        #[arg(long, short = 'd')]
        driver: Driver,
        /// The uplink the network's endpoints share.
        #[arg(long)]
        parent: String,
        /// As `ip link add … type macvlan mode MODE`.
        #[arg(long, value_enum, default_value_t = Mode::Bridge)]
        mode: Mode,
        /// Let endpoints and the host's address on the parent reach each other (bridge and private modes;
        /// the kernel's macvlan cannot).
        #[arg(long)]
        host_access: bool,
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

#[derive(Debug, Args)]
pub struct EndpointTarget {
    pub network: String,
    /// The endpoint's network namespace (/run/netns/NS).
    #[arg(long, value_name = "NS")]
    pub netns: String,
    /// The endpoint's interface name inside NS.
    #[arg(long, default_value = "eth0")]
    pub ifname: String,
}

#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Add an endpoint: a veth whose end in NS is named IF, with the given (or a random) MAC and addresses.
    Add {
        #[command(flatten)]
        target: EndpointTarget,
        /// Default: random locally administered (passthru: the parent's MAC, as the kernel).
        #[arg(long)]
        mac: Option<String>,
        /// An address with prefix length, e.g. 10.0.0.2/24; repeatable.
        #[arg(long = "ip", value_name = "CIDR")]
        ips: Vec<String>,
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
    Add { network: String, mac: String },
    Del { network: String, mac: String },
    Flush { network: String },
}
