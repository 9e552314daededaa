//! What the BPF_PROG_TEST_RUN datapath tests share: a fixture whose programs see devices of a private network
//! namespace (veths made here, never the host's) and maps pinned under a bpffs directory of their own — both
//! go away on drop, also when a test fails — and frame builders.
#![allow(dead_code)]
use std::{
    net::Ipv4Addr,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use aya::programs::{ProgramError, SchedClassifier, TestRun, TestRunOptions, TestRunResult, Xdp};
use datapath_common::{program_names, DropReason};
use ipnet::IpNet;
use xlan::{
    datapath::{
        events::{DropEvent, DropEvents},
        loader::Datapath,
        maps::Tables,
        pins::PinDir,
        testrun::{sk_buff_on, XdpMd},
    },
    driver::{self, port},
    host::netns::{Netns, NetnsGuard},
    instance::Instance,
    mac::Mac,
    model::{
        DriverSettings, Endpoint, EndpointRef, HostPort, Macvlan, MacvlanMode, Network, Parent, ParentHook, State,
    },
};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;
pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;
pub const TC_ACT_REDIRECT: u32 = 7;

pub const NETWORK: u32 = 7;
pub const OUTSIDE_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
pub const PARENT_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];
pub const ENDPOINT_MACS: [[u8; 6]; 3] =
    [[0x02, 0x77, 0, 0, 0, 0x11], [0x02, 0x77, 0, 0, 0, 0x12], [0x02, 0x77, 0, 0, 0, 0x13]];
pub const BROADCAST: [u8; 6] = [0xff; 6];
pub const IPV6_ALL_NODES: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// A namespace with a parent veth and three endpoint veths, the datapath loaded with its maps pinned in a
/// directory of the test's own, and one macvlan network.
pub struct Fixture {
    pub datapath: Datapath,
    pub parent: u32,
    pub ports: [u32; 3],
    // Dropped in this order, after the fields above: the maps' pins, the thread's stay in the namespace, then the
    // namespace itself (a thread still inside would keep it and its devices alive).
    pub pins: PinGuard,
    /// The test thread works inside `netns`: the programs resolve ifindexes in the caller's namespace. Not `Send`,
    /// so neither is the fixture: it stays on the thread that entered.
    _inside: NetnsGuard,
    pub netns: OwnedNetns,
}

/// A network namespace the test made, deleted on drop (its devices go with it).
pub struct OwnedNetns {
    name: String,
}

impl OwnedNetns {
    pub fn create(name: &str) -> Self {
        ip(&["netns", "add", name]);
        OwnedNetns { name: name.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for OwnedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// What a program did with a frame: its verdict and the frame as it left it.
pub struct Outcome {
    pub verdict: u32,
    pub frame: Vec<u8>,
}

/// Runs `program` once on `frame` with the context `context` (BPF_PROG_TEST_RUN, through aya).
pub fn test_run<P>(program: &P, frame: &[u8], context: &[u8]) -> Result<Outcome, ProgramError>
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = TestRunResult>,
{
    // Room for what a program may add in front (encapsulation) or behind.
    let mut out = vec![0u8; frame.len() + 256];
    let options = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ctx_in: Some(context),
        ..TestRunOptions::default()
    };
    let result = program.test_run(options)?;
    out.truncate(result.data_size_out as usize);
    Ok(Outcome { verdict: result.return_value, frame: out })
}

/// Removes the maps' pins and the directory on drop.
pub struct PinGuard(pub PinDir);

impl Drop for PinGuard {
    fn drop(&mut self) {
        let _ = Tables::new(&self.0).unpin_all();
        self.0.remove_if_empty();
    }
}

/// Runs `f` on a thread of its own, with its runtime: an instance enters its namespace for the rest of the thread.
pub fn on_thread(f: impl AsyncFnOnce() + Send) {
    std::thread::scope(|scope| {
        scope.spawn(|| runtime().block_on(f())).join().unwrap();
    });
}

/// Runs `f` with the instance of the namespace `host`, on a thread of its own.
pub fn on_instance(host: &str, state_dir: &std::path::Path, f: impl AsyncFnOnce(&Instance) + Send) {
    on_thread(async move || {
        let instance = Instance::open(Some(host), Some(state_dir)).unwrap();
        f(&instance).await;
    });
}

static NEXT_FIXTURE: AtomicU32 = AtomicU32::new(0);

pub fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

pub fn ifindex(name: &str) -> u32 {
    let c_name = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C string.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    assert_ne!(index, 0, "no device {name}");
    index
}

impl Fixture {
    /// One macvlan network of mode `mode` whose endpoints are the three ports (passthru: the first only).
    pub fn new(mode: MacvlanMode) -> Self {
        Self::macvlan(mode, false)
    }

    /// `new`, with host access.
    pub fn with_host_access(mode: MacvlanMode) -> Self {
        Self::macvlan(mode, true)
    }

    fn macvlan(mode: MacvlanMode, host_access: bool) -> Self {
        let fixture = Self::bare();
        let members = if mode == MacvlanMode::Passthru { 1 } else { 3 };
        let endpoints = (0..members).map(|slot| fixture.endpoint(slot, ENDPOINT_MACS[slot], Vec::new())).collect();
        let settings = Macvlan { mode, host_access, source_macs: Vec::new() };
        fixture.install(&[fixture.network(NETWORK, DriverSettings::Macvlan(settings), endpoints)]);
        fixture
    }

    /// The namespace, devices and datapath, no network yet.
    pub fn bare() -> Self {
        let netns_name = format!("xl{}dp{}", std::process::id(), NEXT_FIXTURE.fetch_add(1, Ordering::Relaxed));
        let netns = OwnedNetns::create(&netns_name);
        // No IPv6 on the test devices: their own ND/MLD frames would mix with what the tests count.
        let status = Command::new("ip")
            .args(["netns", "exec", &netns_name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            .arg("net.ipv6.conf.default.disable_ipv6=1")
            .status()
            .expect("run sysctl");
        assert!(status.success(), "disable IPv6 in {netns_name}");
        ip(&["-n", &netns_name, "link", "add", "parent", "type", "veth", "peer", "name", "wire"]);
        for n in 1..=3 {
            let (host, inner) = (format!("port{n}"), format!("ep{n}"));
            ip(&["-n", &netns_name, "link", "add", &host, "type", "veth", "peer", "name", &inner]);
        }
        // Copies (bpf_clone_redirect) are really sent, and a device that is down refuses them.
        for device in ["parent", "wire", "port1", "ep1", "port2", "ep2", "port3", "ep3"] {
            ip(&["-n", &netns_name, "link", "set", device, "up"]);
        }
        let inside = Netns::open(&netns_name).unwrap().enter().unwrap();
        let pins = PinGuard(PinDir::for_instance(&netns_name));
        let datapath = Datapath::load(&pins.0).expect("load datapath");
        let parent = ifindex("parent");
        let ports = [ifindex("port1"), ifindex("port2"), ifindex("port3")];
        // Every port has counters, in a network or not: the tests read all three.
        for port in ports {
            Tables::new(&pins.0).reset_stats(port).unwrap();
        }
        Fixture { datapath, parent, ports, pins, _inside: inside, netns }
    }

    pub fn tables(&self) -> Tables<'_> {
        Tables::new(&self.pins.0)
    }

    /// Runs a command inside the fixture's namespace (addresses, neighbours, sysctls for the FIB lookups).
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["-n", self.netns.name()];
        full.extend_from_slice(args);
        ip(&full);
    }

    /// The fixture's port `slot` (0-2) as an endpoint in the product's model.
    pub fn endpoint(&self, slot: usize, mac: [u8; 6], addresses: Vec<IpNet>) -> Endpoint {
        let n = slot + 1;
        Endpoint {
            at: EndpointRef { netns: self.netns.name().into(), ifname: format!("ep{n}") },
            mac: Mac(mac),
            addresses,
            host: HostPort { ifname: format!("port{n}"), ifindex: self.ports[slot] },
            container_id: None,
            placement: Default::default(),
        }
    }

    /// `count` more veth pairs in the fixture's namespace, up, as endpoints of the product's model (host side
    /// `fpN`, endpoint side `feN`, MAC 02:66:00:00:HH:LL for N = 0xHHLL), with the features `endpoint add` gives
    /// them: for networks larger than the three ports. Made in one `ip -batch`, hundreds of them in a second or two.
    pub fn extra_endpoints(&self, count: usize) -> Vec<Endpoint> {
        let mut commands = String::new();
        for n in 0..count {
            commands
                .push_str(&format!("link add fp{n} type veth peer name fe{n}\nlink set fp{n} up\nlink set fe{n} up\n"));
        }
        let mut ip = Command::new("ip")
            .args(["-n", self.netns.name(), "-batch", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("run ip -batch");
        use std::io::Write;
        ip.stdin.take().unwrap().write_all(commands.as_bytes()).unwrap();
        assert!(ip.wait().unwrap().success(), "ip -batch: {count} veth pairs");
        // As `endpoint add` makes them for the default (tc) hook, both ways in for copies: the first of a flood's
        // copies through the CPU's backlog, the rest through the endpoints' rings (the test thread is in the
        // namespace of both ends).
        for n in 0..count {
            port::queue_copies_per_endpoint(&format!("fp{n}"), &format!("fe{n}"), ParentHook::Tc).unwrap();
        }
        (0..count)
            .map(|n| Endpoint {
                at: EndpointRef { netns: self.netns.name().into(), ifname: format!("fe{n}") },
                mac: Mac([0x02, 0x66, 0, 0, (n >> 8) as u8, n as u8]),
                addresses: Vec::new(),
                host: HostPort { ifname: format!("fp{n}"), ifindex: ifindex(&format!("fp{n}")) },
                container_id: None,
                placement: Default::default(),
            })
            .collect()
    }

    /// Frames each endpoint's own interface received (its rx counter, which the veth counts as it hands a frame on):
    /// what really arrived, where the datapath's counters say what it sent.
    pub fn received(&self, endpoints: &[Endpoint]) -> Vec<u64> {
        let output = Command::new("ip").args(["-n", self.netns.name(), "-s", "-j", "link", "show"]).output().unwrap();
        let links: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let rx_of = |ifname: &str| {
            let link = links.as_array().unwrap().iter().find(|link| link["ifname"] == ifname).unwrap();
            link["stats64"]["rx"]["packets"].as_u64().unwrap()
        };
        endpoints.iter().map(|endpoint| rx_of(&endpoint.at.ifname)).collect()
    }

    /// A network on the fixture's parent, in the product's model.
    pub fn network(&self, id: u32, driver: DriverSettings, endpoints: Vec<Endpoint>) -> Network {
        Network {
            name: format!("net{id}"),
            id,
            parent: Parent { name: "parent".into(), ifindex: self.parent, mac: Mac(PARENT_MAC), vlan: None },
            hook: ParentHook::Xdp,
            driver,
            next_port: endpoints.len() as u32,
            subnets: Vec::new(),
            endpoints,
        }
    }

    /// `network(..)` on VLAN `vlan` of the fixture's parent.
    pub fn network_on_vlan(&self, id: u32, vlan: u16, driver: DriverSettings, endpoints: Vec<Endpoint>) -> Network {
        on_vlan(self.network(id, driver, endpoints), vlan)
    }

    /// Puts the networks into the maps with the product's own code, as `network create` and one `endpoint add` per
    /// endpoint do (programs are not attached: the tests run them through BPF_PROG_TEST_RUN).
    pub fn install(&self, networks: &[Network]) {
        let tables = self.tables();
        for network in networks {
            let mut made = Network { endpoints: Vec::new(), ..network.clone() };
            driver::fill_maps(&tables, &made).unwrap();
            for endpoint in &network.endpoints {
                port::fill_maps(&tables, &made, endpoint).unwrap();
                made.endpoints.push(endpoint.clone());
            }
        }
        let state = State { networks: networks.to_vec(), ..State::default() };
        driver::put_parent_entries(&tables, &state, self.parent).unwrap();
    }

    /// The parent's XDP program on `frame`, arriving on the parent.
    pub fn xdp(&mut self, frame: &[u8]) -> Outcome {
        self.try_xdp(frame).expect("test run")
    }

    /// `xdp`, for frames the kernel itself may refuse to run a program on (an error then).
    pub fn try_xdp(&mut self, frame: &[u8]) -> Result<Outcome, ProgramError> {
        let context = XdpMd::arriving(frame.len(), self.parent);
        let program: &mut Xdp = self.datapath.program(program_names::PARENT_XDP).unwrap();
        test_run(program, frame, context.as_bytes())
    }

    /// `tc`, for frames the kernel itself may refuse to build an skb from (None then).
    pub fn try_tc(&mut self, program_name: &str, frame: &[u8], ifindex: u32) -> Option<Outcome> {
        let program: &mut SchedClassifier = self.datapath.program(program_name).unwrap();
        test_run(program, frame, &sk_buff_on(ifindex)).ok()
    }

    /// TC program `program_name` on `frame` as an skb on device `ifindex`.
    pub fn tc(&mut self, program_name: &str, frame: &[u8], ifindex: u32) -> Outcome {
        let program: &mut SchedClassifier = self.datapath.program(program_name).unwrap();
        test_run(program, frame, &sk_buff_on(ifindex)).expect("test run")
    }

    /// The drop events the datapath reported that nobody has read yet, oldest first (read through the library's
    /// reader, as `xlan monitor` reads them).
    pub fn drop_events(&self) -> Vec<DropEvent> {
        runtime().block_on(async {
            let mut events = DropEvents::open(&self.pins.0).unwrap().expect("the datapath pinned its event ring");
            let mut seen = Vec::new();
            // What is in the ring is ready at once; after it the reader waits for more, which do not come.
            while let Ok(event) = tokio::time::timeout(Duration::from_millis(50), events.next()).await {
                seen.push(event.unwrap());
            }
            seen
        })
    }

    /// Frames delivered to each endpoint so far.
    pub fn rx(&self) -> [u64; 3] {
        self.ports.map(|port| self.tables().stats(port).unwrap().rx_packets)
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.tables().drops().unwrap()[reason as usize]
    }
}

/// `network` moved onto VLAN `vlan` of its parent (as `network create --parent PARENT.VLAN` makes it).
pub fn on_vlan(mut network: Network, vlan: u16) -> Network {
    network.parent.vlan = Some(vlan);
    network
}

/// A runtime for the library's async readers, on the test's thread (which is in the fixture's namespace).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// An IPv4/UDP packet (checksums left zero: the datapath checks none) in an untagged Ethernet frame.
pub fn ipv4_packet(dst_mac: [u8; 6], src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&dst_mac);
    bytes.extend_from_slice(&src_mac);
    bytes.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 48, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    bytes.extend_from_slice(&src.octets());
    bytes.extend_from_slice(&dst.octets());
    bytes.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 28, 0, 0]);
    bytes.extend_from_slice(&[0x5a; 20]);
    bytes
}

/// `frame` with a VLAN tag (`tpid`, `tci`) put in front of its EtherType, as a switch port tags it.
pub fn with_tag(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut tagged = frame[..12].to_vec();
    tagged.extend_from_slice(&tpid.to_be_bytes());
    tagged.extend_from_slice(&tci.to_be_bytes());
    tagged.extend_from_slice(&frame[12..]);
    tagged
}

/// An Ethernet frame (optionally 802.1Q-tagged) carrying a small IPv4/UDP-looking payload.
pub fn frame(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&dst);
    bytes.extend_from_slice(&src);
    if let Some(id) = vlan {
        bytes.extend_from_slice(&[0x81, 0x00]);
        bytes.extend_from_slice(&id.to_be_bytes());
    }
    bytes.extend_from_slice(&[0x08, 0x00]);
    bytes.extend((0..46u8).map(|i| i.wrapping_mul(7)));
    bytes
}
