//! The per-worker counters (`pool_core::WorkerCounters`) in shared memory, so the parent reads
//! progress and the task in hand of every worker process without a message.

use std::io;
use std::os::fd::OwnedFd;

use pool_core::{CounterBlock, WorkerCounters};

use crate::shm::SharedRegion;

/// `n` worker counter slots in one shared region.
#[derive(Debug)]
pub(crate) struct SharedCounters {
    region: SharedRegion,
    n: usize,
}

impl SharedCounters {
    pub(crate) fn new(n: usize) -> io::Result<Self> {
        let region =
            SharedRegion::create("pool-counters", n * std::mem::size_of::<WorkerCounters>())?;
        Ok(SharedCounters { region, n })
    }

    /// Maps the block from an fd received by a spawned worker.
    pub(crate) fn from_fd(fd: OwnedFd, n: usize) -> io::Result<Self> {
        let region = SharedRegion::from_fd(fd)?;
        if region.len() < n * std::mem::size_of::<WorkerCounters>() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "counter block too small",
            ));
        }
        Ok(SharedCounters { region, n })
    }

    pub(crate) fn region(&self) -> &SharedRegion {
        &self.region
    }
}

impl CounterBlock for SharedCounters {
    fn slots(&self) -> &[WorkerCounters] {
        let ptr = self.region.as_ptr().cast::<WorkerCounters>();
        assert!(ptr.is_aligned(), "shared regions are page-aligned");
        // SAFETY: the region is at least `n` slots long (checked at creation or mapping), page
        // aligned (so aligned for `WorkerCounters`), zero-filled at creation (a valid value:
        // all atomics at 0), mapped for as long as `self` lives, and only ever accessed
        // through atomics, so sharing it between processes is sound.
        unsafe { std::slice::from_raw_parts(ptr, self.n) }
    }
}
