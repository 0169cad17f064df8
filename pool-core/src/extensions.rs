//! How the layers above plug into the pool at compile time: the back end for each start
//! method, the progress renderer, and the insights type.
//!
//! `pool_core::WorkerPool<Sh, St, E>` takes an [`Extensions`] type; the `pool` facade fixes it
//! to one that adds process workers, progress bars and insights, so its users never see it.
//! To pick other layers, name a [`crate::Layers`] of ready-made pieces rather than implement
//! this trait.

use crate::backend::{Backend, StartMethod};
use crate::error::PoolError;
use crate::progress::{CallInfo, ProgressSink};
use crate::timing::WorkerTimings;

/// Bounds of shared objects: shared by reference between threads, or shipped to processes.
pub trait SharedObjects:
    serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static
{
}
impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static> SharedObjects
    for T
{
}

/// What a pool needs from the layers above it.
pub trait Extensions: 'static {
    /// What `get_insights` returns; its `Display` is what `print_insights` prints.
    type Insights: std::fmt::Display;

    /// The start method when the builder is not told one.
    fn default_start_method() -> StartMethod;

    /// `n_jobs` when the builder is not told one (`Mpi`: the worker ranks there are).
    fn default_n_jobs(_method: StartMethod) -> usize {
        crate::builder::cpu_count()
    }

    /// A back end for `method` with `n_jobs` slots; `daemon` as MPIRE's.
    fn backend<Sh: SharedObjects, St: 'static>(
        method: StartMethod,
        n_jobs: usize,
        daemon: bool,
    ) -> Result<Box<dyn Backend<Sh, St>>, PoolError>;

    /// A progress renderer for a call that asked for one (`None`: no visible progress).
    fn progress(info: &CallInfo) -> Option<Box<dyn ProgressSink>>;

    /// Turns raw per-worker timings into insights: one entry per worker slot, or none at all
    /// when the pool was built without `enable_insights(true)`.
    fn insights(timings: &[WorkerTimings]) -> Self::Insights;
}

/// The core alone: threads only, no progress rendering, raw timings as insights.
pub type CoreOnly =
    crate::layers::Layers<crate::layers::Threads, crate::layers::NoProgress, RawInsights>;

/// The raw per-worker timings, as insights of the core alone (the `pool` crate gives
/// statistics, percentiles and JSON).
#[derive(Debug, Clone)]
pub struct RawInsights(pub Vec<WorkerTimings>);

impl std::fmt::Display for RawInsights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "worker  tasks  working  waiting  init  exit")?;
        for w in &self.0 {
            writeln!(
                f,
                "{:>6}  {:>5}  {:>7.3?}  {:>7.3?}  {:.3?}  {:.3?}",
                w.worker, w.n_completed_tasks, w.working, w.waiting, w.init, w.exit
            )?;
        }
        Ok(())
    }
}
