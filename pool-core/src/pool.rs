//! [`WorkerPool`]: the map and apply families, keep-alive, join and terminate.

use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;

use crate::apply::Applier;
use crate::backend::{Backend, StartMethod};
use crate::borrowed;
use crate::builder::Builder;
use crate::call::{Call, CallConfig};
use crate::chunking::{ChunkSource, Chunks, Policy, SplitChunks};
use crate::context::WorkerContext;
use crate::error::PoolError;
use crate::extensions::{CoreOnly, Extensions, SharedObjects};
use crate::hook::StateFn;
use crate::indexed;
use crate::job::{ErasedJob, Input, Payload, TypedJob};
use crate::map_iter::MapIter;
use crate::options::MapOptions;
use crate::progress::{CallInfo, ProgressSpec, StatusHandle};
use crate::supervisor::{Supervisor, WorkerSpec};

/// Settings fixed when the pool is built.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    pub(crate) n_jobs: usize,
    pub(crate) start_method: StartMethod,
    pub(crate) keep_alive: bool,
    pub(crate) order_tasks: bool,
    pub(crate) daemon: bool,
    pub(crate) insights: bool,
}

static POOL_IDS: AtomicU64 = AtomicU64::new(1);

/// A pool of workers. `Sh` are the shared objects, `St` the per-worker state, `E` the layers
/// plugged in (the `pool` facade fixes `E`; `pool_core` alone offers [`ThreadPool`]).
///
/// ```
/// use pool_core::ThreadPool;
///
/// let squares: Vec<u64> = ThreadPool::new(2).unwrap().map(|x: u64| x * x, 0..1000u64).unwrap();
/// assert_eq!(squares[999], 998_001);
/// ```
pub struct WorkerPool<Sh = (), St = (), E = CoreOnly> {
    config: PoolConfig,
    sup: Arc<Mutex<Supervisor<Sh, St>>>,
    applier: Applier<Sh, St>,
    status: StatusHandle,
    pool_id: u64,
    pub(crate) apply_progress: Option<ProgressSpec>,
    _e: PhantomData<E>,
}

/// A pool of threads, from `pool_core` alone.
pub type ThreadPool<Sh = (), St = ()> = WorkerPool<Sh, St, CoreOnly>;

impl<Sh, St, E> fmt::Debug for WorkerPool<Sh, St, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("config", &self.config)
            .field("pool_id", &self.pool_id)
            .finish()
    }
}

impl<E: Extensions> WorkerPool<(), (), E> {
    /// A pool of `n_jobs` workers with the default start method.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// assert_eq!(pool.map(|x: u64| x * x, 0..4u64)?, vec![0, 1, 4, 9]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn new(n_jobs: usize) -> Result<Self, PoolError> {
        Self::builder().n_jobs(n_jobs).build()
    }

    /// A builder with MPIRE's defaults.
    ///
    /// ```
    /// let pool = pool_core::ThreadPool::builder().n_jobs(3).build()?;
    /// assert_eq!(pool.n_jobs(), 3);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn builder() -> Builder<(), (), E> {
        Builder::default()
    }
}

macro_rules! eager {
    ($(#[$doc:meta])* $name:ident, $name_with:ident, $ctx:ident, $ctx_with:ident, $lazy:ident, $method:literal) => {
        $(#[$doc])*
        #[doc = concat!("\n\n```\nlet mut pool = pool_core::ThreadPool::new(2)?;\nlet mut out = pool.", stringify!($name), "(|x: u64| x * 2, 0..4u64)?;\nout.sort(); // (the unordered forms give completion order)\nassert_eq!(out, [0, 2, 4, 6]);\n# Ok::<(), pool_core::PoolError>(())\n```")]
        #[track_caller]
        pub fn $name<T, R, F, I>(&mut self, f: F, inputs: I) -> Result<Vec<R>, PoolError>
        where F: Fn(T) -> R + Send + Sync + 'static, T: Input, R: Payload, I: IntoIterator<Item = T> {
            self.$name_with(f, inputs, MapOptions::default())
        }
        #[doc = concat!("[`Self::", stringify!($name), "`] with options.", "\n\n```\nlet mut pool = pool_core::ThreadPool::new(2)?;\nlet mut out = pool.", stringify!($name_with), "(|x: u64| x * 2, 0..4u64, pool_core::MapOptions::default().chunk_size(2))?;\nout.sort(); // (the unordered forms give completion order)\nassert_eq!(out, [0, 2, 4, 6]);\n# Ok::<(), pool_core::PoolError>(())\n```")]
        #[track_caller]
        pub fn $name_with<T, R, F, I>(&mut self, f: F, inputs: I, opts: MapOptions<Sh, St>) -> Result<Vec<R>, PoolError>
        where F: Fn(T) -> R + Send + Sync + 'static, T: Input, R: Payload, I: IntoIterator<Item = T> {
            let opts = MapOptions { fn_name: Some(std::any::type_name::<F>()), ..opts };
            self.$ctx_with(move |_: &mut WorkerContext<'_, Sh, St>, x| f(x), inputs, opts)
        }
        #[doc = concat!("[`Self::", stringify!($name), "`] for tasks that take the worker's [`WorkerContext`].", "\n\n```\nlet mut pool = pool_core::ThreadPool::new(2)?;\nlet mut out = pool.", stringify!($ctx), "(|ctx, x: u64| {\n    assert!(ctx.worker_id() < 2);\n    x * 2\n}, 0..4u64)?;\nout.sort(); // (the unordered forms give completion order)\nassert_eq!(out, [0, 2, 4, 6]);\n# Ok::<(), pool_core::PoolError>(())\n```")]
        #[track_caller]
        pub fn $ctx<T, R, F, I>(&mut self, f: F, inputs: I) -> Result<Vec<R>, PoolError>
        where F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R + Send + Sync + 'static, T: Input, R: Payload, I: IntoIterator<Item = T> {
            self.$ctx_with(f, inputs, MapOptions::default())
        }
        #[doc = concat!("[`Self::", stringify!($ctx), "`] with options.", "\n\n```\nlet mut pool = pool_core::ThreadPool::new(2)?;\nlet mut out = pool.", stringify!($ctx_with), "(|ctx, x: u64| {\n    assert!(ctx.worker_id() < 2);\n    x * 2\n}, 0..4u64, pool_core::MapOptions::default().chunk_size(2))?;\nout.sort(); // (the unordered forms give completion order)\nassert_eq!(out, [0, 2, 4, 6]);\n# Ok::<(), pool_core::PoolError>(())\n```")]
        #[track_caller]
        pub fn $ctx_with<T, R, F, I>(&mut self, f: F, inputs: I, opts: MapOptions<Sh, St>) -> Result<Vec<R>, PoolError>
        where F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R + Send + Sync + 'static, T: Input, R: Payload, I: IntoIterator<Item = T> {
            self.start(f, inputs, opts, $method, $lazy, true)?.collect_all()
        }
    };
}

macro_rules! lazy {
    ($(#[$doc:meta])* $name:ident, $name_with:ident, $ctx:ident, $ctx_with:ident, $ordered:literal, $method:literal) => {
        $(#[$doc])*
        #[doc = concat!("\n\n```\nlet mut pool = pool_core::ThreadPool::new(2)?;\nlet mut out: Vec<u64> = pool.", stringify!($name), "(|x: u64| x * 2, 0..4u64)?\n    .collect::<Result<Vec<u64>, _>>()?;\nout.sort(); // (the unordered forms give completion order)\nassert_eq!(out, [0, 2, 4, 6]);\n# Ok::<(), pool_core::PoolError>(())\n```")]
        #[track_caller]
        pub fn $name<'a, T, R, F, I>(&'a mut self, f: F, inputs: I) -> Result<MapIter<'a, Sh, St, T, R>, PoolError>
        where F: Fn(T) -> R + Send + Sync + 'static, T: Input, R: Payload, I: IntoIterator<Item = T>, I::IntoIter: 'a {
            self.$name_with(f, inputs, MapOptions::default())
        }
        #[doc = concat!("[`Self::", stringify!($name), "`] with options.", "\n\n```\nlet mut pool = pool_core::ThreadPool::new(2)?;\nlet mut out: Vec<u64> = pool.", stringify!($name_with), "(|x: u64| x * 2, 0..4u64, pool_core::MapOptions::default().chunk_size(2))?\n    .collect::<Result<Vec<u64>, _>>()?;\nout.sort(); // (the unordered forms give completion order)\nassert_eq!(out, [0, 2, 4, 6]);\n# Ok::<(), pool_core::PoolError>(())\n```")]
        #[track_caller]
        pub fn $name_with<'a, T, R, F, I>(&'a mut self, f: F, inputs: I, opts: MapOptions<Sh, St>) -> Result<MapIter<'a, Sh, St, T, R>, PoolError>
        where F: Fn(T) -> R + Send + Sync + 'static, T: Input, R: Payload, I: IntoIterator<Item = T>, I::IntoIter: 'a {
            let opts = MapOptions { fn_name: Some(std::any::type_name::<F>()), ..opts };
            self.$ctx_with(move |_: &mut WorkerContext<'_, Sh, St>, x| f(x), inputs, opts)
        }
        #[doc = concat!("[`Self::", stringify!($name), "`] for tasks that take the worker's [`WorkerContext`].", "\n\n```\nlet mut pool = pool_core::ThreadPool::new(2)?;\nlet mut out: Vec<u64> = pool.", stringify!($ctx), "(|ctx, x: u64| {\n    assert!(ctx.worker_id() < 2);\n    x * 2\n}, 0..4u64)?\n    .collect::<Result<Vec<u64>, _>>()?;\nout.sort(); // (the unordered forms give completion order)\nassert_eq!(out, [0, 2, 4, 6]);\n# Ok::<(), pool_core::PoolError>(())\n```")]
        #[track_caller]
        pub fn $ctx<'a, T, R, F, I>(&'a mut self, f: F, inputs: I) -> Result<MapIter<'a, Sh, St, T, R>, PoolError>
        where F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R + Send + Sync + 'static, T: Input, R: Payload, I: IntoIterator<Item = T>, I::IntoIter: 'a {
            self.$ctx_with(f, inputs, MapOptions::default())
        }
        #[doc = concat!("[`Self::", stringify!($ctx), "`] with options.", "\n\n```\nlet mut pool = pool_core::ThreadPool::new(2)?;\nlet mut out: Vec<u64> = pool.", stringify!($ctx_with), "(|ctx, x: u64| {\n    assert!(ctx.worker_id() < 2);\n    x * 2\n}, 0..4u64, pool_core::MapOptions::default().chunk_size(2))?\n    .collect::<Result<Vec<u64>, _>>()?;\nout.sort(); // (the unordered forms give completion order)\nassert_eq!(out, [0, 2, 4, 6]);\n# Ok::<(), pool_core::PoolError>(())\n```")]
        #[track_caller]
        pub fn $ctx_with<'a, T, R, F, I>(&'a mut self, f: F, inputs: I, opts: MapOptions<Sh, St>) -> Result<MapIter<'a, Sh, St, T, R>, PoolError>
        where F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R + Send + Sync + 'static, T: Input, R: Payload, I: IntoIterator<Item = T>, I::IntoIter: 'a {
            self.start(f, inputs, opts, $method, $ordered, false)
        }
    };
}

impl<Sh: SharedObjects, St: 'static, E: Extensions> WorkerPool<Sh, St, E> {
    pub(crate) fn from_parts(
        config: PoolConfig,
        backend: Box<dyn Backend<Sh, St>>,
        shared: Sh,
        make_state: StateFn<St>,
        cpu_ids: Option<Vec<Vec<usize>>>,
    ) -> Self {
        let sup = Supervisor::new(
            backend,
            config.n_jobs,
            Arc::new(shared),
            make_state,
            cpu_ids,
            config.insights,
        );
        let sup = Arc::new(Mutex::new(sup));
        WorkerPool {
            applier: Applier::new(sup.clone()),
            sup,
            status: StatusHandle::default(),
            pool_id: POOL_IDS.fetch_add(1, Ordering::Relaxed),
            apply_progress: None,
            config,
            _e: PhantomData,
        }
    }

    /// Number of workers.
    ///
    /// ```
    /// let pool = pool_core::ThreadPool::new(2)?;
    /// assert_eq!(pool.n_jobs(), 2);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn n_jobs(&self) -> usize {
        self.config.n_jobs
    }

    /// The start method.
    ///
    /// ```
    /// use pool_core::{StartMethod, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2)?;
    /// assert_eq!(pool.start_method(), StartMethod::Threading);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.config.start_method
    }

    /// Whether workers are daemons (may not start pools of their own, with process workers).
    ///
    /// ```
    /// let pool = pool_core::ThreadPool::builder().daemon(false).build()?;
    /// assert!(!pool.daemon());
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn daemon(&self) -> bool {
        self.config.daemon
    }

    /// Keep workers alive between calls (MPIRE's `set_keep_alive`).
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).worker_state(|| 0u64).build()?;
    /// pool.set_keep_alive(true);
    /// pool.map(|x: u64| x, 0..4u64)?;
    /// pool.map(|x: u64| x, 0..4u64)?; // the same workers (and states) as the first call
    /// pool.join()?;
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn set_keep_alive(&mut self, on: bool) {
        self.config.keep_alive = on;
    }

    /// Hand chunks out round-robin (MPIRE's `set_order_tasks`).
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// pool.set_order_tasks(true);
    /// assert_eq!(pool.map(|x: u64| x, 0..4u64)?, vec![0, 1, 2, 3]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn set_order_tasks(&mut self, on: bool) {
        self.config.order_tasks = on;
    }

    /// Shows a progress bar for `apply_async` tasks (`None`: no bar). The bar's total grows as
    /// tasks are submitted, and its counts and clock go on until the run of tasks ends: at
    /// `join`, `terminate`, drop, or the start of a map call. Whenever no task is outstanding
    /// its line is drawn as finished; a task submitted later draws a line that counts on.
    ///
    /// ```
    /// use pool_core::ProgressSpec;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// pool.apply_progress_bar(Some(ProgressSpec::default().desc("jobs")));
    /// let r = pool.apply_async(|x: u32| x + 1, 1)?;
    /// assert_eq!(r.get(None)?, 2);
    /// pool.join()?;
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn apply_progress_bar(&mut self, spec: Option<ProgressSpec>) {
        self.apply_progress = spec;
    }

    pub(crate) fn pool_id(&self) -> u64 {
        self.pool_id
    }

    /// Default call options typed for this pool, so that `worker_init` / `worker_exit`
    /// closures know the context type: `pool.options().worker_init(|ctx| ...)`.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).worker_state(|| 0u64).build()?;
    /// // Typed for this pool: the hooks' context knows the state is a u64.
    /// let opts = pool.options().chunk_size(2).worker_init(|ctx| *ctx.state_mut() = 100);
    /// let out = pool.map_ctx_with(|ctx, x: u64| *ctx.state() + x, 0..4u64, opts)?;
    /// assert_eq!(out, vec![100, 101, 102, 103]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn options(&self) -> MapOptions<Sh, St> {
        MapOptions::default()
    }

    /// Live progress of the current or last call, readable from any thread.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let status = pool.status_handle();
    /// pool.map(|x: u64| x, 0..10u64)?;
    /// let last = status.snapshot();
    /// assert_eq!((last.done, last.total, last.active), (10, Some(10), false));
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn status_handle(&self) -> StatusHandle {
        self.status.clone()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Supervisor<Sh, St>> {
        self.sup.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[track_caller]
    fn start<'a, T, R, F, I>(
        &'a mut self,
        f: F,
        inputs: I,
        opts: MapOptions<Sh, St>,
        method: &'static str,
        ordered: bool,
        eager: bool,
    ) -> Result<MapIter<'a, Sh, St, T, R>, PoolError>
    where
        F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R + Send + Sync + 'static,
        T: Input,
        R: Payload,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
    {
        let location = Location::caller();
        self.applier.end_run();
        let iter = inputs.into_iter();
        let len = opts.iterable_len.or_else(|| match iter.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        });
        let n_jobs = self.config.n_jobs;
        let policy = Policy::new(
            n_jobs,
            len,
            opts.chunk_size,
            opts.n_splits,
            opts.max_tasks_active,
        )?;
        if opts.worker_lifespan == Some(0) {
            return Err(PoolError::InvalidConfig(
                "worker_lifespan must be at least 1".into(),
            ));
        }
        let job: Arc<dyn ErasedJob<Sh, St>> = Arc::new(TypedJob::<F, T, R>::new(f));
        let mut sup = self.lock();
        let call_id = sup.new_call_id();
        let info = CallInfo {
            call_id,
            pool_id: self.pool_id,
            method: method.to_string(),
            function: opts.fn_name.unwrap_or(job.name()).to_string(),
            location: format!("{}:{}", location.file(), location.line()),
            n_jobs,
            start_method: self.config.start_method.name().to_string(),
            spec: opts.progress.clone().unwrap_or_default(),
        };
        let mut info = info;
        if info.spec.total.is_none() {
            info.spec.total = len.map(|l| l as u64);
        }
        let progress = opts
            .progress
            .is_some()
            .then(|| E::progress(&info))
            .flatten();
        sup.ensure_workers(
            WorkerSpec {
                init: opts.worker_init.clone(),
                exit: opts.worker_exit.clone(),
                lifespan: opts.worker_lifespan,
            },
            call_id,
            &job,
            !self.config.keep_alive,
        )?;
        let limit = opts.iterable_len.map(|l| l as u64);
        let split = match indexed::split(iter) {
            // SAFETY: an eager call drops its inputs before it returns, on every path (the
            // `MapIter` is consumed by `collect_all` in this call): step 1 of `borrowed`.
            Err(iter) if eager => unsafe { borrowed::split(iter) },
            split => split,
        };
        let chunks: Box<dyn ChunkSource<T> + 'a> = match split {
            Ok(inputs) => Box::new(SplitChunks::new(inputs, policy.spec, limit)),
            Err(iter) => Box::new(Chunks::new(iter, policy.spec, limit)),
        };
        let cfg = CallConfig {
            ordered,
            order_tasks: self.config.order_tasks,
            keep_alive: self.config.keep_alive,
            policy,
            on_error: opts.on_error,
            retry_on: opts.retry_on,
            task_timeout: opts.task_timeout,
            init_timeout: opts.init_timeout,
            exit_timeout: opts.exit_timeout,
            total: len.map(|l| l as u64),
        };
        Ok(MapIter {
            call: Call::new(sup, job, chunks, cfg, progress, &info, self.status.clone()),
        })
    }

    eager!(
        /// Applies `f` to every input in parallel; results in input order. Blocks until done.
        /// An owned `Vec` of plain values (no drop glue) mapped to the same type gets its
        /// results written over its inputs, in its own memory, as std's in-place `collect`.
        map, map_with, map_ctx, map_ctx_with, true, "map"
    );
    eager!(
        /// Like [`Self::map`], but results come in completion order.
        map_unordered, map_unordered_with, map_unordered_ctx, map_unordered_ctx_with, false, "map_unordered"
    );
    lazy!(
        /// Lazy [`Self::map`]: an iterator of results in input order, pulling inputs as workers
        /// free up (at most `max_tasks_active` at a time), so inputs may be endless.
        imap, imap_with, imap_ctx, imap_ctx_with, true, "imap"
    );
    lazy!(
        /// Lazy [`Self::map_unordered`]: results as soon as they are ready.
        imap_unordered, imap_unordered_with, imap_unordered_ctx, imap_unordered_ctx_with, false, "imap_unordered"
    );

    /// Keeps going past failed tasks: every input gets a result or its error, in input order.
    /// `opts` should carry a [`crate::ErrorPolicy::Continue`] (else the first failure ends it).
    /// The outer error ends the whole call: invalid options, a back-end failure, Ctrl-C
    /// ([`PoolError::Interrupted`]).
    ///
    /// ```
    /// use pool_core::MapOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let out = pool.map_results(
    ///     |x: u64| if x == 2 { panic!("two") } else { x },
    ///     0..4u64,
    ///     MapOptions::default().keep_going(0),
    /// )?;
    /// assert_eq!(out.len(), 4);
    /// assert!(out[2].is_err());
    /// assert_eq!(*out[3].as_ref().unwrap(), 3);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    #[track_caller]
    pub fn map_results<T, R, F, I>(
        &mut self,
        f: F,
        inputs: I,
        opts: MapOptions<Sh, St>,
    ) -> Result<Vec<Result<R, PoolError>>, PoolError>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: Input,
        R: Payload,
        I: IntoIterator<Item = T>,
    {
        let mut out = Vec::new();
        for r in self.imap_with(f, inputs, opts)? {
            match r {
                Err(e) if ends_the_call(&e) => return Err(e),
                r => out.push(r),
            }
        }
        Ok(out)
    }

    /// What the `worker_exit` functions returned, in the order workers stopped.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder()
    ///     .n_jobs(2)
    ///     .worker_state(|| 0u64)
    ///     .keep_alive(true)
    ///     .build()?;
    /// let opts = pool.options().worker_exit(|ctx| *ctx.state());
    /// pool.map_ctx_with(|ctx, x: u64| *ctx.state_mut() += x, 0..10u64, opts)?;
    /// pool.join()?; // runs worker_exit
    /// let sums: Vec<u64> = pool.get_exit_results()?;
    /// assert_eq!(sums.iter().sum::<u64>(), 45);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn get_exit_results<X: DeserializeOwned>(&self) -> Result<Vec<X>, PoolError> {
        let sup = self.lock();
        sup.exit_results
            .iter()
            .map(|b| {
                postcard::from_bytes(b).map_err(|e| PoolError::Serialization {
                    context: format!("exit result as {}", std::any::type_name::<X>()),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// Prints the insights as a table (MPIRE's `print_insights`).
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).enable_insights(true).build()?;
    /// pool.map(|x: u64| x, 0..10u64)?;
    /// pool.print_insights(); // a table: tasks and time per worker
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn print_insights(&self) {
        println!("{}", self.get_insights());
    }

    /// Insights of the calls so far (requires `enable_insights(true)`; without it the
    /// extension is given no timings at all, so that it can say insights are off).
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).enable_insights(true).build()?;
    /// pool.map(|x: u64| x, 0..10u64)?;
    /// let insights = pool.get_insights(); // pool_core::RawInsights here; statistics in `pool`
    /// let done: u64 = insights.0.iter().map(|w| w.n_completed_tasks).sum();
    /// assert_eq!(done, 10);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn get_insights(&self) -> E::Insights {
        self.applier.wait_idle();
        let mut sup = self.lock();
        if !sup.insights {
            return E::insights(&[]);
        }
        sup.flush_timings();
        E::insights(&sup.timings)
    }

    /// Waits for outstanding `apply_async` tasks, then stops the workers gracefully
    /// (`worker_exit` runs). The pool can be used again afterwards. (Dropping the pool instead
    /// terminates outstanding tasks: see [`WorkerPool`]'s `Drop`.)
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).keep_alive(true).build()?;
    /// let r = pool.apply_async(|x: u32| x * 2, 4)?;
    /// pool.join()?; // waits for the task, then stops the workers
    /// assert_eq!(r.get(None)?, 8);
    /// assert_eq!(pool.map(|x: u32| x, 0..2u32)?, vec![0, 1]); // usable again
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn join(&mut self) -> Result<(), PoolError> {
        self.applier.end_run();
        let mut sup = self.lock();
        if sup.any_alive() {
            sup.stop(None)
        } else {
            Ok(())
        }
    }

    /// Same as [`Self::join`] (MPIRE's name).
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// pool.map(|x: u64| x, 0..4u64)?;
    /// pool.stop_and_join()?;
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn stop_and_join(&mut self) -> Result<(), PoolError> {
        self.join()
    }

    /// Stops every worker now, without `worker_exit`; outstanding `apply_async` results fail.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let slow = pool.apply_async(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 2_000)?;
    /// pool.terminate();
    /// assert!(slow.get(None).is_err());
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn terminate(&mut self) {
        self.applier.cancel_all();
        self.lock().terminate();
    }

    pub(crate) fn supervisor(&self) -> &Arc<Mutex<Supervisor<Sh, St>>> {
        &self.sup
    }

    pub(crate) fn applier(&self) -> &Applier<Sh, St> {
        &self.applier
    }
}

/// Whether an error among the results of a keep-going call ended the call (rather than being
/// one task's failure, which takes that task's place).
fn ends_the_call(e: &PoolError) -> bool {
    !matches!(e, PoolError::Failed(f) if f.phase == crate::error::Phase::Task)
}

/// Dropping a pool ends it without waiting for work: as MPIRE's context-manager exit does,
/// outstanding `apply_async` tasks are terminated (their results fail with
/// [`PoolError::Terminated`]); idle workers stop gracefully (`worker_exit` runs). Call
/// [`WorkerPool::join`] first to wait for the tasks.
impl<Sh, St, E> Drop for WorkerPool<Sh, St, E> {
    fn drop(&mut self) {
        if self.applier.busy() {
            self.applier.cancel_all();
            self.sup
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .terminate();
        }
        self.applier.end_run();
    }
}
