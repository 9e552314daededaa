//! Batched reading and deleting of a hash map's entries (BPF_MAP_LOOKUP_BATCH, BPF_MAP_DELETE_BATCH), which aya
//! 0.14 lacks: its `HashMap` walks a map one key at a time (BPF_MAP_GET_NEXT_KEY, then a lookup per key) and deletes
//! one key per call, so a million FDB entries took ~13 s to read and delete. Through bpf(2) here, thousands of
//! entries per call.
use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
};

use aya::Pod;

/// bpf(2) commands (include/uapi/linux/bpf.h, `enum bpf_cmd`).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// Entries per call. A hash map's lookup batch copies whole buckets, so it needs room for the fullest one (a few
/// entries in a table with more buckets than entries).
const CHUNK: usize = 16 * 1024;

/// The `batch` member of `union bpf_attr`: what the batch commands read. The kernel takes a shorter attribute and
/// treats the rest of the union as zero.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Runs one batch command; the kernel writes back in `attr.count` how many entries it handled, also on error.
fn batch(command: libc::c_long, attr: &mut BatchAttr) -> io::Result<()> {
    // SAFETY: `attr` is a valid `batch` attribute whose pointers, set by the callers, cover `count` entries.
    let result = unsafe { libc::syscall(libc::SYS_bpf, command, attr as *mut BatchAttr, size_of::<BatchAttr>()) };
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Every entry of the hash map `map` whose keys are `K` and values `V`.
pub fn entries<K: Pod, V: Pod>(map: BorrowedFd<'_>) -> io::Result<Vec<(K, V)>> {
    let mut entries = Vec::new();
    let mut keys: Vec<K> = Vec::with_capacity(CHUNK);
    let mut values: Vec<V> = Vec::with_capacity(CHUNK);
    // Where the next call starts (for a hash map, a bucket); no position for the first call.
    let mut position = 0u32;
    let mut next = 0u32;
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &position as *const u32 as u64 },
            out_batch: &mut next as *mut u32 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: map.as_raw_fd() as u32,
            ..Default::default()
        };
        let result = batch(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let filled = (attr.count as usize).min(CHUNK);
        // SAFETY: the kernel wrote `filled` keys and values; both are plain data (`Pod`), valid for any bytes.
        unsafe {
            keys.set_len(filled);
            values.set_len(filled);
        }
        entries.extend(keys.drain(..).zip(values.drain(..)));
        match result {
            Ok(()) => {}
            // The end of the map: the last call's entries are in.
            Err(error) if error.raw_os_error() == Some(libc::ENOENT) => return Ok(entries),
            Err(error) => return Err(error),
        }
        position = next;
        first = false;
    }
}

/// Deletes `keys` from the hash map `map`, split over the CPUs: the kernel deletes one key after the other in each
/// call, ~0.7 µs a key here, and a million of them in one thread took 0.7 s. A key that is not there (the datapath aged
/// it out meanwhile) is passed over.
pub fn delete<K: Pod + Sync>(map: BorrowedFd<'_>, keys: &[K]) -> io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
    // Small batches are not worth a thread.
    let share = keys.len().div_ceil(threads).max(CHUNK);
    std::thread::scope(|scope| {
        let workers: Vec<_> = keys.chunks(share).map(|part| scope.spawn(move || delete_in_turn(map, part))).collect();
        // Every worker is joined before an error is returned: what the others deleted is done either way.
        let results: Vec<io::Result<()>> = workers
            .into_iter()
            .map(|worker| worker.join().map_err(|_| io::Error::other("a batch deletion thread panicked"))?)
            .collect();
        results.into_iter().collect()
    })
}

/// Threads `delete` uses at most.
const MAX_THREADS: usize = 8;

/// `delete`, in this thread.
fn delete_in_turn<K: Pod>(map: BorrowedFd<'_>, keys: &[K]) -> io::Result<()> {
    let mut done = 0;
    while done < keys.len() {
        let chunk = &keys[done..keys.len().min(done + CHUNK)];
        let mut attr = BatchAttr {
            keys: chunk.as_ptr() as u64,
            count: chunk.len() as u32,
            map_fd: map.as_raw_fd() as u32,
            ..Default::default()
        };
        let result = batch(BPF_MAP_DELETE_BATCH, &mut attr);
        // The kernel stops at the first key it cannot delete and says how many it deleted before it.
        done += (attr.count as usize).min(chunk.len());
        match result {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::ENOENT) => done += 1,
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
