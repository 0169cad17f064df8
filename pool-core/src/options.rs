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
    ///
    /// ```
    /// use pool_core::MapOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// // A generator of unknown length: the length lets the bar show a total and sets chunks.
    /// let inputs = (0..).map(|x: u64| x * 3).take_while(|&x| x < 30);
    /// let out = pool.map_with(|x: u64| x + 1, inputs, MapOptions::default().iterable_len(10))?;
    /// assert_eq!(out.len(), 10);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn iterable_len(mut self, n: usize) -> Self {
        self.iterable_len = Some(n);
        self
    }

    /// Tasks per chunk. Default: `len / n_splits` rounded up, or 1 for inputs of unknown length.
    ///
    /// A chunk is what a worker runs in one go and hands back in one go. While chunks of the
    /// size given run in under 10 µs each, eight at a time travel to a worker together as one
    /// *run* (their trip costs more than running them), and the results of a run come back
    /// together; slower chunks go alone. Without `chunk_size`, chunks of an input of known
    /// length are cut to balance the workers and never travel in runs.
    ///
    /// ```
    /// use pool_core::MapOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let sizes = pool.map_with(|x: u64| x, 0..100u64, MapOptions::default().chunk_size(25))?;
    /// assert_eq!(sizes.len(), 100);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = Some(n);
        self
    }

    /// Number of chunks when the length is known. Default: `64 × n_jobs`.
    ///
    /// ```
    /// use pool_core::MapOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// // About 4 chunks of 25 tasks instead of the default 64 × n_jobs splits.
    /// let out = pool.map_with(|x: u64| x, 0..100u64, MapOptions::default().n_splits(4))?;
    /// assert_eq!(out.len(), 100);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn n_splits(mut self, n: usize) -> Self {
        self.n_splits = Some(n);
        self
    }

    /// At most this many tasks are taken from the input and not yet done (waiting for a worker
    /// or in a worker's hand). Default: `n_jobs × chunk_size × 2`, at least `n_jobs × 16` (so
    /// that tiny one-task chunks can travel in a pipeline). In ordered calls, finished
    /// results waiting for a slow one before them do not count (they never stop the workers);
    /// they are bounded apart, to 64 times this.
    ///
    /// ```
    /// use pool_core::MapOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// // An endless input, read at most 8 tasks ahead of the workers.
    /// let firsts: Vec<u64> = pool
    ///     .imap_with(|x: u64| x * 2, 0.., MapOptions::default().chunk_size(2).max_tasks_active(8))?
    ///     .take(5)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(firsts, vec![0, 2, 4, 6, 8]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn max_tasks_active(mut self, n: usize) -> Self {
        self.max_tasks_active = Some(n);
        self
    }

    /// Restart a worker (exit, then a fresh state and init) after it has done this many tasks.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(1).worker_state(|| 0u64).build()?;
    /// // A new worker (and state) after every 3 tasks.
    /// let opts = pool.options().chunk_size(1).worker_lifespan(3);
    /// let counts = pool.map_ctx_with(
    ///     |ctx, _x: u64| {
    ///         *ctx.state_mut() += 1;
    ///         *ctx.state()
    ///     },
    ///     0..6u64,
    ///     opts,
    /// )?;
    /// assert_eq!(counts, vec![1, 2, 3, 1, 2, 3]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn worker_lifespan(mut self, n: u64) -> Self {
        self.worker_lifespan = Some(n);
        self
    }

    /// Run once when a worker starts, before its first task.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).worker_state(String::new).build()?;
    /// let opts = pool.options().worker_init(|ctx| *ctx.state_mut() = format!("worker {}", ctx.worker_id()));
    /// let names = pool.map_ctx_with(|ctx, _x: u64| ctx.state().clone(), 0..4u64, opts)?;
    /// assert!(names.iter().all(|n| n.starts_with("worker ")));
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn worker_init<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut WorkerContext<'_, Sh, St>) + Send + Sync + 'static,
    {
        self.worker_init = Some(init_hook(f));
        self
    }

    /// Run once when a worker stops; what it returns is collected by `get_exit_results`.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).worker_state(|| 0u64).build()?;
    /// let opts = pool.options().worker_exit(|ctx| *ctx.state()); // collected by get_exit_results
    /// pool.map_ctx_with(|ctx, x: u64| *ctx.state_mut() += x, 0..10u64, opts)?;
    /// let sums: Vec<u64> = pool.get_exit_results()?;
    /// assert_eq!(sums.iter().sum::<u64>(), 45);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use pool_core::{Cause, MapOptions};
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let err = pool
    ///     .map_with(
    ///         |ms: u64| std::thread::sleep(Duration::from_millis(ms)),
    ///         [1, 5_000],
    ///         MapOptions::default().task_timeout(Duration::from_millis(200)),
    ///     )
    ///     .unwrap_err();
    /// assert!(matches!(err.failure().unwrap().cause, Cause::Timeout(_)));
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn task_timeout(mut self, d: Duration) -> Self {
        self.task_timeout = Some(d);
        self
    }

    /// Fail the call when a `worker_init` runs longer than this.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pool_core::Phase;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let opts = pool
    ///     .options()
    ///     .worker_init(|_| std::thread::sleep(Duration::from_secs(5)))
    ///     .worker_init_timeout(Duration::from_millis(200));
    /// let err = pool.map_with(|x: u64| x, 0..4u64, opts).unwrap_err();
    /// assert_eq!(err.failure().unwrap().phase, Phase::Init);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn worker_init_timeout(mut self, d: Duration) -> Self {
        self.init_timeout = Some(d);
        self
    }

    /// Fail the call when a `worker_exit` runs longer than this.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pool_core::Phase;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let opts = pool
    ///     .options()
    ///     .worker_exit(|_| std::thread::sleep(Duration::from_secs(5)))
    ///     .worker_exit_timeout(Duration::from_millis(200));
    /// let err = pool.map_with(|x: u64| x, 0..4u64, opts).unwrap_err();
    /// assert_eq!(err.failure().unwrap().phase, Phase::Exit);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn worker_exit_timeout(mut self, d: Duration) -> Self {
        self.exit_timeout = Some(d);
        self
    }

    /// What to do when a task fails. Default: [`ErrorPolicy::Stop`].
    ///
    /// ```
    /// use pool_core::{ErrorPolicy, MapOptions};
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let out = pool.map_results(
    ///     |x: u64| if x == 1 { panic!("one") } else { x },
    ///     0..3u64,
    ///     MapOptions::default().on_error(ErrorPolicy::Continue { retries: 0 }),
    /// )?;
    /// assert!(out[0].is_ok() && out[1].is_err() && out[2].is_ok());
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.on_error = policy;
        self
    }

    /// Keep going after failures, trying each failed task again up to `retries` times,
    /// whatever made it fail (a panic, its worker's death, a timeout; see
    /// [`Self::retry_on`]). A task that fails every attempt gets an error counting them and
    /// saying why each failed ([`crate::Failure::earlier`]).
    ///
    /// ```
    /// use pool_core::MapOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let out = pool.map_results(
    ///     |x: u64| if x == 1 { panic!("one") } else { x },
    ///     0..3u64,
    ///     MapOptions::default().keep_going(2), // two more tries for a failed task
    /// )?;
    /// assert_eq!(out[1].as_ref().unwrap_err().failure().unwrap().attempts, 3);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn keep_going(self, retries: u32) -> Self {
        self.on_error(ErrorPolicy::Continue { retries })
    }

    /// Which kinds of failure `keep_going` tries again. Default: [`RetryOn::ALL`].
    pub fn retry_on(mut self, kinds: RetryOn) -> Self {
        self.retry_on = kinds;
        self
    }

    /// Show a progress bar with default options.
    ///
    /// ```
    /// use pool_core::MapOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// // pool_core draws nothing itself; with `pool` this shows a bar (or log lines).
    /// let out = pool.map_with(|x: u64| x, 0..10u64, MapOptions::default().progress_bar(true))?;
    /// assert_eq!(out.len(), 10);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn progress_bar(mut self, on: bool) -> Self {
        self.progress = on.then(ProgressSpec::default);
        self
    }

    /// Show a progress bar with these options.
    ///
    /// ```
    /// use pool_core::{MapOptions, ProgressSpec};
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let spec = ProgressSpec::default().desc("parsing").unit("files");
    /// let out = pool.map_with(|x: u64| x, 0..10u64, MapOptions::default().progress(spec))?;
    /// assert_eq!(out.len(), 10);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn progress(mut self, spec: ProgressSpec) -> Self {
        self.progress = Some(spec);
        self
    }
}
