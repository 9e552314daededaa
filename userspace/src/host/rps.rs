//! Receive packet steering (RPS) of a device, and the CPUs it can spread over. RPS is set only through sysfs, and
//! /sys/class/net lists the devices of the network namespace sysfs was mounted from, not the caller's: the write is
//! made by a thread of its own that enters the caller's network namespace, takes a mount namespace of its own (a
//! slave of the host's, so nothing it mounts reaches the host) and mounts that namespace's sysfs over /sys there.
//! The thread, its mount namespace and its sysfs go when it ends.
use std::io;

use crate::{
    error::{Error, Result},
    host::netns::Netns,
};

/// The CPUs RPS can spread over, as a count: the online CPUs 0..n-1 (the RPS map holds a device's CPUs in that
/// order, and the datapath picks one by its position). Online CPUs after a gap are left out. None (0) on a kernel
/// built without RPS (the loopback device, which every namespace has, has no rps_cpus there).
pub fn spreadable_cpus() -> u32 {
    if !std::path::Path::new("/sys/class/net/lo/queues/rx-0/rps_cpus").exists() {
        return 0;
    }
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    leading_cpus(online.trim())
}

/// The length of the run of CPUs 0, 1, 2, … at the start of a CPU list ("0-3,6" → 4).
fn leading_cpus(list: &str) -> u32 {
    let first = list.split(',').next().unwrap_or("");
    match first.split_once('-') {
        Some(("0", last)) => last.parse::<u32>().map_or(0, |last| last + 1),
        None if first == "0" => 1,
        _ => 0,
    }
}

/// The rps_cpus mask of CPUs 0..cpus, as sysfs takes it: hex in comma-separated groups of 32 bits.
fn mask(cpus: u32) -> String {
    let words = cpus.div_ceil(32).max(1);
    (0..words)
        .rev()
        .map(|word| {
            let in_word = cpus.saturating_sub(word * 32).min(32);
            let bits = if in_word == 32 { u32::MAX } else { (1u32 << in_word) - 1 };
            if word == words - 1 {
                format!("{bits:x}")
            } else {
                format!("{bits:08x}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Has RPS spread what `ifname` (a device of the calling thread's namespace) receives over CPUs 0..cpus, on every
/// receive queue (a veth has one per CPU, and a frame arrives on the queue its hash picked on the sending end).
pub fn spread_over(ifname: &str, cpus: u32) -> Result<()> {
    let netns = Netns::current()?;
    let queues = format!("/sys/class/net/{ifname}/queues");
    let mask = mask(cpus);
    let what = format!("write {mask} to {queues}/rx-*/rps_cpus (in the namespace's own sysfs)");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // The thread enters the caller's namespace and keeps it (the guard is dropped with the thread).
                let _inside = netns.enter()?;
                write_in_own_sysfs(&queues, &mask).map_err(|e| Error::io(what.clone(), e))
            })
            .join()
    })
    .map_err(|_| Error::io(what.clone(), io::Error::other("the thread writing it panicked")))?
}

/// On a thread of its own, in the namespace whose sysfs is wanted (it changes the thread's mount namespace for
/// good): `value` into the rps_cpus of every receive queue under `queues`.
fn write_in_own_sysfs(queues: &str, value: &str) -> io::Result<()> {
    let check = |rc: libc::c_int| if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) };
    // SAFETY: plain system calls on this thread with valid C strings; the mount namespace is this thread's own from
    // unshare on, made a slave first, so the sysfs mounted below never propagates to the host.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        ))?;
        check(libc::mount(c"sysfs".as_ptr(), c"/sys".as_ptr(), c"sysfs".as_ptr(), 0, std::ptr::null()))?;
    }
    for queue in std::fs::read_dir(queues)? {
        let queue = queue?;
        if queue.file_name().to_string_lossy().starts_with("rx-") {
            std::fs::write(queue.path().join("rps_cpus"), value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_cpus_counts_from_zero() {
        assert_eq!(leading_cpus("0-1"), 2);
        assert_eq!(leading_cpus("0"), 1);
        assert_eq!(leading_cpus("0-3,6-7"), 4);
        assert_eq!(leading_cpus("1-3"), 0);
        assert_eq!(leading_cpus(""), 0);
    }

    #[test]
    fn masks_are_sysfs_bitmaps() {
        assert_eq!(mask(2), "3");
        assert_eq!(mask(32), "ffffffff");
        assert_eq!(mask(33), "1,ffffffff");
        assert_eq!(mask(64), "ffffffff,ffffffff");
    }
}
