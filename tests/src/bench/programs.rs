//! The bench's eBPF programs (datapath-ebpf/src/bench.rs), loaded through xlan's own loader from the object xlan
//! embeds, one load per topology so each has its own config and counters. Attachments belong to this process (aya
//! links, no pins) and go away when the load is dropped, or with the device.

use anyhow::{anyhow, Context, Result};
use aya::maps::{Array, DevMapHash, MapData, PerCpuArray};
use aya::programs::tc::TcAttachOptions;
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode};
use datapath_common::bench::{map_names, program_names, BenchConfig, BenchTemplate, COUNTER_DELIVERED, FRAME_LEN};
use xlan_lib::datapath::{loader::Datapath, pins::PinDir};

use crate::netns::enter;

pub struct BenchPrograms {
    datapath: Datapath,
}

impl BenchPrograms {
    /// Loads the object. The datapath's own maps are declared pinned, so the load pins them under the xlan instance
    /// directory named `instance` (the topology's host namespace, which the harness's cleanup already removes);
    /// the bench's maps are not pinned.
    pub fn load(instance: &str) -> Result<BenchPrograms> {
        // Unshared: the bench holds no instance lock, so it leaves the instance's shared programs alone.
        let datapath = Datapath::load_unshared(&PinDir::for_instance(instance))
            .with_context(|| format!("loading the eBPF object for bench instance {instance}"))?;
        Ok(BenchPrograms { datapath })
    }

    /// Attaches XDP program `program` to `ifname` in namespace `netns` (native mode: all devices here are veths).
    pub fn attach_xdp(&mut self, netns: &str, ifname: &str, program: &str) -> Result<()> {
        let _inside = enter(netns)?;
        let xdp: &mut Xdp = self.datapath.program(program)?;
        xdp.attach(ifname, XdpMode::default())
            .with_context(|| format!("attaching {program} to {ifname} in {netns}"))?;
        Ok(())
    }

    /// Attaches TC program `program` to the tcx ingress of `ifname` in namespace `netns`.
    pub fn attach_tc_ingress(&mut self, netns: &str, ifname: &str, program: &str) -> Result<()> {
        let _inside = enter(netns)?;
        let classifier: &mut SchedClassifier = self.datapath.program(program)?;
        classifier
            .attach_with_options(ifname, TcAttachType::Ingress, TcAttachOptions::TcxOrder(LinkOrder::default()))
            .with_context(|| format!("attaching {program} to {ifname} ingress in {netns}"))?;
        Ok(())
    }

    /// The generator's program (loaded on first use), for BPF_PROG_TEST_RUN through aya's `TestRun`.
    pub fn generator(&mut self) -> Result<&Xdp> {
        Ok(self.datapath.program(program_names::GENERATOR)?)
    }

    pub fn config(&mut self) -> Result<BenchConfig> {
        self.config_map()?.get(&0, 0).context("reading the bench config")
    }

    pub fn set_config(&mut self, config: BenchConfig) -> Result<()> {
        self.config_map()?.set(0, config, 0).context("writing the bench config")
    }

    /// The frame the generator restores into every frame it sends (exactly `FRAME_LEN` bytes).
    pub fn set_template(&mut self, frame: &[u8]) -> Result<()> {
        let bytes: [u8; FRAME_LEN] =
            frame.try_into().map_err(|_| anyhow!("a {}-byte frame, the generator sends {FRAME_LEN}", frame.len()))?;
        let name = map_names::TEMPLATE;
        let map = self.datapath.ebpf_mut().map_mut(name).ok_or_else(|| anyhow!("no map {name}"))?;
        let mut template: Array<&mut MapData, BenchTemplate> = Array::try_from(map)?;
        template.set(0, BenchTemplate { bytes }, 0).context("writing the generator's template")
    }

    /// The ports the flood limits copy to (`LIMIT_FLOOD_TC`, `LIMIT_FLOOD_XDP`): devices of namespace `netns`,
    /// where the limit is attached, by ifindex (the device map resolves them in the writer's namespace).
    pub fn set_flood_ports(&mut self, netns: &str, ifindexes: &[u32]) -> Result<()> {
        let _inside = enter(netns)?;
        let ebpf = self.datapath.ebpf_mut();
        let name = map_names::FLOOD_PORTS;
        let mut ports: Array<&mut MapData, u32> =
            Array::try_from(ebpf.map_mut(name).ok_or_else(|| anyhow!("no map {name}"))?)?;
        for (index, &ifindex) in ifindexes.iter().enumerate() {
            ports.set(index as u32, ifindex, 0).with_context(|| format!("writing {name}[{index}]"))?;
        }
        let name = map_names::FLOOD_DEVICES;
        let mut devices = DevMapHash::try_from(ebpf.map_mut(name).ok_or_else(|| anyhow!("no map {name}"))?)?;
        for &ifindex in ifindexes {
            devices.insert(ifindex, ifindex, None, 0).with_context(|| format!("adding ifindex {ifindex} to {name}"))?;
        }
        let config = self.config()?;
        self.set_config(BenchConfig { flood_ports: ifindexes.len() as u32, ..config })
    }

    /// Frames the counter programs of this load have seen, over all CPUs and all devices they are attached to.
    pub fn delivered(&mut self) -> Result<u64> {
        let name = map_names::COUNTERS;
        let map = self.datapath.ebpf_mut().map_mut(name).ok_or_else(|| anyhow!("no map {name}"))?;
        let counters: PerCpuArray<&mut MapData, u64> = PerCpuArray::try_from(map)?;
        Ok(counters.get(&COUNTER_DELIVERED, 0)?.iter().sum())
    }

    fn config_map(&mut self) -> Result<Array<&mut MapData, BenchConfig>> {
        let name = map_names::CONFIG;
        let map = self.datapath.ebpf_mut().map_mut(name).ok_or_else(|| anyhow!("no map {name}"))?;
        Ok(Array::try_from(map)?)
    }
}
