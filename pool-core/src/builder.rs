//! The pool builder: everything MPIRE's `WorkerPool` constructor takes, checked in `build()`.

use std::fmt;
use std::marker::PhantomData;

use crate::backend::StartMethod;
use crate::error::PoolError;
use crate::extensions::{Extensions, SharedObjects};
use crate::hook::{StateFn, state_hook};
use crate::pool::{PoolConfig, WorkerPool};

/// Builds a [`WorkerPool`]. Shared objects and worker state set the pool's type parameters.
///
/// ```
/// use pool_core::{StartMethod, ThreadPool};
///
/// let pool = ThreadPool::builder()
///     .n_jobs(2)
///     .start_method(StartMethod::Threading)
///     .keep_alive(true)
///     .order_tasks(true)
///     .enable_insights(true)
///     .build()
///     .unwrap();
/// assert_eq!(pool.n_jobs(), 2);
/// ```
pub struct Builder<Sh, St, E> {
    n_jobs: Option<usize>,
    start_method: Option<StartMethod>,
    shared: Sh,
    make_state: StateFn<St>,
    keep_alive: bool,
    order_tasks: bool,
    daemon: bool,
    cpu_ids: Option<Vec<Vec<usize>>>,
    insights: bool,
    _e: PhantomData<E>,
}

impl<Sh, St, E> fmt::Debug for Builder<Sh, St, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("n_jobs", &self.n_jobs)
            .field("start_method", &self.start_method)
            .field("keep_alive", &self.keep_alive)
            .field("order_tasks", &self.order_tasks)
            .field("daemon", &self.daemon)
            .field("cpu_ids", &self.cpu_ids)
            .field("insights", &self.insights)
            .finish()
    }
}

impl<E> Default for Builder<(), (), E> {
    fn default() -> Self {
        Builder {
            n_jobs: None,
            start_method: None,
            shared: (),
            make_state: state_hook(|| ()),
            keep_alive: false,
            order_tasks: false,
            daemon: true,
            cpu_ids: None,
            insights: false,
            _e: PhantomData,
        }
    }
}

/// The number of CPUs this process may use.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl<Sh, St, E: Extensions> Builder<Sh, St, E> {
    /// Number of workers. Default: the number of CPUs.
    ///
    /// ```
    /// let pool = pool_core::ThreadPool::builder().n_jobs(3).build()?;
    /// assert_eq!(pool.n_jobs(), 3);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn n_jobs(mut self, n: usize) -> Self {
        self.n_jobs = Some(n);
        self
    }

    /// How workers start. Default: `Fork` with process workers, else `Threading`.
    ///
    /// ```
    /// use pool_core::{StartMethod, ThreadPool};
    ///
    /// // This crate alone runs threads; `pool` adds Fork and Spawn.
    /// let pool = ThreadPool::builder().start_method(StartMethod::Threading).build()?;
    /// assert_eq!(pool.start_method(), StartMethod::Threading);
    /// assert!(ThreadPool::builder().start_method(StartMethod::Fork).build().is_err());
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn start_method(mut self, m: StartMethod) -> Self {
        self.start_method = Some(m);
        self
    }

    /// Objects every task can read through its context (copy-on-write under `Fork`).
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder()
    ///     .n_jobs(2)
    ///     .shared_objects(vec![10u64, 20, 30])
    ///     .build()?;
    /// let out = pool.map_ctx(|ctx, i: usize| ctx.shared()[i], 0..3usize)?;
    /// assert_eq!(out, vec![10, 20, 30]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn shared_objects<S2: SharedObjects>(self, shared: S2) -> Builder<S2, St, E> {
        Builder {
            n_jobs: self.n_jobs,
            start_method: self.start_method,
            shared,
            make_state: self.make_state,
            keep_alive: self.keep_alive,
            order_tasks: self.order_tasks,
            daemon: self.daemon,
            cpu_ids: self.cpu_ids,
            insights: self.insights,
            _e: PhantomData,
        }
    }

    /// A state per worker, made by `make` when the worker starts (and restarts).
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(1).worker_state(Vec::<u64>::new).build()?;
    /// let seen = pool.map_ctx(
    ///     |ctx, x: u64| {
    ///         ctx.state_mut().push(x);
    ///         ctx.state().len()
    ///     },
    ///     0..3u64,
    /// )?;
    /// assert_eq!(seen, vec![1, 2, 3]); // one worker, one state
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn worker_state<S2: 'static, F>(self, make: F) -> Builder<Sh, S2, E>
    where
        F: Fn() -> S2 + Send + Sync + 'static,
    {
        Builder {
            n_jobs: self.n_jobs,
            start_method: self.start_method,
            shared: self.shared,
            make_state: state_hook(make),
            keep_alive: self.keep_alive,
            order_tasks: self.order_tasks,
            daemon: self.daemon,
            cpu_ids: self.cpu_ids,
            insights: self.insights,
            _e: PhantomData,
        }
    }

    /// Keep workers (and their state) alive between calls. Default: restart them every call.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).keep_alive(true).build()?;
    /// pool.map(|x: u64| x, 0..4u64)?;
    /// pool.map(|x: u64| x, 0..4u64)?; // the same workers
    /// pool.join()?;
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn keep_alive(mut self, on: bool) -> Self {
        self.keep_alive = on;
        self
    }

    /// Hand chunks to workers round-robin (worker 0, 1, ...), not to whichever is free.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).order_tasks(true).build()?;
    /// // Chunk i goes to worker i % n_jobs.
    /// let workers = pool.map_ctx_with(
    ///     |ctx, _x: u64| ctx.worker_id(),
    ///     0..4u64,
    ///     pool_core::MapOptions::default().chunk_size(1),
    /// )?;
    /// assert_eq!(workers, vec![0, 1, 0, 1]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn order_tasks(mut self, on: bool) -> Self {
        self.order_tasks = on;
        self
    }

    /// Daemon workers may not start pools of their own (process workers). Default: true.
    ///
    /// ```
    /// let pool = pool_core::ThreadPool::builder().daemon(false).build()?;
    /// assert!(!pool.daemon());
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn daemon(mut self, on: bool) -> Self {
        self.daemon = on;
        self
    }

    /// CPUs per worker: one entry for all workers, or one entry per worker.
    ///
    /// ```
    /// // Pin the one worker to the first CPU this process may run on.
    /// let first = pool_core::backend::current_affinity()[0];
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(1).cpu_ids(vec![vec![first]]).build()?;
    /// let cpus = pool.map(|_x: u64| pool_core::backend::current_affinity(), 0..1u64)?;
    /// assert_eq!(cpus[0], vec![first]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn cpu_ids(mut self, ids: Vec<Vec<usize>>) -> Self {
        self.cpu_ids = Some(ids);
        self
    }

    /// Record per-worker timings for `get_insights`.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).enable_insights(true).build()?;
    /// pool.map(|x: u64| x, 0..10u64)?;
    /// assert_eq!(pool.get_insights().0.iter().map(|w| w.n_completed_tasks).sum::<u64>(), 10);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn enable_insights(mut self, on: bool) -> Self {
        self.insights = on;
        self
    }

    /// Checks the settings and builds the pool (workers start with the first call).
    ///
    /// ```
    /// let err = pool_core::ThreadPool::builder().n_jobs(0).build().unwrap_err();
    /// assert!(err.to_string().starts_with("invalid configuration"), "{err}");
    /// ```
    pub fn build(self) -> Result<WorkerPool<Sh, St, E>, PoolError>
    where
        Sh: SharedObjects,
        St: 'static,
    {
        let n_jobs = self.n_jobs.unwrap_or_else(|| {
            E::default_n_jobs(self.start_method.unwrap_or_else(E::default_start_method))
        });
        if n_jobs == 0 {
            return Err(PoolError::InvalidConfig("n_jobs must be at least 1".into()));
        }
        if let Some(ids) = &self.cpu_ids {
            if ids.len() != 1 && ids.len() != n_jobs {
                return Err(PoolError::InvalidConfig(format!(
                    "cpu_ids has {} entries: give one (for every worker) or n_jobs = {n_jobs}",
                    ids.len()
                )));
            }
            let allowed = crate::worker::current_affinity();
            for (w, set) in ids.iter().enumerate() {
                if set.is_empty() {
                    return Err(PoolError::InvalidConfig(format!("cpu_ids[{w}] is empty")));
                }
                if let Some(bad) = set.iter().find(|c| !allowed.contains(c)) {
                    return Err(PoolError::InvalidConfig(format!(
                        "cpu_ids[{w}] names CPU {bad}, but this process may only use CPUs {allowed:?}"
                    )));
                }
            }
        }
        let method = self.start_method.unwrap_or_else(E::default_start_method);
        let backend = E::backend::<Sh, St>(method, n_jobs, self.daemon)?;
        let config = PoolConfig {
            n_jobs,
            start_method: method,
            keep_alive: self.keep_alive,
            order_tasks: self.order_tasks,
            daemon: self.daemon,
            insights: self.insights,
        };
        Ok(WorkerPool::from_parts(
            config,
            backend,
            self.shared,
            self.make_state,
            self.cpu_ids,
        ))
    }
}
