//! The worker pool itself, independent of terminals and processes.
//!
//! `pool-core` holds the task model, chunking, scheduling (ordered and unordered reassembly,
//! back-pressure, round-robin), the worker life cycle (start, init, work, exit, lifespan
//! restarts, keep-alive), timeouts, errors, `AsyncResult`, the thread back end, and the seams
//! the other layers plug into: [`Backend`] (who runs workers), [`ProgressSink`] (who shows
//! progress) and raw [`WorkerTimings`] (what insights are made of), wired through
//! [`Extensions`]. Most users want the `pool` crate, which adds process workers, progress bars
//! and insights; this crate alone gives [`ThreadPool`].
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
mod backend;
mod builder;
mod call;
pub mod chunking;
mod codec;
mod context;
mod counters;
#[cfg(test)]
mod decode_props;
mod error;
mod extensions;
mod hook;
mod indexed;
pub mod interrupt;
mod job;
mod map_iter;
mod options;
pub mod panic;
mod pool;
mod progress;
pub mod refusal;
mod slab;
mod supervisor;
mod task_inputs;
mod task_loop;
mod threads;
mod timing;
mod worker;
mod worker_trace;

pub use apply::AsyncResult;
pub use apply_api::ApplyOptions;
pub use backend::{Backend, Command, Event, ExitReason, StartMethod, WorkerLink, WorkerSetup};
pub use builder::{Builder, cpu_count};
pub use codec::{recycle_buffer, take_buffer};
pub use context::WorkerContext;
pub use counters::{CounterBlock, CounterRef, WorkerCounters, monotonic_ns};
pub use error::{Cause, Failure, Phase, PoolError};
pub use extensions::{CoreOnly, Extensions, RawInsights, SharedObjects};
pub use hook::{ExitFn, Hook, InitFn, StateFn};
pub use job::{
    ChunkOutput, Data, ErasedJob, Input, JobRebuilder, Payload, RunSettings, TaskEnv, Wire,
};
pub use map_iter::MapIter;
pub use options::{ErrorPolicy, MapOptions, RetryOn};
pub use pool::{ThreadPool, WorkerPool};
pub use progress::{
    CallInfo, Outcome, ProgressSink, ProgressSpec, ProgressStyle, Status, StatusHandle,
};
pub use threads::ThreadBackend;
pub use timing::{SlowTask, TOP_TASKS, WorkerTimings};
pub use worker::{IN_HOOK, current_affinity, pin_current_thread, run_worker};
pub use worker_trace::WorkerBacktrace;
