//! Per-call options of the map and apply families, as a builder.

use std::fmt;
use std::time::Duration;

use crate::context::WorkerContext;
use crate::hook::{ExitFn, InitFn, exit_hook, init_hook};
use crate::progress::ProgressSpec;

/// What a call does when a task fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// Stop the call at the first failure and return it (MPIRE's behaviour). The default.
    #[default]
    Stop,
    /// Keep going: a failed task is tried again up to `retries` times (for the kinds of failure
    /// `MapOptions::retry_on` names), and if it still fails its error takes its place among the
    /// results while the other tasks complete.
    Continue {
        /// Extra attempts per failed task.
        retries: u32,
    },
}

/// Which kinds of failure `keep_going(retries)` tries again. Default: [`RetryOn::ALL`].
///
/// ```
/// use pool_core::{MapOptions, RetryOn};
///
/// // Retry crashes and timeouts (flaky machines), not panics (bad inputs).
/// let opts: MapOptions = MapOptions::default()
///     .keep_going(2)
///     .retry_on(RetryOn { panics: false, ..RetryOn::ALL });
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn {
    /// The task panicked.
    pub panics: bool,
    /// The worker died while running it (abort, signal, OOM kill, `process::exit`).
    pub deaths: bool,
    /// It ran longer than `task_timeout`.
    pub timeouts: bool,
}

impl RetryOn {
    /// Every kind of failure.
    pub const ALL: RetryOn = RetryOn {
        panics: true,
        deaths: true,
        timeouts: true,
    };
    /// Panics only.
    pub const PANICS: RetryOn = RetryOn {
        panics: true,
        deaths: false,
        timeouts: false,
    };

    /// Whether a failure of `cause` is tried again.
    pub fn covers(self, cause: &crate::error::Cause) -> bool {
        use crate::error::Cause;
        match cause {
            Cause::Panic => self.panics,
            Cause::WorkerDied => self.deaths,
            Cause::Timeout(_) => self.timeouts,
            Cause::Serialization => false,
        }
    }
}

impl Default for RetryOn {
    fn default() -> Self {
        RetryOn::ALL
    }
}

/// Options of one map-family or apply call. `MapOptions::default()` matches MPIRE's defaults.
///
/// ```
/// use std::time::Duration;
/// use pool_core::{MapOptions, ThreadPool};
///
/// let mut pool = ThreadPool::new(2).unwrap();
/// let opts = MapOptions::default()
///     .chunk_size(16)
///     .max_tasks_active(64)
///     .task_timeout(Duration::from_secs(5));
/// let out = pool.map_with(|x: u32| x + 1, 0..100, opts).unwrap();
/// assert_eq!(out[99], 100);
/// ```
pub struct MapOptions<Sh = (), St = ()> {
    pub(crate) iterable_len: Option<usize>,
    pub(crate) chunk_size: Option<usize>,
    pub(crate) n_splits: Option<usize>,
    pub(crate) max_tasks_active: Option<usize>,
    pub(crate) worker_lifespan: Option<u64>,
    pub(crate) worker_init: Option<InitFn<Sh, St>>,
    pub(crate) worker_exit: Option<ExitFn<Sh, St>>,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) init_timeout: Option<Duration>,
    pub(crate) exit_timeout: Option<Duration>,
    pub(crate) on_error: ErrorPolicy,
    pub(crate) retry_on: RetryOn,
    pub(crate) progress: Option<ProgressSpec>,
    /// The user's task function type name (plain-form calls wrap it in a closure).
    pub(crate) fn_name: Option<&'static str>,
}

impl<Sh, St> Default for MapOptions<Sh, St> {
    fn default() -> Self {
        MapOptions {
            iterable_len: None,
            chunk_size: None,
            n_splits: None,
            max_tasks_active: None,
            worker_lifespan: None,
            worker_init: None,
            worker_exit: None,
            task_timeout: None,
            init_timeout: None,
            exit_timeout: None,
            on_error: ErrorPolicy::Stop,
            retry_on: RetryOn::ALL,
            progress: None,
            fn_name: None,
        }
    }
}

impl<Sh, St> Clone for MapOptions<Sh, St> {
    fn clone(&self) -> Self {
        MapOptions {
            worker_init: self.worker_init.clone(),
            worker_exit: self.worker_exit.clone(),
            progress: self.progress.clone(),
            ..*self
        }
    }
}

impl<Sh, St> fmt::Debug for MapOptions<Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapOptions")
            .field("iterable_len", &self.iterable_len)
            .field("chunk_size", &self.chunk_size)
            .field("n_splits", &self.n_splits)
            .field("max_tasks_active", &self.max_tasks_active)
            .field("worker_lifespan", &self.worker_lifespan)
            .field("worker_init", &self.worker_init.is_some())
            .field("worker_exit", &self.worker_exit.is_some())
            .field("task_timeout", &self.task_timeout)
            .field("init_timeout", &self.init_timeout)
            .field("exit_timeout", &self.exit_timeout)
            .field("on_error", &self.on_error)
            .field("retry_on", &self.retry_on)
            .field("progress", &self.progress)
            .finish()
    }
}

impl<Sh, St> MapOptions<Sh, St> {
    /// The number of inputs, for iterators that do not know their length (enables chunking by
    /// `n_splits` and a progress total).
    pub fn iterable_len(mut self, n: usize) -> Self {
        self.iterable_len = Some(n);
        self
    }

    /// Tasks per chunk. Default: `len / n_splits` rounded up, or 1 for inputs of unknown length.
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = Some(n);
        self
    }

    /// Number of chunks when the length is known. Default: `64 × n_jobs`.
    pub fn n_splits(mut self, n: usize) -> Self {
        self.n_splits = Some(n);
        self
    }

    /// At most this many tasks are taken from the input and not yet done (waiting for a worker
    /// or in a worker's hand). Default: `n_jobs × chunk_size × 2`. In ordered calls, finished
    /// results waiting for a slow one before them do not count (they never stop the workers);
    /// they are bounded apart, to 64 times this.
    pub fn max_tasks_active(mut self, n: usize) -> Self {
        self.max_tasks_active = Some(n);
        self
    }

    /// Restart a worker (exit, then a fresh state and init) after it has done this many tasks.
    pub fn worker_lifespan(mut self, n: u64) -> Self {
        self.worker_lifespan = Some(n);
        self
    }

    /// Run once when a worker starts, before its first task.
    pub fn worker_init<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut WorkerContext<'_, Sh, St>) + Send + Sync + 'static,
    {
        self.worker_init = Some(init_hook(f));
        self
    }

    /// Run once when a worker stops; what it returns is collected by `get_exit_results`.
    pub fn worker_exit<F, E>(mut self, f: F) -> Self
    where
        F: Fn(&mut WorkerContext<'_, Sh, St>) -> E + Send + Sync + 'static,
        E: serde::Serialize + 'static,
        Sh: 'static,
        St: 'static,
    {
        self.worker_exit = Some(exit_hook(f));
        self
    }

    /// Fail a task that runs longer than this (see the crate docs for what happens to it).
    pub fn task_timeout(mut self, d: Duration) -> Self {
        self.task_timeout = Some(d);
        self
    }

    /// Fail the call when a `worker_init` runs longer than this.
    pub fn worker_init_timeout(mut self, d: Duration) -> Self {
        self.init_timeout = Some(d);
        self
    }

    /// Fail the call when a `worker_exit` runs longer than this.
    pub fn worker_exit_timeout(mut self, d: Duration) -> Self {
        self.exit_timeout = Some(d);
        self
    }

    /// What to do when a task fails. Default: [`ErrorPolicy::Stop`].
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.on_error = policy;
        self
    }

    /// Keep going after failures, trying each failed task again up to `retries` times,
    /// whatever made it fail (a panic, its worker's death, a timeout; see
    /// [`Self::retry_on`]). A task that fails every attempt gets an error counting them and
    /// saying why each failed ([`crate::Failure::earlier`]).
    pub fn keep_going(self, retries: u32) -> Self {
        self.on_error(ErrorPolicy::Continue { retries })
    }

    /// Which kinds of failure `keep_going` tries again. Default: [`RetryOn::ALL`].
    pub fn retry_on(mut self, kinds: RetryOn) -> Self {
        self.retry_on = kinds;
        self
    }

    /// Show a progress bar with default options.
    pub fn progress_bar(mut self, on: bool) -> Self {
        self.progress = on.then(ProgressSpec::default);
        self
    }

    /// Show a progress bar with these options.
    pub fn progress(mut self, spec: ProgressSpec) -> Self {
        self.progress = Some(spec);
        self
    }
}
