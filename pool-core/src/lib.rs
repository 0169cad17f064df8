//! The worker pool itself, independent of terminals and processes.
//!
//! `pool-core` holds the task model, chunking, scheduling (ordered and unordered reassembly,
//! back-pressure, round-robin), the worker life cycle (start, init, work, exit, lifespan
//! restarts, keep-alive), timeouts, errors, `AsyncResult`, the thread back end, and the seams
//! the other layers plug into: [`Workers`] (who runs workers, through the [`backend`]
//! interface), [`Progress`] (who shows progress) and [`FromTimings`] (what insights are made
//! of), put together by [`Layers`]. Most users want the `pool` crate, which adds process
//! workers, progress bars and insights; this crate alone gives [`ThreadPool`].
//!
//! ```
//! use pool_core::{MapOptions, ThreadPool};
//!
//! let mut pool = ThreadPool::new(2).unwrap();
//! let squares = pool.map(|x: u64| x * x, 0..10u64).unwrap();
//! assert_eq!(squares, vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
//!
//! // Lazily, over an endless input, in completion order:
//! let firsts: Vec<u64> = pool
//!     .imap_unordered_with(|x: u64| x + 1, 0.., MapOptions::default().chunk_size(4))
//!     .unwrap()
//!     .take(5)
//!     .map(Result::unwrap)
//!     .collect();
//! assert_eq!(firsts.len(), 5);
//! ```
//!
//! # Timeouts on threads
//! A thread cannot be killed. When a task exceeds `task_timeout` on the thread back end, the
//! call gets a timeout error naming the task; the worker thread is abandoned (its results are
//! dropped) and a new one takes its slot. The abandoned thread ends when the stuck task returns;
//! if it never does, it lives until the process exits. Process start methods kill the worker.

mod apply;
mod apply_api;
mod async_result;
// The back-end interface's own types; public as part of `backend` below.
mod borrowed;
mod builder;
mod call;
pub mod call_end;
pub mod chunking;
mod codec;
mod context;
mod counters;
#[cfg(test)]
mod decode_props;
mod error;
mod extensions;
mod hook;
#[doc(hidden)]
pub mod huge_pages;
mod indexed;
mod input_wire;
pub mod interrupt;
mod job;
mod layers;
mod map_iter;
mod options;
pub mod panic;
pub mod patience;
mod pool;
mod progress;
pub mod refusal;
#[path = "backend.rs"]
mod seam;
pub mod shared_bytes;
mod slab;
mod supervisor;
mod task_inputs;
mod task_loop;
mod threads;
mod timing;
mod worker;
mod worker_trace;

/// The back-end interface: what a crate that runs workers (threads here, `pool-ipc`'s
/// processes, `pool-mpi`'s ranks) implements and calls. Users of the pool need none of it.
///
/// The parent talks to a [`Backend`] with [`Command`]s and
/// hears [`Event`]s; a worker, wherever it runs, is
/// [`run_worker`] reading commands from a
/// [`WorkerLink`]. Everything typed (the task function, its inputs and
/// results) travels inside [`Data`] and an [`ErasedJob`].
pub mod backend {
    pub use crate::codec::{keep_big_buffers, recycle_buffer, take_buffer};
    pub use crate::counters::{CounterBlock, CounterRef, WorkerCounters, monotonic_ns};
    pub use crate::hook::{ExitFn, Hook, InitFn, StateFn};
    pub use crate::job::{
        ChunkOutput, Data, ErasedJob, Input, JobRebuilder, LentBytes, Payload, RunSettings,
        TaskEnv, Wire,
    };
    pub use crate::seam::*;
    pub use crate::threads::ThreadBackend;
    pub use crate::worker::{IN_HOOK, current_affinity, pin_current_thread, run_worker};
}

pub use apply_api::ApplyOptions;
pub use async_result::AsyncResult;
pub use builder::{Builder, cpu_count};
pub use context::WorkerContext;
pub use error::{Cause, Failure, Phase, PoolError};
pub use extensions::{CoreOnly, Extensions, RawInsights, SharedObjects};
pub use layers::{FromTimings, Layers, NoProgress, Progress, Threads, Workers};
pub use map_iter::MapIter;
pub use options::{ErrorPolicy, MapOptions, RetryOn};
pub use pool::{ThreadPool, WorkerPool};
pub use progress::{
    CallInfo, Outcome, ProgressSink, ProgressSpec, ProgressStyle, Status, StatusHandle,
};
pub use seam::StartMethod;
pub use shared_bytes::SharedBytes;
pub use timing::{SlowTask, TOP_TASKS, WorkerTimings};
pub use worker_trace::WorkerBacktrace;

// Transitional: the back-end interface also at the root, out of the docs, while the crates that
// implement back ends (rewritten on other branches) move their imports to `backend::`.
#[doc(hidden)]
pub use backend::{
    Backend, ChunkOutput, Command, CounterBlock, CounterRef, Data, ErasedJob, Event, ExitFn,
    ExitReason, Hook, IN_HOOK, InitFn, Input, JobRebuilder, LentBytes, Payload, RunSettings,
    StateFn, TaskEnv, ThreadBackend, Unsent, Wire, WorkerCounters, WorkerLink, WorkerSetup,
    current_affinity, keep_big_buffers, monotonic_ns, pin_current_thread, recycle_buffer,
    run_worker, take_buffer,
};
