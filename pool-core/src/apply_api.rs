//! The apply family on [`WorkerPool`]: `apply`, `apply_async` and their options.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::apply::Pending;
use crate::async_result::AsyncResult;
use crate::backend::Command;
use crate::chunking::ChunkInputs;
use crate::context::WorkerContext;
use crate::error::PoolError;
use crate::extensions::{Extensions, SharedObjects};
use crate::job::{ErasedJob, Input, Payload, RunSettings, TypedJob, decode_output, encode_inputs};
use crate::options::MapOptions;
use crate::pool::WorkerPool;
use crate::progress::CallInfo;
use crate::supervisor::WorkerSpec;

type Callback<R> = Box<dyn FnOnce(&R) + Send>;
type ErrorCallback = Box<dyn FnOnce(&PoolError) + Send>;

/// Options of an `apply_async` task: callbacks, timeout, and worker init/exit for workers it
/// starts.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use pool_core::{ApplyOptions, ThreadPool};
///
/// let seen = Arc::new(AtomicU32::new(0));
/// let s = seen.clone();
/// let mut pool = ThreadPool::new(2).unwrap();
/// let r = pool
///     .apply_async_with(|x: u32| x + 1, 1, ApplyOptions::default().callback(move |v: &u32| {
///         s.store(*v, Ordering::SeqCst);
///     }))
///     .unwrap();
/// assert_eq!(r.get(None).unwrap(), 2);
/// pool.join().unwrap();
/// assert_eq!(seen.load(Ordering::SeqCst), 2);
/// ```
pub struct ApplyOptions<R, Sh = (), St = ()> {
    callback: Option<Callback<R>>,
    error_callback: Option<ErrorCallback>,
    workers: MapOptions<Sh, St>,
}

impl<R, Sh, St> Default for ApplyOptions<R, Sh, St> {
    fn default() -> Self {
        ApplyOptions {
            callback: None,
            error_callback: None,
            workers: MapOptions::default(),
        }
    }
}

impl<R, Sh, St> fmt::Debug for ApplyOptions<R, Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("callback", &self.callback.is_some())
            .field("error_callback", &self.error_callback.is_some())
            .field("workers", &self.workers)
            .finish()
    }
}

impl<R, Sh, St> ApplyOptions<R, Sh, St> {
    /// Called with the result when the task succeeds (on the pool's collector thread).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use pool_core::ApplyOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let opts = ApplyOptions::default().callback(move |v: &u32| tx.send(*v).unwrap());
    /// pool.apply_async_with(|x: u32| x + 1, 1, opts)?;
    /// assert_eq!(rx.recv().unwrap(), 2);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn callback(mut self, f: impl FnOnce(&R) + Send + 'static) -> Self {
        self.callback = Some(Box::new(f));
        self
    }

    /// Called with the error when the task fails.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use pool_core::ApplyOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let opts = ApplyOptions::default().error_callback(move |e| tx.send(e.to_string()).unwrap());
    /// let r = pool.apply_async_with(|x: u32| if x == 0 { panic!("zero") } else { x }, 0, opts)?;
    /// assert!(r.get(None).is_err());
    /// assert!(rx.recv().unwrap().contains("zero"));
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn error_callback(mut self, f: impl FnOnce(&PoolError) + Send + 'static) -> Self {
        self.error_callback = Some(Box::new(f));
        self
    }

    /// Fail the task if it runs longer than this.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pool_core::ApplyOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let opts = ApplyOptions::default().task_timeout(Duration::from_millis(200));
    /// let r = pool.apply_async_with(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 5_000, opts)?;
    /// assert!(r.get(None).is_err());
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn task_timeout(mut self, d: Duration) -> Self {
        self.workers = self.workers.task_timeout(d);
        self
    }

    /// Init, exit and their timeouts for workers this task starts (as in `MapOptions`).
    ///
    /// ```
    /// use pool_core::{ApplyOptions, MapOptions};
    ///
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(1).worker_state(|| 0u32).build()?;
    /// // Workers that this task starts run this init first.
    /// let init = MapOptions::default().worker_init(|ctx| *ctx.state_mut() = 7);
    /// let opts = ApplyOptions::default().worker_options(init);
    /// let r = pool.apply_async_ctx_with(|ctx, x: u32| *ctx.state() + x, 1, opts)?;
    /// assert_eq!(r.get(None)?, 8);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn worker_options(mut self, opts: MapOptions<Sh, St>) -> Self {
        self.workers = opts;
        self
    }
}

impl<Sh: SharedObjects, St: 'static, E: Extensions> WorkerPool<Sh, St, E> {
    /// Runs one task on a worker and waits for its result.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// assert_eq!(pool.apply(|x: u32| x * 3, 5)?, 15);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn apply<T: Input, R: Payload>(
        &mut self,
        f: impl Fn(T) -> R + Send + Sync + 'static,
        args: T,
    ) -> Result<R, PoolError> {
        self.apply_async(f, args)?.get(None)
    }

    /// Queues one task; its result comes through the returned [`AsyncResult`].
    ///
    /// The pool numbers its apply tasks 0, 1, 2... in the order they are submitted (`apply`
    /// included); an error names the task by that number ("task #3 panicked").
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let handles: Vec<_> = (0..4u32).map(|x| pool.apply_async(|x: u32| x * x, x)).collect::<Result<_, _>>()?;
    /// let squares: Vec<u32> = handles.into_iter().map(|h| h.get(None)).collect::<Result<_, _>>()?;
    /// assert_eq!(squares, vec![0, 1, 4, 9]);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn apply_async<T: Input, R: Payload>(
        &mut self,
        f: impl Fn(T) -> R + Send + Sync + 'static,
        args: T,
    ) -> Result<AsyncResult<R>, PoolError> {
        self.apply_async_with(f, args, ApplyOptions::default())
    }

    /// [`Self::apply_async`] with callbacks and options.
    ///
    /// ```
    /// use pool_core::ApplyOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let r = pool.apply_async_with(|x: u32| x + 1, 1, ApplyOptions::default())?;
    /// assert_eq!(r.get(None)?, 2);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn apply_async_with<T: Input, R: Payload>(
        &mut self,
        f: impl Fn(T) -> R + Send + Sync + 'static,
        args: T,
        opts: ApplyOptions<R, Sh, St>,
    ) -> Result<AsyncResult<R>, PoolError> {
        self.apply_async_ctx_with(move |_: &mut WorkerContext<'_, Sh, St>, x| f(x), args, opts)
    }

    /// [`Self::apply_async_with`] for a task that takes the worker's [`WorkerContext`].
    ///
    /// ```
    /// use pool_core::ApplyOptions;
    ///
    /// let mut pool = pool_core::ThreadPool::builder().n_jobs(2).shared_objects(10u32).build()?;
    /// let r = pool.apply_async_ctx_with(|ctx, x: u32| *ctx.shared() + x, 1, ApplyOptions::default())?;
    /// assert_eq!(r.get(None)?, 11);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn apply_async_ctx_with<T: Input, R: Payload>(
        &mut self,
        f: impl Fn(&mut WorkerContext<'_, Sh, St>, T) -> R + Send + Sync + 'static,
        args: T,
        opts: ApplyOptions<R, Sh, St>,
    ) -> Result<AsyncResult<R>, PoolError> {
        let job: Arc<dyn ErasedJob<Sh, St>> = Arc::new(TypedJob::new(f));
        let function = job.name();
        let (sup, applier) = (self.supervisor(), self.applier());
        let (call, wire, handles) = {
            let mut s = sup.lock().unwrap_or_else(|e| e.into_inner());
            let call = crate::supervisor::next_call_id();
            if s.any_alive() && !s.backend.announce_job(call, &job)? {
                // The workers must restart to run this job: let their queued tasks finish.
                drop(s);
                applier.wait_idle();
                s = sup.lock().unwrap_or_else(|e| e.into_inner());
            }
            let spec = WorkerSpec {
                init: opts.workers.worker_init.clone(),
                exit: opts.workers.worker_exit.clone(),
                lifespan: opts.workers.worker_lifespan,
            };
            s.ensure_workers(spec, call, &job, false)?;
            (call, s.backend.wire(), s.backend.shares_heap())
        };
        let task = applier.number_task();
        let (input, refs) = crate::shared_bytes::encoding(handles, || {
            encode_inputs::<T, R>(ChunkInputs::Vec(vec![args]), wire, None)
        })
        .map_err(|message| PoolError::Serialization {
            context: format!("arguments of apply_async task #{task}"),
            message,
        })?;
        let timeout = opts.workers.task_timeout;
        let settings = RunSettings {
            stop_on_error: true,
            retries: 0,
            timed: timeout.is_some(),
        };
        let cmd = Command::Chunk {
            job,
            call,
            first: task,
            len: 1,
            input,
            refs,
            settings,
        };
        let (result, setter) = AsyncResult::new();
        let (callback, error_callback) = (opts.callback, opts.error_callback);
        let complete = Box::new(move |out: Result<crate::job::Data, PoolError>| {
            let r: Result<R, PoolError> = out.and_then(|data| {
                let mut o =
                    decode_output::<T, R>(data).map_err(|message| PoolError::Serialization {
                        context: format!("result of apply_async task #{task}"),
                        message,
                    })?;
                match o.failures.pop() {
                    Some((_, f)) => Err(f.into()),
                    None => o.values.pop().ok_or(PoolError::Terminated),
                }
            });
            match (&r, callback, error_callback) {
                (Ok(v), Some(cb), _) => cb(v),
                (Err(e), _, Some(cb)) => cb(e),
                _ => {}
            }
            let ok = r.is_ok();
            setter.set(r);
            ok
        });
        if let Some(spec) = self.apply_progress.clone() {
            let info = CallInfo {
                call_id: call,
                pool_id: self.pool_id(),
                method: "apply_async".into(),
                function: function.to_string(),
                location: String::new(),
                n_jobs: self.n_jobs(),
                start_method: self.start_method().name().to_string(),
                spec,
            };
            applier.ensure_bar(&self.status_handle(), &info, || E::progress(&info));
        }
        applier.submit(Pending {
            cmd,
            call,
            timeout,
            complete,
        });
        Ok(result)
    }
}
