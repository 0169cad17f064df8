//! What a task sees of its worker: its id, the pool's shared objects and its own mutable state.

/// The worker a task, `worker_init` or `worker_exit` runs on.
///
/// `map_ctx`-family calls hand one to every task. It replaces MPIRE's `pass_worker_id`,
/// `shared_objects` and `use_worker_state` flags: a task that needs none of them uses plain `map`.
///
/// ```
/// use pool_core::ThreadPool;
///
/// let mut pool = ThreadPool::builder()
///     .n_jobs(2)
///     .shared_objects(vec![10u64, 20, 30])
///     .worker_state(|| 0u64)
///     .build()
///     .unwrap();
/// let out = pool
///     .map_ctx(|ctx, i: usize| {
///         *ctx.state_mut() += 1; // tasks done by this worker so far
///         ctx.shared()[i] + ctx.worker_id() as u64 * 0
///     }, 0..3)
///     .unwrap();
/// assert_eq!(out, vec![10, 20, 30]);
/// ```
#[derive(Debug)]
pub struct WorkerContext<'a, Sh, St> {
    pub(crate) worker_id: usize,
    pub(crate) shared: &'a Sh,
    pub(crate) state: &'a mut St,
}

impl<'a, Sh, St> WorkerContext<'a, Sh, St> {
    /// Creates a context. Back ends that run workers outside this crate build one per worker.
    ///
    /// ```
    /// // What a test of a task function can build by hand.
    /// let (shared, mut state) = (vec![1u64, 2], 0u64);
    /// let mut ctx = pool_core::WorkerContext::new(3, &shared, &mut state);
    /// assert_eq!((ctx.worker_id(), ctx.shared()[1], *ctx.state_mut()), (3, 2, 0));
    /// ```
    pub fn new(worker_id: usize, shared: &'a Sh, state: &'a mut St) -> Self {
        WorkerContext {
            worker_id,
            shared,
            state,
        }
    }

    /// This worker's id, `0..n_jobs`. A restarted worker keeps its id.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let ids = pool.map_ctx(|ctx, _x: u64| ctx.worker_id(), 0..8u64)?;
    /// assert!(ids.iter().all(|&id| id < 2));
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn worker_id(&self) -> usize {
        self.worker_id
    }

    /// The pool's shared objects (copy-on-write under `StartMethod::Fork`).
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().shared_objects(vec![5u64; 3]).build()?;
    /// let out = pool.map_ctx(|ctx, i: usize| ctx.shared()[i] + 1, 0..3usize)?;
    /// assert_eq!(out, vec![6, 6, 6]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn shared(&self) -> &Sh {
        self.shared
    }

    /// This worker's state.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(1).worker_state(|| 42u64).build()?;
    /// assert_eq!(pool.map_ctx(|ctx, _x: u64| *ctx.state(), 0..2u64)?, vec![42, 42]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn state(&self) -> &St {
        self.state
    }

    /// This worker's state, mutably: it lives as long as the worker (see `keep_alive`).
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(1).worker_state(|| 0u64).build()?;
    /// let totals = pool.map_ctx(
    ///     |ctx, x: u64| {
    ///         *ctx.state_mut() += x;
    ///         *ctx.state()
    ///     },
    ///     1..4u64,
    /// )?;
    /// assert_eq!(totals, vec![1, 3, 6]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn state_mut(&mut self) -> &mut St {
        self.state
    }
}
