//! The instance's state, kept as JSON in its state directory (default /run/xlan/<instance>) so later commands and a
//! restarted loader know it. Writes go through a temporary file and a rename; a lock file serialises concurrent
//! commands on one instance. The file carries a schema version; files of earlier schemas are read and migrated (the
//! migration is written back by the next save).
use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, Write},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    error::{Error, Result},
    model::{State, SCHEMA_VERSION},
};

/// The state directory of one instance, locked for the life of this value.
pub struct StateStore {
    dir: PathBuf,
    _lock: File,
    /// Where each save also writes the configuration that must survive a reboot (the state without mutations under
    /// way), if anywhere.
    config: Option<PathBuf>,
}

/// How long a command waits quietly for another's lock before it tells its user who holds it.
const QUIET_WAIT: Duration = Duration::from_millis(700);

/// Told once when the lock is busy for longer than a moment: the PID of the command holding it, if it said.
pub type WaitNotice<'a> = &'a dyn Fn(Option<u32>);

impl StateStore {
    /// Opens and locks the instance's state directory, waiting for a command that holds the lock; `notice` hears
    /// about a wait longer than a moment.
    pub fn open(dir: &Path, notice: Option<WaitNotice<'_>>) -> Result<Self> {
        let lock_path = dir.join("lock");
        let mut lock = loop {
            // The holder before us may remove the directory with its lock file once it is done (its instance had no
            // state left, see Drop), between our look and our open: then it is made again.
            let vanished = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
            if !dir.exists() {
                create_dir_racing(dir).map_err(|e| Error::io(format!("create state dir {}", dir.display()), e))?;
                // Only a directory xlan made is removed again (see Drop).
                let _ = File::create(dir.join(MADE_BY_XLAN));
            }
            let opened = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&lock_path);
            let mut lock = match opened {
                Err(e) if vanished(&e) => continue,
                opened => opened.map_err(|e| Error::io(format!("open {}", lock_path.display()), e))?,
            };
            acquire(&mut lock, notice).map_err(|e| Error::io(format!("lock {}", lock_path.display()), e))?;
            // The holder before us may have removed the lock file (its instance had no state left): a lock on a file
            // that is no longer at the path excludes nobody, so take the one that is there now.
            if same_file(&lock, &lock_path) {
                break lock;
            }
        };
        // Who holds the lock, for the commands that wait on it.
        let pid = std::process::id().to_string();
        let _ = lock.set_len(0).and_then(|()| lock.rewind()).and_then(|()| lock.write_all(pid.as_bytes()));
        Ok(Self { dir: dir.to_owned(), _lock: lock, config: None })
    }

    /// Each save also writes the configuration to `path`.
    pub fn with_config(mut self, path: PathBuf) -> Self {
        self.config = Some(path);
        self
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn load(&self) -> Result<State> {
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) => parse(&bytes).map_err(|problem| Error::State { path, problem }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::State { path, problem: e.to_string() }),
        }
    }

    /// Saves the state (and the configuration); an instance with no networks leaves no files behind (see Drop).
    pub fn save(&self, state: &State) -> Result<()> {
        if let Some(config) = &self.config {
            let settled = State { pending: Vec::new(), ..state.clone() };
            write_or_remove(config, &settled)?;
        }
        write_or_remove(&self.path(), state)
    }
}

/// The mark of a state directory xlan made (and may remove).
const MADE_BY_XLAN: &str = "made-by-xlan";

/// True while `path` names the file `file` is open on.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

impl Drop for StateStore {
    /// An instance without a state file (no networks, or a first command that failed) leaves no lock file or
    /// directory behind, if xlan made the directory; the default root (/run/xlan) goes too once no instance uses it.
    fn drop(&mut self) {
        if self.path().exists() || !self.dir.join(MADE_BY_XLAN).exists() {
            return;
        }
        let _ = fs::remove_file(self.dir.join("lock"));
        let _ = fs::remove_file(self.dir.join(MADE_BY_XLAN));
        let _ = fs::remove_dir(&self.dir);
        if let Some(parent) = self.dir.parent().filter(|p| p.ends_with("xlan")) {
            let _ = fs::remove_dir(parent);
        }
    }
}

impl StateStore {
    /// Moves an unreadable state file aside (kept for inspection as `state.json.unreadable`), so that the instance
    /// starts from an empty state; returns where it went.
    pub fn set_aside(&self) -> Result<PathBuf> {
        let aside = self.dir.join("state.json.unreadable");
        fs::rename(self.path(), &aside).map_err(|e| Error::io(format!("move {} aside", self.path().display()), e))?;
        Ok(aside)
    }
}

/// `fs::create_dir_all`, made again when a parent vanishes under it: another instance's command that leaves nothing
/// removes the shared root (/var/lib/xlan, /run/xlan, /sys/fs/bpf/xlan) once it is empty, which it may be between the creation of the root and of
/// the directory in it (instances lock only their own directories). A bounded number of times: a path that can never
/// be made (under a dangling symlink) must not spin.
pub(crate) fn create_dir_racing(dir: &Path) -> std::io::Result<()> {
    let mut attempts = 0;
    loop {
        match fs::create_dir_all(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 1000 => attempts += 1,
            made => return made,
        }
    }
}

/// Writes `state` to `path` through a temporary file and a rename (creating the directory), or removes the file
/// (and the directory, once empty) when there is nothing to keep.
fn write_or_remove(path: &Path, state: &State) -> Result<()> {
    let state_error =
        |path: &Path, e: &dyn std::fmt::Display| Error::State { path: path.into(), problem: e.to_string() };
    if state.networks.is_empty() && state.pending.is_empty() {
        let _ = fs::remove_file(path);
        // The configuration's directories go once empty (the state directory's are Drop's).
        if let Some(dir) = path.parent().filter(|dir| !dir.join("lock").exists()) {
            let _ = fs::remove_dir(dir);
            if let Some(root) = dir.parent().filter(|root| root.ends_with("xlan")) {
                let _ = fs::remove_dir(root);
            }
        }
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        create_dir_racing(dir).map_err(|e| state_error(dir, &e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let current = State { schema: SCHEMA_VERSION, ..state.clone() };
    let json = serde_json::to_vec_pretty(&current).map_err(|e| state_error(path, &e))?;
    let mut file = File::create(&tmp).map_err(|e| state_error(&tmp, &e))?;
    file.write_all(&json).map_err(|e| state_error(&tmp, &e))?;
    fs::rename(&tmp, path).map_err(|e| state_error(path, &e))
}

/// The configuration kept at `path`, if there is one.
pub fn load_config(path: &Path) -> Result<Option<State>> {
    match fs::read(path) {
        Ok(bytes) => parse(&bytes).map(Some).map_err(|problem| Error::State { path: path.into(), problem }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::State { path: path.into(), problem: e.to_string() }),
    }
}

/// Takes the exclusive lock: quietly for a moment, then after telling `notice` who holds it, for as long as it takes.
fn acquire(lock: &mut File, notice: Option<WaitNotice<'_>>) -> std::io::Result<()> {
    let deadline = Instant::now() + QUIET_WAIT;
    loop {
        // SAFETY: flock on an open fd; released when the file is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(error);
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(notice) = notice {
        let mut holder = String::new();
        let _ = lock.rewind().and_then(|()| lock.read_to_string(&mut holder));
        notice(holder.trim().parse().ok());
    }
    // SAFETY: as above.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A state file of any known schema, as the current model.
pub fn parse(bytes: &[u8]) -> Result<State, String> {
    let document: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match document.get("schema").map(|schema| schema.as_u64()) {
        // Written before the file had a schema: the first release.
        None => {
            let old: v0::State = serde_json::from_value(document).map_err(|e| e.to_string())?;
            old.migrate()
        }
        Some(Some(version)) if version == u64::from(SCHEMA_VERSION) => {
            serde_json::from_value(document).map_err(|e| e.to_string())
        }
        Some(Some(version)) if version > u64::from(SCHEMA_VERSION) => {
            Err(format!("schema {version} is newer than this release's ({SCHEMA_VERSION}): use the xlan that wrote it"))
        }
        Some(_) => Err("unknown schema version".into()),
    }
}

/// The state file of the first release (no schema field): one `Network` struct carrying a driver, a macvlan mode,
/// optional VXLAN and ipvlan settings and host access side by side, addresses as strings.
mod v0 {
    use std::net::{IpAddr, Ipv4Addr};

    use ipnet::IpNet;
    use serde::Deserialize;

    use crate::{mac::Mac, model};

    #[derive(Deserialize)]
    pub struct State {
        networks: Vec<Network>,
    }

    #[derive(Deserialize)]
    struct Network {
        name: String,
        id: u32,
        driver: model::Driver,
        mode: model::MacvlanMode,
        parent: String,
        parent_ifindex: u32,
        parent_mac: Mac,
        host_access: bool,
        endpoints: Vec<Endpoint>,
        source_macs: Vec<Mac>,
        next_port: u32,
        #[serde(default)]
        vxlan: Option<Vxlan>,
        #[serde(default)]
        ipvlan: Option<Ipvlan>,
        // The first release's default when the field was absent.
        #[serde(default = "xdp")]
        parent_hook: model::ParentHook,
    }

    fn xdp() -> model::ParentHook {
        model::ParentHook::Xdp
    }

    #[derive(Deserialize)]
    struct Endpoint {
        netns: String,
        ifname: String,
        mac: Mac,
        ips: Vec<String>,
        host_ifname: String,
        host_ifindex: u32,
    }

    #[derive(Deserialize)]
    struct Vxlan {
        vni: u32,
        local: Ipv4Addr,
        dstport: u16,
        #[serde(default)]
        group: Option<Ipv4Addr>,
        remotes: Vec<Ipv4Addr>,
        learning: bool,
        ageing: u32,
        fdb: Vec<model::StaticFdb>,
        managed_neighbours: Vec<Ipv4Addr>,
    }

    #[derive(Deserialize)]
    struct Ipvlan {
        mode: model::IpvlanMode,
        flag: model::IpvlanFlag,
        routes: Vec<Route>,
        #[serde(default)]
        host_addresses: Vec<String>,
    }

    #[derive(Deserialize)]
    struct Route {
        cidr: String,
        netns: String,
        ifname: String,
    }

    /// Parses an address field; a bad one is an error naming it, never silently dropped.
    fn parse<T: std::str::FromStr>(network: &str, what: &str, text: &str) -> Result<T, String> {
        text.parse().map_err(|_| format!("network \"{network}\": {what} \"{text}\" is not valid"))
    }

    impl State {
        pub fn migrate(self) -> Result<model::State, String> {
            let networks = self.networks.into_iter().map(Network::migrate).collect::<Result<_, _>>()?;
            Ok(model::State { networks, ..model::State::default() })
        }
    }

    impl Network {
        fn migrate(self) -> Result<model::Network, String> {
            let name = self.name;
            let driver = match (self.driver, self.vxlan, self.ipvlan) {
                (model::Driver::Macvlan, None, None) => model::DriverSettings::Macvlan(model::Macvlan {
                    mode: self.mode,
                    host_access: self.host_access,
                    source_macs: self.source_macs,
                }),
                (model::Driver::Vxlan, Some(v), None) => model::DriverSettings::Vxlan(model::Vxlan {
                    vni: v.vni,
                    local: v.local,
                    dstport: v.dstport,
                    flood: match v.group {
                        Some(group) => model::Flood::Group(group),
                        None => model::Flood::Remotes(v.remotes),
                    },
                    learning: v.learning,
                    ageing: v.ageing,
                    fdb: v.fdb,
                    managed_neighbours: v.managed_neighbours,
                }),
                (model::Driver::Ipvlan, None, Some(i)) => {
                    let routes = i
                        .routes
                        .into_iter()
                        .map(|route| {
                            Ok(model::IpRoute {
                                prefix: parse::<IpNet>(&name, "route", &route.cidr)?,
                                endpoint: model::EndpointRef { netns: route.netns, ifname: route.ifname },
                            })
                        })
                        .collect::<Result<_, String>>()?;
                    let host_addresses = i
                        .host_addresses
                        .iter()
                        .map(|text| parse::<IpAddr>(&name, "host address", text))
                        .collect::<Result<_, _>>()?;
                    model::DriverSettings::Ipvlan(model::Ipvlan { mode: i.mode, flag: i.flag, routes, host_addresses })
                }
                (driver, _, _) => return Err(format!("network \"{name}\": {driver} settings do not match its driver")),
            };
            let endpoints = self
                .endpoints
                .into_iter()
                .map(|e| {
                    Ok(model::Endpoint {
                        at: model::EndpointRef { netns: e.netns, ifname: e.ifname },
                        mac: e.mac,
                        addresses: e.ips.iter().map(|text| parse(&name, "address", text)).collect::<Result<_, _>>()?,
                        host: model::HostPort { ifname: e.host_ifname, ifindex: e.host_ifindex },
                        container_id: None,
                        placement: model::Placement::Netns,
                    })
                })
                .collect::<Result<_, String>>()?;
            Ok(model::Network {
                id: self.id,
                parent: model::Parent {
                    name: self.parent,
                    ifindex: self.parent_ifindex,
                    mac: self.parent_mac,
                    vlan: None,
                },
                hook: self.parent_hook,
                driver,
                endpoints,
                next_port: self.next_port,
                subnets: Vec::new(),
                name,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::model::{Flood, IpvlanFlag, IpvlanMode, MacvlanMode, ParentHook};

    /// A state file written by the first release (main at 8f3cbc4): a host-access macvlan network, a source-mode one
    /// with an allowed MAC, a VXLAN network with a remote, a static FDB entry and managed neighbours, and an l3
    /// private ipvlan network with IPv4 and IPv6 addresses and a route; one endpoint each.
    const FIRST_RELEASE: &str = include_str!("../testdata/state-v0.json");

    /// Two instances' commands at once: each makes its directory under a shared root and removes both again, as an
    /// instance that leaves nothing does. A plain `create_dir_all` fails now and then ("No such file or directory":
    /// the other removed the root between its two mkdirs; seen in the CNI's concurrent ADDs); this one must not.
    #[test]
    fn a_directory_is_made_while_another_instance_removes_the_shared_root() {
        let root = std::env::temp_dir().join(format!("xlan-store-race-{}", std::process::id()));
        std::thread::scope(|scope| {
            for name in ["a", "b"] {
                let dir = root.join(name);
                let root = &root;
                scope.spawn(move || {
                    for _ in 0..3000 {
                        create_dir_racing(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                        fs::remove_dir(&dir).unwrap();
                        let _ = fs::remove_dir(root);
                    }
                });
            }
        });
        let _ = fs::remove_dir(&root);
    }

    #[test]
    fn migrates_the_first_release_state_file() {
        let state = parse(FIRST_RELEASE.as_bytes()).unwrap();
        assert_eq!(state.schema, SCHEMA_VERSION);
        let names: Vec<&str> = state.networks.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["mv0", "src0", "vx0", "ipv0"]);

        let mv0 = &state.networks[0];
        let macvlan = mv0.macvlan().unwrap();
        assert_eq!((macvlan.mode, macvlan.host_access), (MacvlanMode::Bridge, true));
        assert_eq!((mv0.id, mv0.parent.name.as_str(), mv0.parent.ifindex, mv0.hook), (1, "up1", 3, ParentHook::Tc));
        let endpoint = &mv0.endpoints[0];
        assert_eq!(endpoint.at.ifname, "eth0");
        assert_eq!(endpoint.mac.to_string(), "02:00:00:00:00:11");
        let addresses: Vec<String> = endpoint.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(addresses, ["10.77.0.11/24", "fd77::11/64"]);
        assert_eq!((endpoint.host.ifname.as_str(), endpoint.host.ifindex), ("xl1p0", 11));

        let src0 = state.networks[1].macvlan().unwrap();
        assert_eq!(src0.mode, MacvlanMode::Source);
        assert_eq!(src0.source_macs[0].to_string(), "02:00:00:00:00:aa");

        let vxlan = state.networks[2].vxlan().unwrap();
        assert_eq!((vxlan.vni, vxlan.dstport, vxlan.ageing, vxlan.learning), (42, 4789, 120, true));
        assert_eq!(vxlan.flood, Flood::Remotes(vec![Ipv4Addr::new(10, 99, 0, 2)]));
        assert_eq!(vxlan.fdb[0].dst, Ipv4Addr::new(10, 99, 0, 3));
        assert_eq!(vxlan.managed_neighbours.len(), 2);

        let ipvlan = state.networks[3].ipvlan().unwrap();
        assert_eq!((ipvlan.mode, ipvlan.flag), (IpvlanMode::L3, IpvlanFlag::Private));
        assert_eq!(ipvlan.routes[0].prefix.to_string(), "10.210.0.0/24");
        assert_eq!(ipvlan.routes[0].endpoint.ifname, "eth0");
        assert_eq!(ipvlan.host_addresses.len(), 2);
    }

    #[test]
    fn a_migrated_state_reads_back_unchanged() {
        let migrated = parse(FIRST_RELEASE.as_bytes()).unwrap();
        let written = serde_json::to_vec(&migrated).unwrap();
        assert_eq!(parse(&written).unwrap(), migrated);
    }

    #[test]
    fn first_release_group_becomes_a_group_flood() {
        let text = FIRST_RELEASE.replace(r#""remotes": ["#, r#""group": "239.1.1.1", "remotes": ["#);
        let state = parse(text.as_bytes()).unwrap();
        assert_eq!(state.networks[2].vxlan().unwrap().flood, Flood::Group(Ipv4Addr::new(239, 1, 1, 1)));
    }

    #[test]
    fn a_bad_address_is_an_error_not_a_missing_entry() {
        let text = FIRST_RELEASE.replace("10.77.0.11/24", "10.77.0.300/24");
        let error = parse(text.as_bytes()).unwrap_err();
        assert!(error.contains("10.77.0.300/24") && error.contains("mv0"), "{error}");
    }

    #[test]
    fn settings_of_another_driver_are_refused() {
        let text = FIRST_RELEASE.replacen(r#""driver": "vxlan""#, r#""driver": "macvlan""#, 1);
        let error = parse(text.as_bytes()).unwrap_err();
        assert!(error.contains("vx0"), "{error}");
    }

    #[test]
    fn a_command_waiting_for_the_lock_hears_who_holds_it() {
        let dir = std::env::temp_dir().join(format!("xlan-lock-test-{}", std::process::id()));
        let holder = StateStore::open(&dir, None).unwrap();
        let heard = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let record = |pid: Option<u32>| heard.lock().unwrap().push(pid);
                let started = Instant::now();
                let store = StateStore::open(&dir, Some(&record)).unwrap();
                (started.elapsed(), store)
            });
            std::thread::sleep(QUIET_WAIT + Duration::from_millis(300));
            drop(holder);
            let (waited, store) = waiter.join().unwrap();
            assert!(waited >= QUIET_WAIT, "waited {waited:?}");
            drop(store);
        });
        assert_eq!(*heard.lock().unwrap(), [Some(std::process::id())]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_a_state_dir_xlan_made_is_removed() {
        let made = std::env::temp_dir().join(format!("xlan-made-{}", std::process::id()));
        drop(StateStore::open(&made, None).unwrap());
        assert!(!made.exists(), "a directory xlan made and left empty goes");
        let users = std::env::temp_dir().join(format!("xlan-users-{}", std::process::id()));
        fs::create_dir(&users).unwrap();
        drop(StateStore::open(&users, None).unwrap());
        assert!(users.exists(), "the user's own directory stays");
        let _ = fs::remove_dir_all(&users);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let error = parse(br#"{"schema": 99, "networks": []}"#).unwrap_err();
        assert!(error.contains("newer"), "{error}");
        assert!(matches!(parse(br#"{"schema": 1, "networks": []}"#), Ok(state) if state.networks.is_empty()));
        assert!(parse(b"{\"networks\": [").is_err());
    }
}
