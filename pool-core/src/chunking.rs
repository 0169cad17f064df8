//! Splitting inputs into chunks, as MPIRE does: `n_splits` chunks of (possibly fractional)
//! `len / n_splits` tasks, or a fixed `chunk_size`; and the `Policy` of a call: chunk size,
//! how many tasks may be pulled ahead, how far results may run ahead of the ordered output,
//! and how many chunks a worker holds (the scheduler's protocol, in `call`, says where each
//! applies).
//!
//! With a fractional size `c`, chunk `k` ends at `ceil((k + 1) · c)`, so ten tasks in three
//! splits become chunks of 4, 3 and 3.

use std::time::Duration;

use crate::error::PoolError;
use crate::indexed::{ChunkReader, Splittable};

/// Chunking and back-pressure of one call, from its options and the pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    /// How the input is cut.
    pub(crate) spec: ChunkSpec,
    /// Tasks pulled from the input and not yet back from a worker (staged or sent), at most.
    pub(crate) max_active: u64,
    /// In ordered calls: no chunk is pulled that starts this many tasks or more past the first
    /// result not yet handed out. Results waiting behind a slow task are buffered up to this.
    pub(crate) max_ahead: u64,
}

/// How many times `max_active` results may wait for their turn in an ordered call.
const AHEAD_PER_ACTIVE: u64 = 64;

/// A chunk that took less than this is quick: its worker may hold the next one too.
pub(crate) const QUICK_CHUNK: Duration = Duration::from_millis(2);

/// A chunk that took less than this is tiny: its trip to the worker and back costs about as
/// much as running it, so its worker may hold [`PIPELINE_DEPTH`] of them (a pipeline: the next
/// chunks wait in the worker's queue while it runs one, and it never sleeps between them). A
/// chunk then waits at most `PIPELINE_DEPTH × TINY_CHUNK` (0.8 ms) behind the others, less
/// than behind one quick chunk.
pub(crate) const TINY_CHUNK: Duration = Duration::from_micros(100);

/// Chunks a worker may hold while its chunks are tiny.
pub(crate) const PIPELINE_DEPTH: usize = 8;

/// Tasks per worker the default `max_tasks_active` allows at least, so that one-task chunks
/// can fill a pipeline ([`PIPELINE_DEPTH`] in hand and one staged).
const PIPELINE_TASKS: usize = 2 * PIPELINE_DEPTH;

impl Policy {
    /// MPIRE's defaults: `64 × n_jobs` splits when the length is known, else chunks of 1;
    /// `max_tasks_active` of `n_jobs × chunk size × 2` (at least `n_jobs × 16`, for pipelining).
    pub(crate) fn new(
        n_jobs: usize,
        len: Option<usize>,
        chunk_size: Option<usize>,
        n_splits: Option<usize>,
        max_tasks_active: Option<usize>,
    ) -> Result<Self, PoolError> {
        let invalid = |what: &str| {
            Err(PoolError::InvalidConfig(format!(
                "{what} must be at least 1"
            )))
        };
        if chunk_size == Some(0) {
            return invalid("chunk_size");
        }
        if n_splits == Some(0) {
            return invalid("n_splits");
        }
        if max_tasks_active == Some(0) {
            return invalid("max_tasks_active");
        }
        let spec = match (chunk_size, len) {
            (Some(c), _) => ChunkSpec::Size(c as f64),
            (None, Some(len)) => ChunkSpec::Splits {
                n_splits: n_splits.unwrap_or(64 * n_jobs),
                len,
            },
            (None, None) => ChunkSpec::Size(1.0),
        };
        let chunk = spec.size().ceil() as usize;
        let max_active =
            max_tasks_active.unwrap_or(n_jobs * (chunk * 2).max(PIPELINE_TASKS)) as u64;
        Ok(Policy {
            spec,
            max_active,
            max_ahead: max_active.saturating_mul(AHEAD_PER_ACTIVE),
        })
    }

    /// Chunks a worker may hold at once. One, so that a chunk never waits behind a slow one
    /// while another worker could run it; two while its chunks are quick and more input is to
    /// come. Between two chunks a worker waits for its result to travel back and the next chunk
    /// to travel out, a gap that matters next to a chunk of a millisecond and not next to one of
    /// a second; and a chunk held behind a quick one waits little. Once the input is all pulled,
    /// the last chunks go to idle workers only: a chunk queued then could wait behind a slow one
    /// while the other workers have nothing left to do. While its chunks are tiny (their trip
    /// costs more than running them), it holds [`PIPELINE_DEPTH`]: then the trips overlap.
    pub(crate) fn hand_depth(pace: Pace, input_done: bool) -> usize {
        match (pace, input_done) {
            (_, true) | (Pace::Slow, _) => 1,
            (Pace::Quick, false) => 2,
            (Pace::Tiny, false) => PIPELINE_DEPTH,
        }
    }
}

/// How long a worker's last chunk took: under [`TINY_CHUNK`], under [`QUICK_CHUNK`], or more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Slower than [`QUICK_CHUNK`], or not known yet.
    #[default]
    Slow,
    /// Under [`QUICK_CHUNK`].
    Quick,
    /// Under [`TINY_CHUNK`].
    Tiny,
}

impl Pace {
    /// The pace of a chunk that took `took`.
    pub(crate) fn of(took: Duration) -> Self {
        if took < TINY_CHUNK {
            Pace::Tiny
        } else if took < QUICK_CHUNK {
            Pace::Quick
        } else {
            Pace::Slow
        }
    }
}

/// How to chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChunkSpec {
    /// This many tasks per chunk (may be fractional, at least 1).
    Size(f64),
    /// This many chunks of `len` tasks.
    Splits {
        /// Number of chunks.
        n_splits: usize,
        /// Number of tasks.
        len: usize,
    },
}

impl ChunkSpec {
    /// Tasks per chunk, at least 1.
    pub fn size(self) -> f64 {
        match self {
            ChunkSpec::Size(s) => s.max(1.0),
            ChunkSpec::Splits { n_splits, len } => (len as f64 / n_splits.max(1) as f64).max(1.0),
        }
    }
}

/// The end (exclusive) of chunk `k` for chunks of `size`.
#[inline]
fn chunk_end(k: u64, size: f64) -> u64 {
    if size.fract() == 0.0 {
        (k + 1) * size as u64
    } else {
        ((k + 1) as f64 * size).ceil() as u64
    }
}

/// Where chunk boundaries fall: the running count of tasks cut so far and the next cut.
#[derive(Debug, Clone, Copy)]
struct Cuts {
    size: f64,
    k: u64,
    next_index: u64,
    limit: Option<u64>,
}

impl Cuts {
    fn new(spec: ChunkSpec, limit: Option<u64>) -> Self {
        Cuts {
            size: spec.size(),
            k: 0,
            next_index: 0,
            limit,
        }
    }

    /// How many tasks the next chunk will have at most.
    fn next_len(&self) -> u64 {
        let end = chunk_end(self.k, self.size);
        let end = self.limit.map_or(end, |l| end.min(l));
        end.saturating_sub(self.next_index)
    }

    /// Records a chunk of `len` tasks; returns the index of its first task.
    fn advance(&mut self, len: u64) -> u64 {
        let first = self.next_index;
        self.next_index += len;
        self.k += 1;
        first
    }
}

/// An iterator of chunks `(index of the first task, tasks)` over any iterator, lazily.
#[derive(Debug)]
pub struct Chunks<I> {
    inner: I,
    cuts: Cuts,
}

impl<I: Iterator> Chunks<I> {
    /// Chunks `inner` in chunks of `spec`; at most `limit` tasks are taken when given.
    pub fn new(inner: I, spec: ChunkSpec, limit: Option<u64>) -> Self {
        Chunks {
            inner,
            cuts: Cuts::new(spec, limit),
        }
    }

    /// Tasks taken so far.
    pub fn taken(&self) -> u64 {
        self.cuts.next_index
    }

    /// How many tasks the next chunk will have at most.
    pub fn next_len(&self) -> u64 {
        self.cuts.next_len()
    }
}

impl<I: Iterator> Iterator for Chunks<I> {
    type Item = (u64, Vec<I::Item>);

    fn next(&mut self) -> Option<Self::Item> {
        let want = self.next_len() as usize;
        if want == 0 {
            return None;
        }
        let chunk: Vec<I::Item> = self.inner.by_ref().take(want).collect();
        if chunk.is_empty() {
            return None;
        }
        Some((self.cuts.advance(chunk.len() as u64), chunk))
    }
}

/// The tasks of one chunk: taken from the input by the caller, or left for the worker to read
/// (see [`crate::indexed`]).
pub(crate) enum ChunkInputs<T> {
    /// Inputs in hand.
    Vec(Vec<T>),
    /// Inputs the worker reads itself.
    Reader(Box<dyn ChunkReader<T>>),
}

impl<T: Clone> ChunkInputs<T> {
    /// Number of tasks.
    pub(crate) fn len(&self) -> usize {
        match self {
            ChunkInputs::Vec(v) => v.len(),
            ChunkInputs::Reader(r) => r.remaining(),
        }
    }

    /// A copy to keep while the chunk is in a worker's hand: a second reader when the inputs
    /// can be read again (ranges), else copies of them.
    pub(crate) fn copy(&self) -> Self {
        match self {
            ChunkInputs::Vec(v) => ChunkInputs::Vec(v.clone()),
            ChunkInputs::Reader(r) => match r.reopen() {
                Some(again) => ChunkInputs::Reader(again),
                None => ChunkInputs::Vec(r.to_vec()),
            },
        }
    }

    /// The inputs in hand.
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            ChunkInputs::Vec(v) => v,
            ChunkInputs::Reader(mut r) => {
                let mut v = Vec::new();
                r.read(r.remaining(), &mut v);
                v
            }
        }
    }
}

/// A source of chunks whose input type is erased: one virtual call per chunk rather than
/// one per task, so pulling a chunk out of a range or a vector stays a tight loop.
pub(crate) trait ChunkSource<T> {
    /// See [`Chunks::next_len`].
    fn next_len(&self) -> u64;
    /// The next chunk: `(index of its first task, tasks)`.
    fn next_chunk(&mut self) -> Option<(u64, ChunkInputs<T>)>;
    /// See [`Chunks::taken`].
    fn taken(&self) -> u64;
}

impl<I: Iterator> ChunkSource<I::Item> for Chunks<I> {
    fn next_len(&self) -> u64 {
        Chunks::next_len(self)
    }

    fn next_chunk(&mut self) -> Option<(u64, ChunkInputs<I::Item>)> {
        self.next().map(|(first, v)| (first, ChunkInputs::Vec(v)))
    }

    fn taken(&self) -> u64 {
        Chunks::taken(self)
    }
}

/// Chunks of inputs that workers read themselves: each is a range of indices.
pub(crate) struct SplitChunks<T> {
    inputs: Box<dyn Splittable<T>>,
    cuts: Cuts,
}

impl<T> SplitChunks<T> {
    /// Chunks `inputs` as [`Chunks::new`] does.
    pub(crate) fn new(inputs: Box<dyn Splittable<T>>, spec: ChunkSpec, limit: Option<u64>) -> Self {
        let len = inputs.len() as u64;
        SplitChunks {
            inputs,
            cuts: Cuts::new(spec, Some(limit.map_or(len, |l| l.min(len)))),
        }
    }
}

impl<T> ChunkSource<T> for SplitChunks<T> {
    fn next_len(&self) -> u64 {
        self.cuts.next_len()
    }

    fn next_chunk(&mut self) -> Option<(u64, ChunkInputs<T>)> {
        let len = self.cuts.next_len();
        if len == 0 {
            return None;
        }
        let first = self.cuts.advance(len);
        let reader = self.inputs.split(first as usize, len as usize);
        Some((first, ChunkInputs::Reader(reader)))
    }

    fn taken(&self) -> u64 {
        self.cuts.next_index
    }
}

/// Chunks any iterable, as MPIRE's `chunk_tasks`.
///
/// ```
/// use pool_core::chunking::{chunk_tasks, ChunkSpec};
///
/// let c: Vec<Vec<u32>> = chunk_tasks(0..10, ChunkSpec::Splits { n_splits: 3, len: 10 }).collect();
/// assert_eq!(c, vec![vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
/// let c: Vec<usize> = chunk_tasks(0..10, ChunkSpec::Size(2.5)).map(|c| c.len()).collect();
/// assert_eq!(c, vec![3, 2, 3, 2]);
/// ```
pub fn chunk_tasks<I: IntoIterator>(
    inputs: I,
    spec: ChunkSpec,
) -> impl Iterator<Item = Vec<I::Item>> {
    Chunks::new(inputs.into_iter(), spec, None).map(|(_, c)| c)
}

/// Chunks a slice without copying it.
///
/// ```
/// use pool_core::chunking::{chunk_slice, ChunkSpec};
///
/// let data = [0u8; 10];
/// let sizes: Vec<usize> = chunk_slice(&data, ChunkSpec::Splits { n_splits: 6, len: 10 })
///     .map(<[u8]>::len)
///     .collect();
/// assert_eq!(sizes, vec![2, 2, 1, 2, 2, 1]);
/// ```
pub fn chunk_slice<T>(data: &[T], spec: ChunkSpec) -> impl Iterator<Item = &[T]> {
    let size = spec.size();
    let len = data.len() as u64;
    let mut start = 0u64;
    let mut k = 0u64;
    std::iter::from_fn(move || {
        if start >= len {
            return None;
        }
        let end = chunk_end(k, size).min(len);
        k += 1;
        let s = &data[start as usize..end as usize];
        start = end;
        Some(s)
    })
}
