//! Memory and CPU figures for INFO: a counting global allocator (installed by the `dibs` binary) for
//! `used_memory`, and the kernel's own view for resident memory and CPU time. Also the allocator's policy
//! (`configure_allocator`): large buffers get their own mappings, so freed memory goes back to the kernel
//! and resident memory tracks `used_memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Live bytes, as the sum of this and every thread's unpublished change (wrapping: a thread may free
/// what another allocated).
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

/// How far a thread's own count may drift before it is added to `ALLOCATED_BYTES`. Why: with one shared
/// atomic per allocation, threads allocating at once (the snapshot load threads at start-up: two
/// allocations a key, millions of keys) fight over its cache line; batching makes that rare. The price is
/// that `used_memory` may be off by this much per thread.
const ALLOCATED_BYTES_UNPUBLISHED_MAX: i64 = 64 * 1024;

thread_local! {
    static UNPUBLISHED_BYTES: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// Adds `change` to the calling thread's count and publishes it once it is large.
fn count(change: i64) {
    let published = UNPUBLISHED_BYTES.try_with(|unpublished| {
        let total = unpublished.get() + change;
        if total.abs() < ALLOCATED_BYTES_UNPUBLISHED_MAX {
            unpublished.set(total);
        } else {
            unpublished.set(0);
            ALLOCATED_BYTES.fetch_add(total as u64, Ordering::Relaxed);
        }
    });
    if published.is_err() {
        // The thread's storage is gone (it is exiting): count directly.
        ALLOCATED_BYTES.fetch_add(change as u64, Ordering::Relaxed);
    }
}

/// Keeps large buffers out of the heap: glibc serves allocations of at least this many bytes with their own
/// mapping, given back to the kernel when freed.
///
/// Why: glibc raises this threshold by itself each time such a mapping is freed, and after that it serves
/// large buffers from the heap, which seldom shrinks. A compaction streams the whole data set through
/// 1 MiB buffers and the snapshot writer's serialization buffers; with the moving threshold every
/// compaction leaves about its snapshot's size of freed heap resident, while `used_memory` stays the
/// same. A fixed threshold also fixes the heap trim threshold (at twice this), so freed memory at the top
/// of the heap goes back too.
const MMAP_THRESHOLD_BYTES: libc::c_int = 256 * 1024;

/// Sets the allocator's fixed thresholds (see `MMAP_THRESHOLD_BYTES`). Call once, first thing in `main`.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

/// The system allocator, counting live bytes. Relaxed atomics: the count is a statistic, not a lock.
pub struct CountingAllocator;

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            count(layout.size() as i64);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            count(layout.size() as i64);
        }
        pointer
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        moved
    }
}

/// Live heap bytes (within `ALLOCATED_BYTES_UNPUBLISHED_MAX` per thread), or 0 when the counting
/// allocator is not installed (unit tests).
pub fn allocated_bytes() -> u64 {
    // Unpublished allocations of one thread can trail another's published frees of them.
    (ALLOCATED_BYTES.load(Ordering::Relaxed) as i64).max(0) as u64
}

/// Resident set size from /proc/self/statm.
pub fn resident_bytes() -> u64 {
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_size)
}

/// (user, system) CPU seconds used by the process.
pub fn cpu_seconds() -> (f64, f64) {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    (seconds(usage.ru_utime), seconds(usage.ru_stime))
}

/// CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID). Beside wall time it tells a pause the
/// loop spent working from one where the kernel ran other threads instead (the syncer, the snapshot
/// writer, other processes).
pub fn thread_cpu_time() -> std::time::Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Safety: clock_gettime writes only into the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) } != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}
