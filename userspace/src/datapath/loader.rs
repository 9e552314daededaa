//! Loads the eBPF object (its maps pinned under the instance's bpffs root, so every load shares them),
//! attaches programs and pins their links so they outlive this process.
//!
//! The datapath's programs are verified once per instance, not once per attachment: the first load of each pins it
//! (`PinDir::programs`), and later loads take it from there. Verifying the endpoints' program takes 0.3 s, which
//! every `endpoint add` paid, and each load brought its own copy of the program and of its per-CPU caches into the
//! kernel. A pinned program holds the maps it was verified with, so it is kept under a key of the object and of the
//! maps' ids: another binary's object, or maps made anew (the doctor's reinstall), is another key, and the programs
//! of any other key are unpinned when a load makes the directory of a new one.
use std::{
    hash::{DefaultHasher, Hash, Hasher},
    path::PathBuf,
    sync::OnceLock,
};

use aya::{
    maps::{Map, MapData},
    programs::{
        links::{FdLink, PinnedLink},
        tc::TcAttachOptions,
        LinkOrder, SchedClassifier, TcAttachType, TestRun, TestRunOptions, Xdp, XdpMode,
    },
    Ebpf, EbpfLoader,
};

use datapath_common::{map_names, program_names};

use crate::{
    datapath::{
        pins::{unpin, PinDir},
        testrun,
    },
    error::{Error, Result},
};

/// The datapath, built by `cargo xtask build` and embedded in the binary.
static DATAPATH_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("XLAN_DATAPATH_OBJ"));

pub struct Datapath {
    ebpf: Ebpf,
    pins: PinDir,
    /// Where this load's programs are shared with the instance's other loads (`shared_programs_dir`); None: every
    /// program it uses is verified for it alone.
    shared_programs: Option<PathBuf>,
}

impl Datapath {
    /// Loads the object; its maps are the instance's pinned ones (created on first use), and its programs are the
    /// instance's shared ones.
    pub fn load(pins: &PinDir) -> Result<Self> {
        let mut datapath = Self::load_unshared(pins)?;
        datapath.shared_programs = datapath.shared_programs_dir();
        Ok(datapath)
    }

    /// `load`, with programs of its own, verified here and pinned nowhere: for what holds no instance lock (the
    /// bench) or must verify every program (`probe`).
    pub fn load_unshared(pins: &PinDir) -> Result<Self> {
        pins.create()?;
        let ebpf = EbpfLoader::new()
            .default_map_pin_directory(&pins.root)
            .load(DATAPATH_OBJECT)
            .map_err(|e| Error::bpf("load datapath object", e))?;
        Ok(Self { ebpf, pins: pins.clone(), shared_programs: None })
    }

    /// The loaded object, for BPF_PROG_TEST_RUN and other direct use.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Attaches an XDP program to the interface `ifindex` of the calling thread's namespace and pins the link.
    pub fn attach_xdp(&mut self, program: &str, ifindex: u32, link_name: &str) -> Result<()> {
        let xdp: &mut Xdp = self.program(program)?;
        let link_id = xdp.attach_to_if_index(ifindex, XdpMode::default()).map_err(|e| Error::bpf(program, e))?;
        let link = xdp.take_link(link_id).map_err(|e| Error::bpf(program, e))?;
        let fd_link = FdLink::try_from(link).map_err(|e| Error::bpf(program, e))?;
        self.pin(fd_link, link_name)
    }

    /// Attaches a TC program through tcx to interface `ifname` (calling thread's namespace) and pins the link.
    pub fn attach_tc(&mut self, program: &str, ifname: &str, direction: TcAttachType, link_name: &str) -> Result<()> {
        let classifier: &mut SchedClassifier = self.program(program)?;
        let link_id = classifier
            .attach_with_options(ifname, direction, TcAttachOptions::TcxOrder(LinkOrder::default()))
            .map_err(|e| Error::bpf(program, e))?;
        let link = classifier.take_link(link_id).map_err(|e| Error::bpf(program, e))?;
        let fd_link = FdLink::try_from(link).map_err(|e| Error::bpf(program, e))?;
        self.pin(fd_link, link_name)
    }

    /// Replaces the program behind the pinned link `link_name` with this load's program of the same role
    /// (`link_names::program_of`), atomically (BPF_LINK_UPDATE): the hook is never empty, no frame meets neither
    /// program, and the pinned maps keep every entry. Returns the program's name.
    pub fn replace(&mut self, link_name: &str) -> Result<&'static str> {
        let (program, hook) = link_names::program_of(link_name)
            .ok_or_else(|| Error::BpfObject(format!("no program for the pinned link {link_name}")))?;
        let path = self.pins.link(link_name);
        let pinned = PinnedLink::from_pin(&path).map_err(|e| Error::bpf(format!("open {}", path.display()), e))?;
        let link = FdLink::from(pinned);
        // The updated link stays pinned; dropping this program's handle of it only closes a descriptor.
        match hook {
            Hook::Xdp => {
                let xdp: &mut Xdp = self.program(program)?;
                let link = link.try_into().map_err(|e| Error::bpf(link_name, e))?;
                xdp.attach_to_link(link).map_err(|e| Error::bpf(format!("update {link_name}"), e))?;
            }
            Hook::Tc => {
                let classifier: &mut SchedClassifier = self.program(program)?;
                let link = link.try_into().map_err(|e| Error::bpf(link_name, e))?;
                classifier.attach_to_link(link).map_err(|e| Error::bpf(format!("update {link_name}"), e))?;
            }
        }
        Ok(program)
    }

    /// Takes endpoint slot `slot` out of every multicast group, then deletes network `empty_of`'s groups that no
    /// slot is in any more (0: none), with `program_names::GROUPS_FORGET` in a test run.
    pub fn forget_group_member(&mut self, slot: u32, empty_of: u32) -> Result<()> {
        let name = program_names::GROUPS_FORGET;
        let program: &mut SchedClassifier = self.program(name)?;
        // The program reads no frame, but a TC test run needs an Ethernet header's worth.
        let frame = [0u8; 14];
        let context = testrun::sk_buff_marked(empty_of, slot);
        let options = TestRunOptions { data_in: Some(&frame), ctx_in: Some(&context), ..TestRunOptions::default() };
        program.test_run(options).map_err(|e| Error::bpf(format!("run {name}"), e))?;
        Ok(())
    }

    fn pin(&self, link: FdLink, link_name: &str) -> Result<()> {
        let path = self.pins.link(link_name);
        // A stale pin of the same name (a crashed earlier run) would make the pin fail: replace it.
        unpin(&path)?;
        link.pin(&path).map_err(|e| Error::bpf(format!("pin {}", path.display()), e))?;
        Ok(())
    }

    /// The named program, loaded into the kernel on first use. One of the datapath's own programs
    /// (`program_names::SHARED`) is taken from the instance's pin of it when there is one, and pinned there when
    /// this load is the first to verify it.
    pub fn program<'a, P>(&'a mut self, name: &str) -> Result<&'a mut P>
    where
        &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
        P: LoadProgram + 'a,
    {
        let shared_pin = match program_names::SHARED.contains(&name) {
            true => self.shared_programs.as_ref().map(|dir| dir.join(name)),
            false => None,
        };
        let program =
            self.ebpf.program_mut(name).ok_or_else(|| Error::BpfObject(format!("no program {name} in the object")))?;
        let mut loaded = program.fd().is_ok();
        if let Some(pin) = shared_pin.as_deref().filter(|_| !loaded) {
            // A pin that is not there, or cannot be opened, is only a miss: the program is verified here.
            if let Ok(pinned) = P::from_pin(pin) {
                *program = pinned;
                loaded = true;
            }
        }
        let typed: &mut P = program.try_into().map_err(|e| Error::bpf(name, e))?;
        if !loaded {
            load_with_retries(typed).map_err(|e| Error::bpf(format!("load {name}"), e))?;
            if let Some(pin) = shared_pin {
                // Failing to pin (another process pinned it first) leaves only the next load to verify it again.
                let _ = typed.pin_at(&pin);
            }
        }
        Ok(typed)
    }

    /// The directory of the instance's pinned programs that fit this load, made when it is not there (and the
    /// programs of any other object or maps unpinned). Sharing is only a saving: when the directory cannot be made,
    /// this load's programs are its own.
    fn shared_programs_dir(&self) -> Option<PathBuf> {
        // The ids of the maps this load holds (its programs are verified with them), not of what is pinned now.
        let mut key = DefaultHasher::new();
        object_hash().hash(&mut key);
        for name in map_names::ALL {
            (name, map_id(self.ebpf.map(name)?)?).hash(&mut key);
        }
        self.pins.shared_programs(&format!("{:016x}", key.finish()))
    }
}

/// The kernel's id of a map of the datapath's kinds.
fn map_id(map: &Map) -> Option<u32> {
    let data: &MapData = match map {
        Map::Array(data)
        | Map::PerCpuArray(data)
        | Map::HashMap(data)
        | Map::DevMapHash(data)
        | Map::LpmTrie(data)
        | Map::RingBuf(data) => data,
        _ => return None,
    };
    data.info().ok().map(|info| info.id())
}

/// A hash of the embedded object, computed once per process.
fn object_hash() -> u64 {
    static HASH: OnceLock<u64> = OnceLock::new();
    *HASH.get_or_init(|| {
        let mut hasher = DefaultHasher::new();
        DATAPATH_OBJECT.hash(&mut hasher);
        hasher.finish()
    })
}

/// Whether the datapath can be loaded on this machine (a CNI plugin's STATUS): the object and each of its programs
/// loaded into the kernel, with the maps pinned in a scratch directory of their own that is removed again. Nothing is
/// attached and no instance's maps are touched.
pub fn probe() -> Result<()> {
    use datapath_common::program_names as names;
    let scratch = PinDir {
        root: std::path::Path::new(super::pins::BPFFS).join("xlan").join(format!("probe_{}", std::process::id())),
    };
    let loaded = (|| {
        let mut datapath = Datapath::load_unshared(&scratch)?;
        for name in [names::PARENT_XDP, names::XDP_PASS] {
            datapath.program::<Xdp>(name)?;
        }
        for name in [
            names::PARENT_INGRESS,
            names::PARENT_EGRESS,
            names::ENDPOINT_INGRESS,
            names::SPREADER_INGRESS,
            names::GROUPS_FORGET,
        ] {
            datapath.program::<SchedClassifier>(name)?;
        }
        Ok(())
    })();
    if let Ok(entries) = std::fs::read_dir(&scratch.root) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    scratch.remove_if_empty();
    loaded
}

/// How often a load the verifier gave up on with EAGAIN is tried again.
const LOAD_ATTEMPTS: usize = 5;

/// Loads the program, trying again when the verifier returns EAGAIN: it does so when a signal arrives for the
/// loading thread mid-verification, which is not a verdict on the program (libbpf retries the same way).
fn load_with_retries<P: LoadProgram>(program: &mut P) -> Result<(), aya::programs::ProgramError> {
    let mut attempt = 1;
    loop {
        match program.load_program() {
            Err(aya::programs::ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EAGAIN) && attempt < LOAD_ATTEMPTS =>
            {
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Detaches a pinned link: removing its last reference (the pin) detaches the program.
pub fn detach(pins: &PinDir, link_name: &str) -> Result<()> {
    unpin(&pins.link(link_name))
}

/// The pinned links of a parent's programs, by hook.
pub mod link_names {
    /// The parent's XDP program, its tcx ingress and egress programs.
    pub const PARENT_PARTS: [&str; 3] = ["xdp", "ingress", "egress"];

    pub fn parent(parent_ifindex: u32, part: &str) -> String {
        format!("parent{parent_ifindex}-{part}")
    }

    /// An endpoint's programs: "tc" on its host-side veth, "xdp" (the pass stub) on its own end.
    pub fn port(port: u32, part: &str) -> String {
        format!("port{port}-{part}")
    }

    /// The spreader's program, on its receiving end (one per instance).
    pub const SPREADER: &str = "spreader-ingress";

    /// Which program a pinned link of these names runs, and on which kind of hook.
    pub fn program_of(link_name: &str) -> Option<(&'static str, super::Hook)> {
        use datapath_common::program_names::*;
        let (owner, part) = link_name.rsplit_once('-')?;
        let digits = |prefix: &str| owner.strip_prefix(prefix).is_some_and(|n| n.parse::<u32>().is_ok());
        match part {
            "xdp" if digits("parent") => Some((PARENT_XDP, super::Hook::Xdp)),
            "ingress" if digits("parent") => Some((PARENT_INGRESS, super::Hook::Tc)),
            "egress" if digits("parent") => Some((PARENT_EGRESS, super::Hook::Tc)),
            "tc" if digits("port") => Some((ENDPOINT_INGRESS, super::Hook::Tc)),
            "xdp" if digits("port") => Some((XDP_PASS, super::Hook::Xdp)),
            _ if link_name == SPREADER => Some((SPREADER_INGRESS, super::Hook::Tc)),
            _ => None,
        }
    }
}

/// The kinds of hooks the datapath's programs attach to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Xdp,
    Tc,
}

/// Programs that can be loaded, pinned and taken from a pin, whatever their type.
pub trait LoadProgram {
    fn load_program(&mut self) -> Result<(), aya::programs::ProgramError>;
    /// The program pinned at `path`, as the object's entry of it.
    fn from_pin(path: &std::path::Path) -> Result<aya::programs::Program, aya::programs::ProgramError>;
    fn pin_at(&mut self, path: &std::path::Path) -> Result<(), aya::pin::PinError>;
}

/// Both program types the datapath attaches (`Xdp::from_pin` also takes the attach type, passed here).
macro_rules! load_program {
    ($($program:ident($($from_pin_arg:expr)?)),+) => {$(
        impl LoadProgram for $program {
            fn load_program(&mut self) -> Result<(), aya::programs::ProgramError> {
                self.load()
            }
            fn from_pin(path: &std::path::Path) -> Result<aya::programs::Program, aya::programs::ProgramError> {
                Ok(aya::programs::Program::$program($program::from_pin(path $(, $from_pin_arg)?)?))
            }
            fn pin_at(&mut self, path: &std::path::Path) -> Result<(), aya::pin::PinError> {
                self.pin(path)
            }
        }
    )+};
}

load_program!(Xdp(aya_obj::programs::XdpAttachType::Interface), SchedClassifier());
