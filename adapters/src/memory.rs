//! The allocator's own account of the process's memory, for `/metrics`.
//!
//! VmRSS alone cannot tell live data from what an allocator keeps but no longer
//! uses; jemalloc counts both. The `kontor` binary makes jemalloc its global
//! allocator and says so with [`jemalloc_is_the_global_allocator`]; a binary that
//! does not (the tests) reports nothing, as jemalloc's counters would then describe
//! an allocator nobody uses.

use std::sync::atomic::{AtomicBool, Ordering};

static JEMALLOC_IS_GLOBAL: AtomicBool = AtomicBool::new(false);

/// Bytes as jemalloc counts them (`stats.*`), from the most to the least live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorBytes {
    /// Asked for by the program and not yet freed.
    pub allocated: u64,
    /// In pages that hold at least one allocation (allocated plus the rest of
    /// those pages).
    pub active: u64,
    /// Physically resident in jemalloc's mappings: active, its metadata, and
    /// freed pages not yet given back to the kernel.
    pub resident: u64,
    /// jemalloc's own bookkeeping.
    pub metadata: u64,
    /// Address space kept mapped but given back to the kernel: costs no memory.
    pub retained: u64,
}

/// Marks jemalloc as the process's allocator (the binary's `#[global_allocator]`),
/// and starts its background threads: without them, freed pages go back to the
/// kernel only when some later allocation happens to sweep them, so an idle
/// server would keep the peak of its last burst.
pub fn jemalloc_is_the_global_allocator() {
    JEMALLOC_IS_GLOBAL.store(true, Ordering::Relaxed);
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(%error, "jemalloc's background threads did not start");
    }
}

/// jemalloc's counters now, or `None` when jemalloc is not the global allocator
/// or cannot say.
pub fn allocator_bytes() -> Option<AllocatorBytes> {
    use tikv_jemalloc_ctl::{epoch, stats};
    if !JEMALLOC_IS_GLOBAL.load(Ordering::Relaxed) {
        return None;
    }
    // The counters are a snapshot taken at each epoch.
    epoch::advance().ok()?;
    let bytes = |read: tikv_jemalloc_ctl::Result<usize>| read.ok().map(|b| b as u64);
    Some(AllocatorBytes {
        allocated: bytes(stats::allocated::read())?,
        active: bytes(stats::active::read())?,
        resident: bytes(stats::resident::read())?,
        metadata: bytes(stats::metadata::read())?,
        retained: bytes(stats::retained::read())?,
    })
}
