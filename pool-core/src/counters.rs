//! Per-worker counters that the parent reads while workers run: tasks done, the task in hand
//! and when it started.
//!
//! They are plain atomics in a `#[repr(C)]` block so that a process back end can place the
//! block in shared memory: progress and timeout checks then cost the workers one relaxed store
//! per task and no message at all.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Nanoseconds on `CLOCK_MONOTONIC`, the same clock in every process of the machine.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The counters of one worker slot, alone on its cache lines (no false sharing between
/// workers).
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Tasks this slot has finished, over its whole life (restarts included).
    pub tasks_done: AtomicU64,
    /// `1 + index` of the task being run, or 0 when none is.
    pub current_task: AtomicU64,
    /// When the current task, init or exit started ([`monotonic_ns`]), or 0.
    pub started_ns: AtomicU64,
    /// Tasks that failed in this slot.
    pub tasks_failed: AtomicU64,
    /// Set by the parent to make the worker drop the rest of its current chunk.
    pub cancel: AtomicU64,
    _pad: [u64; 3],
}

impl WorkerCounters {
    /// Marks the start of the task with this index.
    #[inline]
    pub fn begin(&self, task: u64, timed: bool) {
        if timed {
            self.started_ns.store(monotonic_ns(), Ordering::Relaxed);
        }
        self.current_task.store(task + 1, Ordering::Relaxed);
    }

    /// Marks the end of the current task; `done` is the slot's new total (the worker is the
    /// only writer, so a store suffices where an atomic add would cost a locked instruction).
    #[inline]
    pub fn end(&self, done: u64, timed: bool) {
        self.current_task.store(0, Ordering::Relaxed);
        if timed {
            self.started_ns.store(0, Ordering::Relaxed);
        }
        self.tasks_done.store(done, Ordering::Release);
    }

    /// The task in hand and when it started, if any.
    pub fn current(&self) -> Option<(u64, u64)> {
        let task = self.current_task.load(Ordering::Relaxed);
        let started = self.started_ns.load(Ordering::Relaxed);
        (task > 0).then(|| (task - 1, started))
    }
}

/// A block of counters, one per worker slot, owned by a back end (heap or shared memory).
pub trait CounterBlock: Send + Sync + 'static {
    /// The slots, indexed by worker id.
    fn slots(&self) -> &[WorkerCounters];
}

/// One worker's own counters (a thread worker's: see `ThreadBackend`).
impl CounterBlock for WorkerCounters {
    fn slots(&self) -> &[WorkerCounters] {
        std::slice::from_ref(self)
    }
}

impl CounterBlock for Vec<WorkerCounters> {
    fn slots(&self) -> &[WorkerCounters] {
        self
    }
}

/// One slot of a [`CounterBlock`], shareable with the worker that uses it.
#[derive(Clone)]
pub struct CounterRef {
    block: Arc<dyn CounterBlock>,
    index: usize,
}

impl CounterRef {
    /// The slot `index` of `block`.
    pub fn new(block: Arc<dyn CounterBlock>, index: usize) -> Self {
        assert!(
            index < block.slots().len(),
            "counter slot {index} out of range"
        );
        CounterRef { block, index }
    }

    /// The counters.
    #[inline]
    pub fn get(&self) -> &WorkerCounters {
        &self.block.slots()[self.index]
    }
}

impl fmt::Debug for CounterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterRef")
            .field("index", &self.index)
            .field("counters", self.get())
            .finish()
    }
}
