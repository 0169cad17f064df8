#![doc = include_str!("../README.md")]

pub use pool_core::chunking::{ChunkSpec, chunk_slice, chunk_tasks};
pub use pool_core::{
    ApplyOptions, AsyncResult, Cause, ErrorPolicy, Failure, MapIter, MapOptions, Outcome, Phase,
    PoolError, ProgressSink, ProgressSpec, ProgressStyle, RetryOn, SharedBytes, StartMethod,
    Status, StatusHandle, WorkerBacktrace, WorkerContext, WorkerTimings, cpu_count,
};
pub use pool_dashboard::{connect_to_dashboard, disconnect as disconnect_from_dashboard};

/// The live dashboard: the reporting client always, and the web server itself
/// (`start_dashboard`, `DashboardConfig`, ...) with this crate's feature `dashboard`.
///
/// ```
/// use pool::dashboard::{DashboardConfig, start_dashboard};
/// use pool::{MapOptions, StartMethod, WorkerPool};
///
/// let dashboard = start_dashboard(DashboardConfig::default().port_range(0..=0))?;
/// pool::connect_to_dashboard(&dashboard.addr().to_string(), dashboard.token())?;
/// let mut pool = WorkerPool::builder().n_jobs(2).start_method(StartMethod::Threading).build()?;
/// // Calls with a progress bar show up on the page at dashboard.url().
/// pool.map_with(|x: u64| x + 1, 0..100u64, MapOptions::default().progress_bar(true))?;
/// pool::disconnect_from_dashboard();
/// dashboard.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use pool_dashboard as dashboard;
pub use pool_insights::{Insights, Percentiles};
pub use pool_progress::{
    DrawTarget, MemoryTerm, println, set_default_style, set_draw_target, set_plain_interval,
    suspend,
};

use pool_core::backend::Backend;
use pool_core::{SharedObjects, Workers};
use pool_dashboard::WithDashboard;
use pool_ipc::Processes;
use pool_progress::Bars;

/// The pieces to assemble a pool of other layers than [`DefaultLayers`], without implementing
/// a trait: one [`layers::Workers`], one [`layers::Progress`] and one [`layers::FromTimings`]
/// piece in a [`layers::Layers`].
///
/// ```
/// use pool::layers::{Layers, NoProgress, Processes, RawInsights};
///
/// // Process workers, no bars, raw timings.
/// type Pool = pool::layers::WorkerPool<(), (), Layers<Processes, NoProgress, RawInsights>>;
/// let mut pool = Pool::builder().n_jobs(2).build()?;
/// assert_eq!(pool.map(|x: u64| x + 1, 0..3u64)?, vec![1, 2, 3]);
/// # Ok::<(), pool::PoolError>(())
/// ```
pub mod layers {
    pub use pool_core::{
        FromTimings, Layers, NoProgress, Progress, RawInsights, Threads, WorkerPool, Workers,
    };
    pub use pool_dashboard::WithDashboard;
    pub use pool_insights::Insights;
    pub use pool_ipc::Processes;
    pub use pool_progress::Bars;

    pub use crate::StartMethods;
}

/// The hook a program calls first thing in `main` so that `StartMethod::Spawn` and
/// `StartMethod::Forkserver` work: in a spawned worker it runs the worker and exits; elsewhere
/// it starts the forkserver (a small process, forked now while the program is small and
/// single-threaded, that forks Forkserver workers later) and returns. Code before it runs
/// again in every spawned worker.
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
    // Before MPI starts (forking after MPI_Init is best avoided); not in spawned workers.
    pool_ipc::forkserver::start_at_entry();
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

/// The layers this crate plugs into `pool_core`: process workers (and MPI ranks with the `mpi`
/// feature), progress bars that also report to a connected dashboard, and insights.
pub type DefaultLayers = pool_core::Layers<StartMethods, WithDashboard<Bars>, Insights>;

/// Every start method this build offers, as the workers piece of [`DefaultLayers`]: `Fork`,
/// `Spawn` and `Threading` from [`pool_ipc::Processes`], and `Mpi` with the `mpi` feature.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartMethods;

impl Workers for StartMethods {
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
        #[cfg(feature = "mpi")]
        if method == StartMethod::Mpi {
            pool_ipc::entry::exit_if_hook_skipped();
            pool_ipc::refuse_in_daemon_worker()?;
            return Ok(Box::new(pool_mpi::MpiBackend::new(n_jobs)?));
        }
        if method == StartMethod::Fork {
            // Bars of the workers' own calls are drawn here, on one board.
            pool_progress::prepare_for_forks();
        }
        Processes::backend(method, n_jobs, daemon)
    }
}

/// A pool of workers; see [`pool_core::WorkerPool`] for every method.
pub type WorkerPool<Sh = (), St = ()> = pool_core::WorkerPool<Sh, St, DefaultLayers>;

/// Builds a [`WorkerPool`].
pub type Builder<Sh = (), St = ()> = pool_core::Builder<Sh, St, DefaultLayers>;
