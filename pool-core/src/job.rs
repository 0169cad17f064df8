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

use crate::chunking::ChunkInputs;
use crate::codec;
use crate::context::WorkerContext;
use crate::counters::WorkerCounters;
use crate::error::{Cause, Failure, Phase};
use crate::slab::SlabWriter;
use crate::task_inputs::TaskInputs;
use crate::task_loop::{ArgSource, Settled, run_tasks};
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
    /// Serialized bytes a back end lends from memory it shares with the worker: decoded where
    /// they lie (one copy, into the values' place), handed back when dropped.
    Lent(Box<dyn LentBytes>),
}

/// Bytes lent by a back end (e.g. pool-ipc's bulk arena), read in place; dropping the lender
/// hands them back. Implementors guarantee the bytes stay put and in bounds while it lives.
pub trait LentBytes: Send {
    /// The lent bytes.
    fn bytes(&self) -> &[u8];
}

impl Data {
    /// The serialized bytes, owned or lent; `None` for a local value.
    pub fn encoded(&self) -> Option<&[u8]> {
        match self {
            Data::Local(_) => None,
            Data::Bytes(b) => Some(b),
            Data::Lent(l) => Some(l.bytes()),
        }
    }
}

impl Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Local(_) => f.write_str("Data::Local(..)"),
            Data::Bytes(b) => write!(f, "Data::Bytes({} bytes)", b.len()),
            Data::Lent(l) => write!(f, "Data::Lent({} bytes)", l.bytes().len()),
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
#[serde(bound(
    serialize = "R: Serialize + 'static",
    deserialize = "R: DeserializeOwned + 'static"
))]
pub struct ChunkOutput<R> {
    /// Successful results, in task order, failed tasks skipped.
    #[serde(
        serialize_with = "crate::codec::ser_seq",
        deserialize_with = "crate::codec::de_seq"
    )]
    pub values: Vec<R>,
    /// Failed tasks: offset in the chunk and what happened.
    pub failures: Vec<(u32, Failure)>,
    /// Tasks of the chunk that were not run (the chunk stopped at a failure).
    pub skipped: u32,
    /// Results written straight into the call's output instead of `values` (in-process
    /// ordered maps).
    pub in_place: u32,
}

impl<R> ChunkOutput<R> {
    fn new(values: Vec<R>, in_place: usize, settled: Settled) -> Self {
        ChunkOutput {
            values,
            failures: settled.failures,
            skipped: settled.skipped,
            in_place: in_place as u32,
        }
    }

    /// How many tasks of the chunk this accounts for.
    pub fn len(&self) -> u64 {
        (self.values.len() + self.failures.len()) as u64
            + u64::from(self.skipped)
            + u64::from(self.in_place)
    }

    /// Whether it accounts for no task at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A chunk for a worker in this process: its inputs and, when the call writes results in
/// place, the writer of its range of the output. The worker takes them out and hands the same
/// box back with the chunk's output in it: a box allocated and freed by the caller's thread,
/// where one box each way, each freed by the other thread, cost glibc's slow path of `free`
/// (its per-thread cache fills on one side and empties on the other) on every one-task chunk.
pub(crate) struct LocalChunk<T, R> {
    inputs: ChunkInputs<T>,
    dest: Option<SlabWriter<R>>,
    output: Option<ChunkOutput<R>>,
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

/// A call's task function, type-erased. Implemented by `TypedJob` only.
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

/// Encodes a chunk of inputs for `wire`; `dest` (in-process only) is where its results go.
pub(crate) fn encode_inputs<T: Input, R: Payload>(
    inputs: ChunkInputs<T>,
    wire: Wire,
    dest: Option<SlabWriter<R>>,
) -> Result<Data, String> {
    match wire {
        Wire::Local => Ok(Data::Local(Box::new(LocalChunk {
            inputs,
            dest,
            output: None,
        }))),
        Wire::Bytes => crate::input_wire::encode(inputs).map(Data::Bytes),
    }
}

/// Encodes a chunk of inputs for a worker in another process, leaving them in `inputs` (see
/// [`crate::input_wire::encode_kept`]).
pub(crate) fn encode_inputs_kept<T: Input>(inputs: &mut ChunkInputs<T>) -> Result<Vec<u8>, String> {
    crate::input_wire::encode_kept(inputs)
}

/// Decodes a chunk's results: from bytes, or in this process from the chunk's own box (see
/// [`LocalChunk`]) or a box of their own (an error report).
pub(crate) fn decode_output<T: Input, R: Payload>(data: Data) -> Result<ChunkOutput<R>, String> {
    let unexpected = || "result of an unexpected type".to_string();
    match data {
        Data::Local(b) => match b.downcast::<LocalChunk<T, R>>() {
            Ok(mut chunk) => chunk.output.take().ok_or_else(unexpected),
            Err(b) => b
                .downcast::<ChunkOutput<R>>()
                .map(|b| *b)
                .map_err(|_| unexpected()),
        },
        Data::Bytes(b) => {
            let out = postcard::from_bytes(&b).map_err(|e| e.to_string());
            codec::recycle_buffer(b);
            out
        }
        Data::Lent(l) => postcard::from_bytes(l.bytes()).map_err(|e| e.to_string()),
    }
}

/// Decodes a chunk's results, writing its values through `dest` (see [`codec::SeqInto`]);
/// the returned output counts them as `in_place`.
pub(crate) fn decode_output_into<T: Input, R: Payload>(
    data: Data,
    dest: &mut SlabWriter<R>,
) -> Result<ChunkOutput<R>, String> {
    let Some(bytes) = data.encoded() else {
        return decode_output::<T, R>(data);
    };
    let mut d = postcard::Deserializer::from_bytes(bytes);
    let out = serde::de::DeserializeSeed::deserialize(OutputInto(dest), &mut d)
        .map_err(|e| e.to_string());
    if let Data::Bytes(b) = data {
        codec::recycle_buffer(b);
    }
    out
}

/// Decodes the fields of a [`ChunkOutput`], in their order, with the values going to a writer.
struct OutputInto<'a, R>(&'a mut SlabWriter<R>);

impl<'de, R: Payload> serde::de::DeserializeSeed<'de> for OutputInto<'_, R> {
    type Value = ChunkOutput<R>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<ChunkOutput<R>, D::Error> {
        const FIELDS: &[&str] = &["values", "failures", "skipped", "in_place"];
        d.deserialize_struct("ChunkOutput", FIELDS, self)
    }
}

impl<'de, R: Payload> serde::de::Visitor<'de> for OutputInto<'_, R> {
    type Value = ChunkOutput<R>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chunk's output")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let missing = |i| A::Error::invalid_length(i, &"4 fields");
        let before = self.0.written();
        seq.next_element_seed(codec::SeqInto(&mut *self.0))?
            .ok_or_else(|| missing(0))?;
        let failures = seq.next_element()?.ok_or_else(|| missing(1))?;
        let skipped = seq.next_element()?.ok_or_else(|| missing(2))?;
        let in_place: u32 = seq.next_element()?.ok_or_else(|| missing(3))?;
        // The count comes from the worker's bytes: a corrupt one must not overflow it.
        let in_place = u32::try_from(self.0.written() - before)
            .ok()
            .and_then(|n| n.checked_add(in_place))
            .ok_or_else(|| A::Error::custom("a chunk's output counts more than 2^32 results"))?;
        Ok(ChunkOutput {
            values: Vec::new(),
            failures,
            skipped,
            in_place,
        })
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
        let bytes = input.encoded().is_some();
        let t0 = env.recorder.is_some().then(Instant::now);
        let mut local: Option<Box<LocalChunk<T, R>>> = None;
        let (inputs, dest, input): (ChunkInputs<T>, Option<SlabWriter<R>>, Data) = match input {
            Data::Local(b) => match b.downcast::<LocalChunk<T, R>>() {
                Ok(mut c) => {
                    let inputs = std::mem::replace(&mut c.inputs, ChunkInputs::Vec(Vec::new()));
                    let dest = c.dest.take();
                    local = Some(c);
                    (inputs, dest, Data::Local(Box::new(())))
                }
                Err(_) => {
                    return encode_error::<R>(
                        ctx.worker_id,
                        first,
                        "inputs of an unexpected type",
                        bytes,
                    );
                }
            },
            encoded => {
                let bytes_in = encoded.encoded().unwrap_or_default();
                // A handle's reference is in this worker's ledger already: its parent put it
                // there as it sent the chunk.
                match crate::shared_bytes::decoding_inputs(|| {
                    crate::input_wire::decode::<T>(bytes_in)
                }) {
                    Ok(inputs) => (inputs, None, encoded),
                    Err(e) => {
                        return encode_error::<R>(
                            ctx.worker_id,
                            first,
                            &format!("cannot decode the inputs: {e}"),
                            bytes,
                        );
                    }
                }
            }
        };
        if let (Some(r), Some(t0)) = (env.recorder.as_deref_mut(), t0) {
            r.timings.data_transfer += t0.elapsed();
        }
        // Arguments for error reports, retries and insights: in-process inputs are cloned while
        // their task runs; serialized ones are decoded again from their bytes when needed.
        let source = match input.encoded() {
            Some(b) => ArgSource::Encoded(b),
            None => ArgSource::Cloned,
        };
        let mut inputs = TaskInputs::new(inputs);
        let out = match dest {
            // The writer is dropped at the end of this arm, recording what it wrote before
            // the worker reports the chunk done.
            Some(mut w) => {
                let settled = run_tasks(&self.f, ctx, first, &mut inputs, &source, env, &mut w);
                ChunkOutput::new(Vec::new(), w.written(), settled)
            }
            None => {
                let mut values = Vec::with_capacity(inputs.remaining());
                let settled =
                    run_tasks(&self.f, ctx, first, &mut inputs, &source, env, &mut values);
                ChunkOutput::new(values, 0, settled)
            }
        };
        if let Some(mut chunk) = local {
            // The box and the reader go back to the caller's thread, which allocated them.
            if let Some(reader) = inputs.take_reader() {
                chunk.inputs = ChunkInputs::Reader(reader);
            }
            chunk.output = Some(out);
            return Data::Local(chunk);
        }
        let t1 = env.recorder.is_some().then(Instant::now);
        let encoded = encode_output::<T, R>(out, first, ctx.worker_id, &source, env.counters);
        if let (Some(r), Some(t1)) = (env.recorder.as_deref_mut(), t1) {
            r.timings.data_transfer += t1.elapsed();
        }
        if let Data::Bytes(b) = input {
            codec::recycle_buffer(b);
        }
        encoded
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

/// Encodes the output of the chunk at `first`. A result that refuses to be serialized becomes
/// the failure of its task, named with its arguments, and the others travel as usual.
fn encode_output<T: Input, R: Payload>(
    mut out: ChunkOutput<R>,
    first: u64,
    worker: usize,
    source: &ArgSource<'_>,
    counters: &WorkerCounters,
) -> Data {
    loop {
        let handles = crate::shared_bytes::parent_shares_heap();
        let guess = codec::size_guess::<R>(out.values.len());
        let message = match crate::shared_bytes::encoding(handles, || codec::encode(&out, guess)) {
            Ok((b, refs)) => {
                refs.hand_to_parent();
                return Data::Bytes(b);
            }
            Err(e) => format!("cannot serialize a result: {e}"),
        };
        let Some(value) = out.values.iter().position(crate::refusal::refuses) else {
            // Not one value's doing: the chunk fails as a whole.
            return encode_error::<R>(worker, first, &message, true);
        };
        // Values skip the failed tasks: find the offset of the task that made this one.
        let failed = |o: &u32| out.failures.iter().any(|(f, _)| f == o);
        let offset = (0..)
            .filter(|o| !failed(o))
            .nth(value)
            .expect("every value has a task");
        out.values.remove(value);
        counters
            .tasks_failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut failure = task_failure(worker, first + u64::from(offset), message);
        failure.args = Some(source.debug::<T>(offset as usize));
        let at = out.failures.partition_point(|(o, _)| *o < offset);
        out.failures.insert(at, (offset, failure));
    }
}

fn encode_error<R: Payload>(worker: usize, first: u64, message: &str, bytes: bool) -> Data {
    let out: ChunkOutput<R> = ChunkOutput {
        values: Vec::new(),
        failures: vec![(0, task_failure(worker, first, message.to_string()))],
        skipped: 0,
        in_place: 0,
    };
    if bytes {
        Data::Bytes(postcard::to_stdvec(&out).unwrap_or_default())
    } else {
        Data::Local(Box::new(out))
    }
}

/// A serialization failure of task `task`.
fn task_failure(worker: usize, task: u64, message: String) -> Failure {
    Failure {
        phase: Phase::Task,
        cause: Cause::Serialization,
        worker,
        task: Some(task),
        args: None,
        message,
        backtrace: None,
        attempts: 1,
        earlier: Vec::new(),
    }
}
