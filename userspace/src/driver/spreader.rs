//! The instance's spreader: a veth pair through which the datapath hands shares of a broadcast's copies to other
//! CPUs (datapath-ebpf's `spread`). The datapath sends a clone per share into the sending end; RPS on the receiving
//! end queues it to the backlog of the CPU its hash names, where `xlan_spreader_ingress` makes that share's copies.
//! Made with the instance's first network and removed with its last; recorded in `XLAN_SPREADER`, which is what the
//! check compares with the devices. On a host with one CPU (or a kernel without RPS) there is no spreader.
use aya::programs::TcAttachType;
use datapath_common::{program_names, SpreaderConfig};

use crate::{
    datapath::{
        loader::{detach, link_names, Datapath},
        maps::Tables,
    },
    error::{Error, Result},
    host::{rps, sysctl},
    instance::Instance,
};

/// The end the datapath sends clones into.
pub const SENDING_END: &str = "xlan-spread";
/// The end RPS spreads from, where the spreader's program runs.
pub const RECEIVING_END: &str = "xlan-spread-rx";
/// veth's largest MTU: a clone of any frame the parent takes must fit.
const MTU: u32 = 65535;

/// The CPUs copies are spread over (fewer than 2: no spreader).
pub fn cpus() -> u32 {
    rps::spreadable_cpus().min(datapath_common::MAX_SPREAD_CPUS as u32)
}

/// What is wrong with the spreader of an instance that has networks, if anything.
pub async fn problem(instance: &Instance, tables: &Tables<'_>) -> Result<Option<String>> {
    let cpus = cpus();
    if cpus < 2 {
        return Ok(None);
    }
    let recorded = tables.spreader()?;
    if recorded.ifindex == 0 {
        return Ok(Some("it is not recorded in the datapath".into()));
    }
    let problem = match instance.netlink.device(SENDING_END).await? {
        None => "its device is gone",
        Some(device) if device.index != recorded.ifindex || !device.is_veth => "its device was re-created",
        Some(_) if instance.netlink.device(RECEIVING_END).await?.is_none() => "its receiving end is gone",
        Some(_) if !instance.pins.link(link_names::SPREADER).exists() => "its program is not attached",
        Some(_) if recorded.cpus != cpus => "the number of CPUs changed",
        Some(_) => return Ok(None),
    };
    Ok(Some(problem.into()))
}

/// Makes the spreader, or completes the one there (a command killed half-way, a repair): idempotent. A pair of
/// these names that is not a veth pair is someone else's and is left alone.
pub async fn ensure(instance: &Instance, datapath: &mut Datapath, tables: &Tables<'_>) -> Result<()> {
    // Every network's attach comes here: a spreader in order costs two device lookups, not its set-up again.
    if problem(instance, tables).await?.is_none() {
        return Ok(());
    }
    let cpus = cpus();
    let netlink = &instance.netlink;
    let (sending, receiving) = match (netlink.device(SENDING_END).await?, netlink.device(RECEIVING_END).await?) {
        (None, None) => {
            netlink.create_veth(SENDING_END, RECEIVING_END).await?;
            (netlink.require_device(SENDING_END).await?, netlink.require_device(RECEIVING_END).await?)
        }
        (Some(sending), Some(receiving)) if sending.is_veth && receiving.is_veth => (sending, receiving),
        (Some(_), _) => return Err(Error::SpreaderNameTaken { device: SENDING_END.into() }),
        (None, Some(_)) => return Err(Error::SpreaderNameTaken { device: RECEIVING_END.into() }),
    };
    for (name, device) in [(SENDING_END, &sending), (RECEIVING_END, &receiving)] {
        // The pair carries clones only: no addresses, no IPv6 chatter of its own.
        sysctl::disable_ipv6(name)?;
        if device.mtu != MTU {
            netlink.set_mtu(device.index, MTU).await?;
        }
        netlink.set_up(device.index).await?;
    }
    rps::spread_over(RECEIVING_END, cpus)?;
    // A pin of the program on another pair (deleted, or made before the datapath recorded this one) holds a link
    // whose device is gone: the program must be attached to this pair.
    if tables.spreader()?.ifindex != sending.index {
        detach(&instance.pins, link_names::SPREADER)?;
    }
    if !instance.pins.link(link_names::SPREADER).exists() {
        let program = program_names::SPREADER_INGRESS;
        datapath.attach_tc(program, RECEIVING_END, TcAttachType::Ingress, link_names::SPREADER)?;
    }
    tables.put_spreader(SpreaderConfig::new(sending.index, cpus))
}

/// Removes the spreader (the instance's last network is gone): its program, then the pair, if the device the
/// datapath recorded is still the one of that name (a device xlan did not make is never deleted). Idempotent.
pub async fn remove(instance: &Instance, tables: &Tables<'_>) -> Result<()> {
    detach(&instance.pins, link_names::SPREADER)?;
    let recorded = tables.spreader()?;
    if recorded.ifindex == 0 {
        return Ok(());
    }
    if instance.netlink.device(SENDING_END).await?.is_some_and(|device| device.index == recorded.ifindex) {
        // Deleting one end of a veth pair deletes both.
        instance.netlink.delete(recorded.ifindex).await?;
    }
    if tables.exist() {
        tables.put_spreader(SpreaderConfig::default())?;
    }
    Ok(())
}
