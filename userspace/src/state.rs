//! What an instance has made, kept as JSON in its state directory (default /run/xlan/<instance>) so later
//! commands and a restarted loader know it. Writes go through a temporary file and a rename; a lock file
//! serialises concurrent `xlan` calls on one instance.
use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    net::Ipv4Addr,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    mac::Mac,
    mode::{IpvlanFlag, IpvlanMode, Mode},
};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub networks: Vec<Network>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    /// Key of the network in the datapath maps.
    pub id: u32,
    pub driver: Driver,
    /// macvlan mode (VXLAN networks forward among their local endpoints as bridge mode does).
    pub mode: Mode,
    pub parent: String,
    pub parent_ifindex: u32,
    pub parent_mac: Mac,
    pub host_access: bool,
    pub endpoints: Vec<Endpoint>,
    /// Allowed source MACs (mode source).
    pub source_macs: Vec<Mac>,
    /// Numbers the host-side veth names of this network's endpoints.
    pub next_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<Vxlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvlan: Option<Ipvlan>,
    /// Where frames from the parent are first handled.
    #[serde(default)]
    pub parent_hook: ParentHook,
}

/// The hook that first handles the parent's incoming frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ParentHook {
    /// XDP on the parent (and an XDP_PASS stub on every endpoint, which native redirect into a veth needs).
    #[default]
    Xdp,
    /// tcx ingress only: unicast goes into the endpoint by `bpf_redirect_peer`, GSO packets intact.
    Tc,
}

impl std::fmt::Display for ParentHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            ParentHook::Xdp => "xdp",
            ParentHook::Tc => "tc",
        })
    }
}

/// An ipvlan network's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ipvlan {
    pub mode: IpvlanMode,
    pub flag: IpvlanFlag,
    /// Prefixes routed to an endpoint (`xlan route add`).
    pub routes: Vec<IpRoute>,
    /// The host's own addresses on the parent when the network was made: they stay the host's.
    #[serde(default)]
    pub host_addresses: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRoute {
    pub cidr: String,
    pub netns: String,
    pub ifname: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Macvlan,
    Vxlan,
    Ipvlan,
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Driver::Macvlan => "macvlan",
            Driver::Vxlan => "vxlan",
            Driver::Ipvlan => "ipvlan",
        })
    }
}

/// A VXLAN network's settings, in the words of `ip link add … type vxlan` and `bridge fdb`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vxlan {
    pub vni: u32,
    pub local: Ipv4Addr,
    pub dstport: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Ipv4Addr>,
    /// The flood list: `--remote`s and `fdb append 00:00:00:00:00:00 dst IP`.
    pub remotes: Vec<Ipv4Addr>,
    pub learning: bool,
    pub ageing: u32,
    /// Static entries: MAC → VTEP.
    pub fdb: Vec<StaticFdb>,
    /// VTEP neighbour entries xlan added to the parent (and removes with the network).
    pub managed_neighbours: Vec<Ipv4Addr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticFdb {
    pub mac: Mac,
    pub dst: Ipv4Addr,
}

impl Network {
    /// The VXLAN settings, for a VXLAN network.
    pub fn vxlan(&self) -> Option<&Vxlan> {
        self.vxlan.as_ref()
    }

    /// The ipvlan settings, for an ipvlan network.
    pub fn ipvlan(&self) -> Option<&Ipvlan> {
        self.ipvlan.as_ref()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endpoint {
    pub netns: String,
    pub ifname: String,
    pub mac: Mac,
    pub ips: Vec<String>,
    /// The host-side veth that carries the endpoint's TC program.
    pub host_ifname: String,
    pub host_ifindex: u32,
}

impl State {
    pub fn network(&self, name: &str) -> Result<&Network> {
        self.networks.iter().find(|n| n.name == name).ok_or_else(|| Error::NetworkNotFound(name.into()))
    }

    pub fn network_mut(&mut self, name: &str) -> Result<&mut Network> {
        self.networks.iter_mut().find(|n| n.name == name).ok_or_else(|| Error::NetworkNotFound(name.into()))
    }

    /// The endpoint named by (netns, ifname) on any network of the instance.
    pub fn find_endpoint(&self, netns: &str, ifname: &str) -> Option<(&Network, &Endpoint)> {
        self.networks.iter().find_map(|network| {
            network.endpoints.iter().find(|e| e.netns == netns && e.ifname == ifname).map(|e| (network, e))
        })
    }

    /// The networks on one parent interface.
    pub fn on_parent(&self, parent_ifindex: u32) -> impl Iterator<Item = &Network> {
        self.networks.iter().filter(move |n| n.parent_ifindex == parent_ifindex)
    }

    /// The lowest network id not in use.
    pub fn free_network_id(&self, max: u32) -> Result<u32> {
        (1..=max).find(|id| self.networks.iter().all(|n| n.id != *id)).ok_or(Error::TooManyNetworks(max))
    }
}

/// The state directory of one instance, locked for the life of this value.
pub struct StateStore {
    dir: PathBuf,
    _lock: File,
}

impl StateStore {
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("create state dir {}", dir.display()), e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("open {}", lock_path.display()), e))?;
        // SAFETY: flock on an open fd; released when the file is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::io("lock state", std::io::Error::last_os_error()));
        }
        Ok(Self { dir: dir.to_owned(), _lock: lock })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn load(&self) -> Result<State> {
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::State(path, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::State(path, e.to_string())),
        }
    }

    /// Saves the state; an instance with no networks leaves no files behind (see Drop).
    pub fn save(&self, state: &State) -> Result<()> {
        let path = self.path();
        if state.networks.is_empty() {
            let _ = fs::remove_file(&path);
            return Ok(());
        }
        let tmp = self.dir.join("state.json.tmp");
        let json = serde_json::to_vec_pretty(state).map_err(|e| Error::State(path.clone(), e.to_string()))?;
        let mut file = File::create(&tmp).map_err(|e| Error::State(tmp.clone(), e.to_string()))?;
        file.write_all(&json).map_err(|e| Error::State(tmp.clone(), e.to_string()))?;
        fs::rename(&tmp, &path).map_err(|e| Error::State(path, e.to_string()))
    }
}

impl Drop for StateStore {
    /// An instance without a state file (no networks, or a first command that failed) leaves no lock file or
    /// directory behind; the default root (/run/xlan) goes too once no instance uses it.
    fn drop(&mut self) {
        if self.path().exists() {
            return;
        }
        let _ = fs::remove_file(self.dir.join("lock"));
        let _ = fs::remove_dir(&self.dir);
        if let Some(parent) = self.dir.parent().filter(|p| p.ends_with("xlan")) {
            let _ = fs::remove_dir(parent);
        }
    }
}
