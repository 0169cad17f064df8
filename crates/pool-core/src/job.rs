//! The task function of one call, with its types erased so that long-lived workers (whose
//! shared-object and state types are fixed by the pool) can run calls of any input and output
//! type.
//!
//! A job has two faces: `Local` payloads (`Box<dyn Any>`, for workers in this process) and
//! `Bytes` payloads (postcard, for workers in other processes). The typed code for both is
//! generated here, so back ends never need to know `T` or `R`.

use std::any::Any;
use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::context::WorkerContext;
use crate::counters::WorkerCounters;
use crate::error::{Cause, Failure, Phase};
use crate::task_loop::{ArgSource, run_tasks};
use crate::timing::Recorder;

/// What every value crossing to or from a worker must be: sendable and serializable (so the
/// same call runs on threads and on processes).
pub trait Payload: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Payload for T {}

/// What task inputs must be, on top of [`Payload`]: `Clone` so the pool keeps each task's
/// arguments until it returns (for error messages, retries and insights), `Debug` to name them.
pub trait Input: Payload + Clone + Debug {}
impl<T: Payload + Clone + Debug> Input for T {}

/// Data in flight between the parent and a worker.
pub enum Data {
    /// A value for a worker in this process.
    Local(Box<dyn Any + Send>),
    /// Serialized bytes for a worker in another process.
    Bytes(Vec<u8>),
}

impl Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Local(_) => f.write_str("Data::Local(..)"),
            Data::Bytes(b) => write!(f, "Data::Bytes({} bytes)", b.len()),
        }
    }
}

/// Which face a back end uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `Data::Local`.
    Local,
    /// `Data::Bytes`.
    Bytes,
}

/// The results of one chunk: the values of the tasks that succeeded, in order, and the failures
/// (index within the chunk) of those that did not.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChunkOutput<R> {
    /// Successful results, in task order, failed tasks skipped.
    pub values: Vec<R>,
    /// Failed tasks: offset in the chunk and what happened.
    pub failures: Vec<(u32, Failure)>,
    /// Tasks of the chunk that were not run (the chunk stopped at a failure).
    pub skipped: u32,
}

/// Per-chunk settings a worker runs with.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RunSettings {
    /// Stop the chunk at the first failure.
    pub stop_on_error: bool,
    /// Extra attempts per failed task.
    pub retries: u32,
    /// Record start times (task timeouts or insights are on).
    pub timed: bool,
}

/// What a worker lends a job while it runs a chunk.
#[derive(Debug)]
pub struct TaskEnv<'a> {
    pub(crate) counters: &'a WorkerCounters,
    pub(crate) recorder: Option<&'a mut Recorder>,
    pub(crate) settings: RunSettings,
}

/// Rebuilds a job in a fresh process of the same binary (see [`ErasedJob::rebuilder`]).
pub type JobRebuilder<Sh, St> = fn() -> Arc<dyn ErasedJob<Sh, St>>;

/// A call's task function, type-erased. Implemented by [`TypedJob`] only.
pub trait ErasedJob<Sh, St>: Send + Sync {
    /// Runs the tasks of one chunk, whose first task has index `first`.
    fn run_chunk(
        &self,
        ctx: &mut WorkerContext<'_, Sh, St>,
        first: u64,
        input: Data,
        env: &mut TaskEnv<'_>,
    ) -> Data;

    /// The task function's type name.
    fn name(&self) -> &'static str;

    /// When the task function captures nothing (a `fn` item or non-capturing closure): a
    /// function that rebuilds this job in a fresh process of the same binary.
    fn rebuilder(&self) -> Option<JobRebuilder<Sh, St>>;
}

/// The typed job behind [`ErasedJob`].
pub(crate) struct TypedJob<F, T, R> {
    f: F,
    _types: std::marker::PhantomData<fn(T) -> R>,
}

impl<F, T, R> TypedJob<F, T, R> {
    pub(crate) fn new(f: F) -> Self {
        TypedJob {
            f,
            _types: std::marker::PhantomData,
        }
    }
}

/// Large `Data::Bytes` buffers kept for reuse, process-wide.
///
/// Why: a fresh buffer of a MiB costs ~10x a copy into a warm one (a page fault per 4 KiB), and
/// malloc returns freed MiB buffers to the kernel whenever they end up at the top of the heap.
/// Encoders take their buffer here, and whoever is done with one (a back end that copied it out,
/// a decoder) hands it back: the same few buffers then carry every chunk. Lock-free slots, so a
/// `fork` in the middle of a take or a recycle at worst leaks a buffer in the child.
mod spare {
    use std::ptr;
    use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    /// Buffers below this are cheap to allocate (malloc keeps them warm).
    const MIN_CAP: usize = 64 << 10;
    /// Buffers above this are not worth keeping resident.
    const MAX_CAP: usize = 16 << 20;
    /// At most this many bytes are kept.
    const BUDGET: usize = 64 << 20;
    const SLOTS: usize = 8;

    static SLOT: [AtomicPtr<Vec<u8>>; SLOTS] = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];
    /// Capacity of the buffers in `SLOT` (and of those being put there).
    static KEPT: AtomicUsize = AtomicUsize::new(0);

    pub(super) fn take() -> Vec<u8> {
        for s in &SLOT {
            if s.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let p = s.swap(ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: non-null slot values come from `Box::into_raw` in `give`, and the swap
                // made this thread their only owner.
                let mut v = *unsafe { Box::from_raw(p) };
                KEPT.fetch_sub(v.capacity(), Ordering::Relaxed);
                v.clear();
                return v;
            }
        }
        Vec::new()
    }

    pub(super) fn give(v: Vec<u8>) {
        let cap = v.capacity();
        if !(MIN_CAP..=MAX_CAP).contains(&cap) {
            return;
        }
        if KEPT.fetch_add(cap, Ordering::Relaxed) + cap > BUDGET {
            KEPT.fetch_sub(cap, Ordering::Relaxed);
            return;
        }
        let p = Box::into_raw(Box::new(v));
        for s in &SLOT {
            if s.load(Ordering::Relaxed).is_null()
                && s.compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        KEPT.fetch_sub(cap, Ordering::Relaxed);
        // SAFETY: `p` came from `Box::into_raw` above and no slot took it.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// An empty byte buffer for an encoder, with the capacity of a recycled one when there is one
/// (see [`recycle_buffer`]).
pub fn take_buffer() -> Vec<u8> {
    spare::take()
}

/// Hands a byte buffer that is no longer needed (e.g. `Data::Bytes` a back end copied out) back
/// for reuse by [`take_buffer`]; small and huge ones, and any beyond 64 MiB kept, are dropped.
pub fn recycle_buffer(buf: Vec<u8>) {
    spare::give(buf);
}

/// Encodes `value` into a buffer from [`take_buffer`].
fn encode_bytes<T: Serialize + ?Sized>(value: &T) -> postcard::Result<Vec<u8>> {
    /// Appends to a `Vec` with `extend_from_slice` (one `memcpy` per byte string, where
    /// `postcard::to_extend` goes byte by byte).
    struct Append(Vec<u8>);
    impl postcard::ser_flavors::Flavor for Append {
        type Output = Vec<u8>;
        #[inline(always)]
        fn try_push(&mut self, b: u8) -> postcard::Result<()> {
            self.0.push(b);
            Ok(())
        }
        #[inline(always)]
        fn try_extend(&mut self, b: &[u8]) -> postcard::Result<()> {
            self.0.extend_from_slice(b);
            Ok(())
        }
        fn finalize(self) -> postcard::Result<Vec<u8>> {
            Ok(self.0)
        }
    }
    postcard::serialize_with_flavor(value, Append(take_buffer()))
}

/// Encodes a chunk of inputs for `wire`.
pub(crate) fn encode_inputs<T: Input>(inputs: Vec<T>, wire: Wire) -> Result<Data, String> {
    match wire {
        Wire::Local => Ok(Data::Local(Box::new(inputs))),
        Wire::Bytes => encode_bytes(&inputs)
            .map(Data::Bytes)
            .map_err(|e| e.to_string()),
    }
}

/// Decodes a chunk's results.
pub(crate) fn decode_output<R: Payload>(data: Data) -> Result<ChunkOutput<R>, String> {
    match data {
        Data::Local(b) => b
            .downcast::<ChunkOutput<R>>()
            .map(|b| *b)
            .map_err(|_| "result of an unexpected type".to_string()),
        Data::Bytes(b) => {
            let out = postcard::from_bytes(&b).map_err(|e| e.to_string());
            recycle_buffer(b);
            out
        }
    }
}

impl<Sh, St, F, T, R> ErasedJob<Sh, St> for TypedJob<F, T, R>
where
    F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R + Send + Sync + 'static,
    T: Input,
    R: Payload,
{
    fn run_chunk(
        &self,
        ctx: &mut WorkerContext<'_, Sh, St>,
        first: u64,
        input: Data,
        env: &mut TaskEnv<'_>,
    ) -> Data {
        let bytes = matches!(input, Data::Bytes(_));
        let t0 = Instant::now();
        let (inputs, input): (Vec<T>, Data) = match input {
            Data::Local(b) => match b.downcast::<Vec<T>>() {
                Ok(v) => (*v, Data::Local(Box::new(()))),
                Err(_) => {
                    return encode_error::<R>(
                        ctx.worker_id,
                        first,
                        "inputs of an unexpected type",
                        bytes,
                    );
                }
            },
            Data::Bytes(b) => match postcard::from_bytes(&b) {
                Ok(v) => (v, Data::Bytes(b)),
                Err(e) => {
                    return encode_error::<R>(
                        ctx.worker_id,
                        first,
                        &format!("cannot decode the inputs: {e}"),
                        bytes,
                    );
                }
            },
        };
        if let Some(r) = env.recorder.as_deref_mut() {
            r.timings.data_transfer += t0.elapsed();
        }
        // Arguments for error reports, retries and insights: in-process inputs are cloned while
        // their task runs; serialized ones are decoded again from their bytes when needed.
        let source = match &input {
            Data::Bytes(b) => ArgSource::Encoded(b),
            Data::Local(_) => ArgSource::Cloned,
        };
        let out = run_tasks(&self.f, ctx, first, inputs, &source, env);
        if let Data::Bytes(b) = input {
            recycle_buffer(b);
        }
        if !bytes {
            return Data::Local(Box::new(out));
        }
        let t1 = Instant::now();
        let encoded = match encode_bytes(&out) {
            Ok(b) => b,
            Err(e) => {
                return encode_error::<R>(
                    ctx.worker_id,
                    first,
                    &format!("cannot serialize a result: {e}"),
                    true,
                );
            }
        };
        if let Some(r) = env.recorder.as_deref_mut() {
            r.timings.data_transfer += t1.elapsed();
        }
        Data::Bytes(encoded)
    }

    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }

    fn rebuilder(&self) -> Option<JobRebuilder<Sh, St>> {
        crate::hook::is_zero_sized::<F>().then_some(rebuild_job::<Sh, St, F, T, R> as _)
    }
}

fn rebuild_job<Sh, St, F, T, R>() -> Arc<dyn ErasedJob<Sh, St>>
where
    F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R + Send + Sync + 'static,
    T: Input,
    R: Payload,
{
    Arc::new(TypedJob::<F, T, R>::new(crate::hook::conjure::<F>()))
}

fn encode_error<R: Payload>(worker: usize, first: u64, message: &str, bytes: bool) -> Data {
    let out: ChunkOutput<R> = ChunkOutput {
        values: Vec::new(),
        failures: vec![(
            0,
            Failure {
                phase: Phase::Task,
                cause: Cause::Serialization,
                worker,
                task: Some(first),
                args: None,
                message: message.to_string(),
                backtrace: None,
                attempts: 1,
            },
        )],
        skipped: 0,
    };
    if bytes {
        Data::Bytes(postcard::to_stdvec(&out).unwrap_or_default())
    } else {
        Data::Local(Box::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::{recycle_buffer, take_buffer};

    #[test]
    fn spare_buffers_survive_concurrent_take_and_recycle() {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        let mut b = take_buffer();
                        assert!(b.is_empty());
                        b.resize(100 << 10, t as u8);
                        assert_eq!((b[0], b[b.len() - 1]), (t as u8, t as u8));
                        recycle_buffer(b);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
