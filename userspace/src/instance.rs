//! One xlan instance: the datapath and state of one host network namespace.
use std::path::{Path, PathBuf};

use crate::{
    datapath::pins::PinDir,
    error::Result,
    host::{netlink::Netlink, netns},
    store::StateStore,
};

/// Where instances keep the configuration that must survive a reboot (/run and bpffs do not).
pub const CONFIG_ROOT: &str = "/var/lib/xlan";

pub struct Instance {
    /// The host namespace's name, or "default".
    pub name: String,
    pub pins: PinDir,
    pub state_dir: PathBuf,
    /// Where the configuration that must survive a reboot is kept (`xlan restore` reads it).
    pub config_dir: PathBuf,
    /// Netlink in the host namespace.
    pub netlink: Netlink,
    /// Told the PID of the command holding the state lock when a wait for it lasts longer than a moment.
    lock_notice: Option<Box<dyn Fn(Option<u32>)>>,
}

impl Instance {
    /// Enters the host namespace `netns` (for the rest of the process) and opens the instance there.
    /// Must be called on the thread that will do all the work (xlan runs a current-thread runtime).
    pub fn open(netns: Option<&str>, state_dir: Option<&Path>) -> Result<Self> {
        let name = match netns {
            Some(ns) => {
                netns::enter_for_good(ns)?;
                ns.to_string()
            }
            None => "default".to_string(),
        };
        let state_dir = state_dir.map(Path::to_owned).unwrap_or_else(|| Self::default_state_dir(&name));
        let place = if netns.is_some() { format!("netns {name}") } else { "the default netns".into() };
        let netlink = Netlink::connect(&place)?;
        let config_dir = Path::new(CONFIG_ROOT).join(&name);
        Ok(Self { pins: PinDir::for_instance(&name), state_dir, config_dir, netlink, name, lock_notice: None })
    }

    /// Where the state of the instance `name` is kept unless `--state-dir` says otherwise.
    pub fn default_state_dir(name: &str) -> PathBuf {
        Path::new("/run/xlan").join(name)
    }

    /// Opens the instance of the network namespace the thread is in (a CNI plugin is run in its host's): named by
    /// the namespace's name under /run/netns, as `open` would name it, else "default".
    pub fn open_current(state_dir: Option<&Path>) -> Result<Self> {
        match netns::current_name()? {
            // Entering the namespace the thread is in changes nothing; `open` then names everything alike.
            Some(name) => Self::open(Some(&name), state_dir),
            None => Self::open(None, state_dir),
        }
    }

    /// Keeps the configuration in `dir` instead of /var/lib/xlan/<instance>.
    pub fn with_config_dir(mut self, dir: &Path) -> Self {
        self.config_dir = dir.to_owned();
        self
    }

    /// Has `notice` told who holds the state lock when a command waits for it longer than a moment.
    pub fn with_lock_notice(mut self, notice: impl Fn(Option<u32>) + 'static) -> Self {
        self.lock_notice = Some(Box::new(notice));
        self
    }

    /// The instance's state, locked for as long as the store lives.
    pub fn store(&self) -> Result<StateStore> {
        Ok(StateStore::open(&self.state_dir, self.lock_notice.as_deref())?.with_config(self.config_path()))
    }

    /// The configuration file: what `xlan restore` brings back after a reboot.
    pub fn config_path(&self) -> PathBuf {
        self.config_dir.join("config.json")
    }
}
