//! Loads the eBPF object (its maps pinned under the instance's bpffs root, so every load shares them),
//! attaches programs and pins their links so they outlive this process.
use aya::{
    programs::{
        links::{FdLink, PinnedLink},
        tc::TcAttachOptions,
        LinkOrder, SchedClassifier, TcAttachType, TestRun, TestRunOptions, Xdp, XdpMode,
    },
    Ebpf, EbpfLoader,
};

use datapath_common::program_names;

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
}

impl Datapath {
    /// Loads the object; its maps are the instance's pinned ones (created on first use).
    pub fn load(pins: &PinDir) -> Result<Self> {
        pins.create()?;
        let ebpf = EbpfLoader::new()
            .default_map_pin_directory(&pins.root)
            .load(DATAPATH_OBJECT)
            .map_err(|e| Error::bpf("load datapath object", e))?;
        Ok(Self { ebpf, pins: pins.clone() })
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

    /// The named program, loaded into the kernel on first use.
    pub fn program<'a, P>(&'a mut self, name: &str) -> Result<&'a mut P>
    where
        &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
        P: LoadProgram + 'a,
    {
        let program =
            self.ebpf.program_mut(name).ok_or_else(|| Error::BpfObject(format!("no program {name} in the object")))?;
        let typed: &mut P = program.try_into().map_err(|e| Error::bpf(name, e))?;
        load_with_retries(typed).map_err(|e| Error::bpf(format!("load {name}"), e))?;
        Ok(typed)
    }
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
        let mut datapath = Datapath::load(&scratch)?;
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
        match program.load_once() {
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

/// Programs that can be loaded once, whatever their type.
pub trait LoadProgram {
    fn load_once(&mut self) -> Result<(), aya::programs::ProgramError>;
}

/// Both program types the datapath attaches load the same way: once, on first use.
macro_rules! load_once {
    ($($program:ty),+) => {$(
        impl LoadProgram for $program {
            fn load_once(&mut self) -> Result<(), aya::programs::ProgramError> {
                if self.fd().is_ok() {
                    Ok(())
                } else {
                    self.load()
                }
            }
        }
    )+};
}

load_once!(Xdp, SchedClassifier);
