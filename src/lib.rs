//! # pool: worker pools of processes or threads, made easy
//!
//! `pool` runs a function over many inputs on a pool of workers (forked processes, re-executed
//! processes, or threads) with MPIRE's conveniences: `map` / `imap` / `apply_async`, progress
//! bars, per-worker state, init and exit hooks, shared objects, timeouts, restarts and
//! insights into where the time goes.
//!
//! ```
//! use pool::{StartMethod, WorkerPool};
//!
//! let mut pool = WorkerPool::builder()
//!     .n_jobs(2)
//!     .start_method(StartMethod::Threading)
//!     .build()
//!     .unwrap();
//! let squares: Vec<u64> = pool.map(|x: u64| x * x, 0..100u64).unwrap();
//! assert_eq!(squares[10], 100);
//! ```
//!
//! The layers: `pool-core` (the pool, threads), `pool-ipc` (process workers),
//! `pool-progress` (bars), `pool-insights` (statistics). This crate wires them together.

pub use pool_core::chunking::{ChunkSpec, chunk_slice, chunk_tasks};
pub use pool_core::{
    ApplyOptions, AsyncResult, Cause, ErrorPolicy, Failure, MapIter, MapOptions, Outcome, Phase,
    PoolError, ProgressSink, ProgressSpec, ProgressStyle, StartMethod, Status, StatusHandle,
    WorkerContext, WorkerTimings, cpu_count,
};
pub use pool_dashboard::{connect_to_dashboard, disconnect as disconnect_from_dashboard};
pub use pool_insights::{Insights, Percentiles};
pub use pool_progress::{
    DrawTarget, MemoryTerm, println, set_default_style, set_draw_target, set_plain_interval,
    suspend,
};

use pool_core::{Backend, CallInfo, Extensions, SharedObjects, ThreadBackend};
use pool_ipc::backend::{ProcessBackend, ProcessMethod};

/// The hook a program calls first thing in `main` so that `StartMethod::Spawn` works: in a
/// spawned worker it runs the worker and exits; elsewhere it returns at once. Code before it
/// runs again in every spawned worker.
///
/// A program that builds a Spawn pool without calling it gets a
/// [`PoolError::InvalidConfig`] naming this function at once, and no worker is started (a
/// worker would run `main` again, which would start workers of its own, and so on).
///
/// ```no_run
/// pool::entry(); // first thing in `main`
/// let mut pool = pool::WorkerPool::builder().start_method(pool::StartMethod::Spawn).build()?;
/// # Ok::<(), pool::PoolError>(())
/// ```
///
/// Test binaries have no `main` of their own: run it from a constructor instead, e.g. with the
/// `ctor` crate: `#[ctor::ctor(unsafe)] fn entry() { pool::entry() }`.
pub fn entry() {
    pool_ipc::entry::run_if_worker();
    // After the spawn hook: a spawned worker of rank 0 inherits mpirun's environment.
    #[cfg(feature = "mpi")]
    pool_mpi::run_if_worker();
}

/// Ends MPI on rank 0 and releases the worker ranks (feature `mpi`). It runs by itself when the
/// program exits; no `StartMethod::Mpi` pool works after it.
#[cfg(feature = "mpi")]
pub fn finalize_mpi() {
    pool_mpi::finalize();
}

/// The layers this crate plugs into `pool_core`: process workers, progress bars, insights.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layers;

impl Extensions for Layers {
    type Insights = Insights;

    fn default_start_method() -> StartMethod {
        StartMethod::Fork
    }

    fn default_n_jobs(method: StartMethod) -> usize {
        #[cfg(feature = "mpi")]
        if method == StartMethod::Mpi
            && let Some(size) = pool_mpi::env_size()
        {
            return size.saturating_sub(1).max(1);
        }
        let _ = method;
        cpu_count()
    }

    fn backend<Sh: SharedObjects, St: 'static>(
        method: StartMethod,
        n_jobs: usize,
        daemon: bool,
    ) -> Result<Box<dyn Backend<Sh, St>>, PoolError> {
        // A spawned worker whose `main` skipped `pool::entry()` stops here, at its first pool.
        pool_ipc::entry::exit_if_hook_skipped();
        if method != StartMethod::Threading && pool_ipc::backend::in_daemon_worker() {
            return Err(PoolError::InvalidConfig(
                "this code runs in a daemon worker, which may not start worker processes: build \
                 the outer pool with .daemon(false) to nest process pools, or use \
                 StartMethod::Threading for the inner one"
                    .into(),
            ));
        }
        match method {
            StartMethod::Threading => Ok(Box::new(ThreadBackend::new(n_jobs))),
            StartMethod::Fork => Ok(Box::new(ProcessBackend::new(
                ProcessMethod::Fork,
                n_jobs,
                daemon,
            )?)),
            StartMethod::Spawn => Ok(Box::new(ProcessBackend::new(
                ProcessMethod::Spawn,
                n_jobs,
                daemon,
            )?)),
            #[cfg(feature = "mpi")]
            StartMethod::Mpi => Ok(Box::new(pool_mpi::MpiBackend::new(n_jobs)?)),
            #[cfg(not(feature = "mpi"))]
            StartMethod::Mpi => Err(PoolError::InvalidConfig(
                "StartMethod::Mpi needs the `mpi` feature and mpirun".into(),
            )),
        }
    }

    fn progress(info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
        pool_dashboard::with_dashboard(info, pool_progress::sink_for(info))
    }

    fn insights(timings: &[WorkerTimings]) -> Insights {
        Insights::from_timings(timings)
    }
}

/// A pool of workers; see [`pool_core::WorkerPool`] for every method.
pub type WorkerPool<Sh = (), St = ()> = pool_core::WorkerPool<Sh, St, Layers>;

/// Builds a [`WorkerPool`].
pub type Builder<Sh = (), St = ()> = pool_core::Builder<Sh, St, Layers>;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;
