//! Ready-made [`Extensions`]: pick one piece of each kind and name the result.
//!
//! A pool's extensions are three independent choices, each a small trait that a layer crate
//! implements once:
//! - [`Workers`]: who runs the workers for each start method: [`Threads`] here,
//!   `pool_ipc::Processes` (fork, spawn and threads);
//! - [`Progress`]: who shows a call's progress: [`NoProgress`] here, `pool_progress::Bars`;
//! - [`FromTimings`]: what insights are made of the raw per-worker timings: [`RawInsights`]
//!   here, `pool_insights::Insights`.
//!
//! [`Layers<W, P, I>`] puts them together, so "process workers, no bars" or "threads with bars"
//! is a type alias, not a trait implementation:
//!
//! ```
//! use pool_core::{Layers, NoProgress, RawInsights, Threads, WorkerPool};
//!
//! type Pool = WorkerPool<(), (), Layers<Threads, NoProgress, RawInsights>>;
//! let mut pool = Pool::builder().n_jobs(2).build()?;
//! assert_eq!(pool.map(|x: u64| x + 1, 0..3u64)?, vec![1, 2, 3]);
//! # Ok::<(), pool_core::PoolError>(())
//! ```

use std::fmt;
use std::marker::PhantomData;

use crate::backend::{Backend, StartMethod};
use crate::error::PoolError;
use crate::extensions::{Extensions, RawInsights, SharedObjects};
use crate::progress::{CallInfo, ProgressSink};
use crate::threads::ThreadBackend;
use crate::timing::WorkerTimings;

/// Who runs a pool's workers: one of the three pieces of [`Layers`].
pub trait Workers: 'static {
    /// The start method when the builder is not told one.
    fn default_start_method() -> StartMethod;

    /// `n_jobs` when the builder is not told one.
    fn default_n_jobs(_method: StartMethod) -> usize {
        crate::builder::cpu_count()
    }

    /// A back end for `method` with `n_jobs` slots; `daemon` as MPIRE's. A start method this
    /// piece does not offer is an [`PoolError::InvalidConfig`] that says where to find it.
    fn backend<Sh: SharedObjects, St: 'static>(
        method: StartMethod,
        n_jobs: usize,
        daemon: bool,
    ) -> Result<Box<dyn Backend<Sh, St>>, PoolError>;
}

/// Who shows a call's progress: one of the three pieces of [`Layers`].
pub trait Progress: 'static {
    /// A renderer for a call that asked for progress (`None`: nothing visible).
    fn sink(info: &CallInfo) -> Option<Box<dyn ProgressSink>>;
}

/// What insights are made of: one of the three pieces of [`Layers`], implemented by the
/// insights type itself.
pub trait FromTimings: fmt::Display + 'static {
    /// Insights from the raw per-worker timings.
    fn from_timings(timings: &[WorkerTimings]) -> Self;
}

/// [`Extensions`] made of a [`Workers`], a [`Progress`] and a [`FromTimings`] piece.
pub struct Layers<W = Threads, P = NoProgress, I = RawInsights>(PhantomData<Pieces<W, P, I>>);

/// Names the pieces without owning any (a marker is `Send + Sync` whatever they are).
type Pieces<W, P, I> = fn() -> (W, P, I);

impl<W, P, I> fmt::Debug for Layers<W, P, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Layers")
    }
}

impl<W: Workers, P: Progress, I: FromTimings> Extensions for Layers<W, P, I> {
    type Insights = I;

    fn default_start_method() -> StartMethod {
        W::default_start_method()
    }

    fn default_n_jobs(method: StartMethod) -> usize {
        W::default_n_jobs(method)
    }

    fn backend<Sh: SharedObjects, St: 'static>(
        method: StartMethod,
        n_jobs: usize,
        daemon: bool,
    ) -> Result<Box<dyn Backend<Sh, St>>, PoolError> {
        W::backend(method, n_jobs, daemon)
    }

    fn progress(info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
        P::sink(info)
    }

    fn insights(timings: &[WorkerTimings]) -> I {
        I::from_timings(timings)
    }
}

/// Workers as threads of this process (`StartMethod::Threading`, the default here).
#[derive(Debug, Clone, Copy, Default)]
pub struct Threads;

impl Workers for Threads {
    fn default_start_method() -> StartMethod {
        StartMethod::Threading
    }

    fn backend<Sh: SharedObjects, St: 'static>(
        method: StartMethod,
        n_jobs: usize,
        _daemon: bool,
    ) -> Result<Box<dyn Backend<Sh, St>>, PoolError> {
        match method {
            StartMethod::Threading => Ok(Box::new(ThreadBackend::new(n_jobs))),
            StartMethod::Mpi => Err(PoolError::InvalidConfig(
                "StartMethod::Mpi needs the `mpi` feature and mpirun".into(),
            )),
            other => Err(PoolError::InvalidConfig(format!(
                "start method {} needs process workers: use the `pool` crate (or \
                 `pool_ipc::Processes`), or StartMethod::Threading",
                other.name()
            ))),
        }
    }
}

/// No visible progress (status handles and counters still work).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn sink(_info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
        None
    }
}

impl FromTimings for RawInsights {
    fn from_timings(timings: &[WorkerTimings]) -> Self {
        RawInsights(timings.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::WorkerPool;

    /// A progress piece of its own: one small impl, no `Extensions`.
    struct CountCalls;

    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    impl Progress for CountCalls {
        fn sink(_info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
            CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            None
        }
    }

    #[test]
    fn threads_refuse_process_start_methods_and_say_where_to_look() {
        let err = WorkerPool::<(), (), Layers>::builder()
            .start_method(StartMethod::Fork)
            .build()
            .and_then(|mut p| p.map(|x: u64| x, 0..2u64))
            .unwrap_err();
        assert!(err.to_string().contains("pool_ipc::Processes"), "{err}");
    }

    #[test]
    fn a_piece_of_ones_own_plugs_in() {
        let mut pool = WorkerPool::<(), (), Layers<Threads, CountCalls>>::builder()
            .n_jobs(2)
            .build()
            .unwrap();
        let before = CALLS.load(std::sync::atomic::Ordering::SeqCst);
        let out = pool
            .map_with(
                |x: u64| x * 2,
                0..4u64,
                crate::MapOptions::default().progress_bar(true),
            )
            .unwrap();
        assert_eq!(out, vec![0, 2, 4, 6]);
        assert!(CALLS.load(std::sync::atomic::Ordering::SeqCst) > before);
    }
}
