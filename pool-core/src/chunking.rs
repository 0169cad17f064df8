//! Splitting inputs into chunks, as MPIRE does: `n_splits` chunks of (possibly fractional)
//! `len / n_splits` tasks, or a fixed `chunk_size`; and the `Policy` of a call: chunk size,
//! how many tasks may be pulled ahead, how far results may run ahead of the ordered output,
//! and how many chunks a worker holds (the scheduler's protocol, in `call`, says where each
//! applies).
//!
//! With a fractional size `c`, chunk `k` ends at `ceil((k + 1) · c)`, so ten tasks in three
//! splits become chunks of 4, 3 and 3.
//!
//! **Adaptive chunks.** When the user gave no `chunk_size` and the length is known, chunks
//! shrink as the call nears its end (guided self-scheduling): the next chunk has at most
//! `remaining / (GUIDE_SHARE · n_jobs)` tasks, never more than the MPIRE size, and never fewer
//! than `1 / TAIL_SHRINK` of it (so millions of tiny tasks do not end in thousands of round
//! trips), unless the call's mean task time so far says that `TAIL_CHUNK_TIME` holds fewer
//! tasks (slow tasks shrink to chunks of one). Where this cap bites, the call is in its *tail*:
//! a worker holds one chunk only, so one slow task never holds a chunk queued behind it while
//! another worker runs out of work. A `chunk_size` given by the user stays the grid: chunks
//! are cut on it, one at a time or, while they are micro, as runs of several
//! (`Policy::run`).

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
    /// Adaptive chunks (see the module docs): the number of tasks, when chunks may shrink.
    guided_len: Option<u64>,
    n_jobs: u64,
}

/// How many times `max_active` results may wait for their turn in an ordered call.
const AHEAD_PER_ACTIVE: u64 = 64;

/// A chunk that took less than this is quick: its worker may hold the next one too, outside
/// the tail. Next to it, the round trip a second chunk in hand saves (~0.1 ms) is worth the
/// wait of a chunk queued behind it.
pub(crate) const QUICK_CHUNK: Duration = Duration::from_millis(20);

/// In the tail, a chunk gets at most `1 / (GUIDE_SHARE · n_jobs)` of the tasks left.
pub(crate) const GUIDE_SHARE: u64 = 2;

/// Chunks of slow tasks may shrink to this much work at the call's mean task time (and to
/// one task): shorter, their round trip would cost more than the balance they buy.
pub(crate) const TAIL_CHUNK_TIME: Duration = Duration::from_millis(1);

/// Chunks shrink to `1 / TAIL_SHRINK` of their size whatever the pace: tasks may turn slow
/// near the end, after the pace was measured.
pub(crate) const TAIL_SHRINK: u64 = 8;

/// A chunk that took less than this is tiny: its trip to the worker and back costs about as
/// much as running it, so its worker may hold [`PIPELINE_DEPTH`] of them (a pipeline: the next
/// chunks wait in the worker's queue while it runs one, and it never sleeps between them). A
/// chunk then waits at most `PIPELINE_DEPTH × TINY_CHUNK` (0.8 ms) behind the others, less
/// than behind one quick chunk.
pub(crate) const TINY_CHUNK: Duration = Duration::from_micros(100);

/// Chunks a worker may hold while its chunks are tiny.
pub(crate) const PIPELINE_DEPTH: usize = 8;

/// A chunk that took less than this is a *micro* chunk: its trip costs a good part of its
/// time (~1 µs under threads, a few under Fork), so the next ones travel in runs
/// ([`Policy::run`]). Slower chunks gain little from a run, and a run of big payloads costs
/// more than it saves (issue #17: 1 MiB echo trips, ~40 µs each, fell from 5.5–7.1 to
/// 4.0–4.7 GB/s under Fork and from 36 to 27 GB/s under threads in runs of eight). A worker
/// is timed over a window of results for this ([`crate::supervisor`]'s slots), not one.
pub(crate) const MICRO_CHUNK: Duration = Duration::from_micros(10);

/// Chunks cut as one *run* while the workers' chunks are micro ([`Policy::run`]). Eight: the
/// trip of a one-task chunk costs ~0.9 µs, running a task of `x * x` 0.01 µs (issue #17,
/// `round_trip_profile`, two runs in hand: runs of 4, 6 and 8 gave 0.28–0.34, 0.19–0.21 and
/// 0.16–0.17 µs a task).
pub(crate) const RUN_CHUNKS: u64 = 8;

/// Chunks a worker may hold while its chunks are micro: two runs, so that it runs one while
/// the other's results travel back and the next run travels out.
pub(crate) const RUN_DEPTH: usize = 2 * RUN_CHUNKS as usize;

/// Tasks per worker the default `max_tasks_active` allows at least, so that one-task chunks
/// can fill a pipeline ([`PIPELINE_DEPTH`] in hand and one staged).
const PIPELINE_TASKS: usize = 2 * PIPELINE_DEPTH;

impl Policy {
    /// MPIRE's defaults: `64 × n_jobs` splits when the length is known, else chunks of 1;
    /// `max_tasks_active` of `n_jobs × chunk size × 2` (at least `n_jobs × 16`, for pipelining).
    /// Chunks adapt (see the module docs) unless `chunk_size` is given.
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
            guided_len: len.filter(|_| chunk_size.is_none()).map(|l| l as u64),
            n_jobs: n_jobs.max(1) as u64,
        })
    }

    /// The most tasks the next chunk may have, after `taken` tasks were cut, when chunks adapt
    /// and the cap is below the MPIRE size (the call is then in its tail); `mean_task` is the
    /// call's mean task time so far. `None`: chunks as cut by `spec`.
    pub(crate) fn tail_cap(&self, taken: u64, mean_task: Option<Duration>) -> Option<u64> {
        let len = self.guided_len?;
        let remaining = len.checked_sub(taken).filter(|&r| r > 0)?;
        let size = self.spec.size().floor() as u64;
        let by_pace = match mean_task {
            Some(mean) if !mean.is_zero() => {
                TAIL_CHUNK_TIME.as_nanos().div_ceil(mean.as_nanos()) as u64
            }
            _ => u64::MAX,
        };
        let floor = by_pace.min(size / TAIL_SHRINK).max(1);
        let guided = remaining.div_ceil(GUIDE_SHARE * self.n_jobs).max(floor);
        (guided < size).then_some(guided)
    }

    /// Whether the call is in its tail after `taken` tasks were cut: chunks shrink
    /// ([`Policy::tail_cap`]) or all the tasks announced are cut. (A call whose input ran out
    /// is in its tail too; the caller knows that.) `tail_cap` is [`Policy::tail_cap`] for
    /// `taken`, which the caller has worked out already.
    pub(crate) fn in_tail(&self, taken: u64, tail_cap: Option<u64>) -> bool {
        self.guided_len.is_some_and(|len| taken >= len) || tail_cap.is_some()
    }

    /// How many chunks of the grid the next one is cut from. One, unless the call is out of its
    /// tail, every worker's chunks are micro (`micro`, see [`Pace::Micro`]) and the grid is
    /// not adaptive: then [`RUN_CHUNKS`] of them are cut as one *run*, which travels to its
    /// worker and back as one chunk. A micro chunk's trip costs more than running it, and the
    /// trip is most of what a one-task chunk costs (issue #17: 0.9 µs against 0.16 µs a task
    /// in runs of eight); a worker would hold them in its pipeline anyway, and
    /// [`Policy::hand_depth`] counts a run as the chunks it is made of. What a run changes: its
    /// results come back together, so a task of it that turns slow holds back those of the
    /// tasks before it in the run, as it holds back those queued behind it; and a worker lost
    /// while running it runs its finished tasks again, as for any chunk of several tasks.
    /// Adaptive chunks (no `chunk_size`, a known length) get no runs: they are already cut
    /// to a 64th of each worker's share, and their number is what balances the work.
    pub(crate) fn run(&self, micro: bool, tail: bool) -> u64 {
        if micro && !tail && self.guided_len.is_none() {
            RUN_CHUNKS
        } else {
            1
        }
    }

    /// How many chunks of the grid `len` tasks are: what a chunk counts for in a worker's
    /// hand ([`Policy::hand_depth`]), at least one.
    pub(crate) fn units(&self, len: u64) -> u32 {
        ((len as f64 / self.spec.size()).round() as u32).max(1)
    }

    /// Chunks a worker may hold at once, counted in chunks of the grid (a run counts for each
    /// of its chunks, see [`Policy::run`]). One, so that a chunk never waits behind a slow one
    /// while another worker could run it; two while its chunks are quick and the call is not
    /// in its tail. Between two chunks a worker waits for its result to travel back and the
    /// next chunk to travel out, a gap that matters next to a chunk of a few milliseconds and
    /// not next to one of a second; and a chunk held behind a quick one waits little. In the
    /// tail (the input all pulled, or chunks shrinking, see [`Policy::tail_cap`]), the last
    /// chunks go to idle workers only: a chunk queued then could wait behind a slow one while
    /// the other workers have nothing left to do. While its chunks are tiny (their trip costs
    /// more than running them) and the call is not in its tail, it holds [`PIPELINE_DEPTH`]:
    /// then the trips overlap; while they are micro, two runs ([`RUN_DEPTH`]).
    pub(crate) fn hand_depth(pace: Pace, tail: bool) -> usize {
        match (pace, tail) {
            (_, true) | (Pace::Slow, _) => 1,
            (Pace::Quick, false) => 2,
            (Pace::Tiny, false) => PIPELINE_DEPTH,
            (Pace::Micro, false) => RUN_DEPTH,
        }
    }
}

/// How long a worker's last chunk took (a run's: each of its chunks): under [`MICRO_CHUNK`],
/// under [`TINY_CHUNK`], under [`QUICK_CHUNK`], or more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Slower than [`QUICK_CHUNK`], or not known yet.
    #[default]
    Slow,
    /// Under [`QUICK_CHUNK`].
    Quick,
    /// Under [`TINY_CHUNK`].
    Tiny,
    /// Under [`MICRO_CHUNK`].
    Micro,
}

impl Pace {
    /// The pace of a chunk that took `took`.
    pub(crate) fn of(took: Duration) -> Self {
        if took < MICRO_CHUNK {
            Pace::Micro
        } else if took < TINY_CHUNK {
            Pace::Tiny
        } else if took < QUICK_CHUNK {
            Pace::Quick
        } else {
            Pace::Slow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(len: usize, chunk_size: Option<usize>) -> Policy {
        Policy::new(2, Some(len), chunk_size, Some(8), None).unwrap()
    }

    #[test]
    fn chunks_shrink_with_the_tasks_left() {
        let p = policy(400, None);
        // 8 splits of 50; the cap bites below 50 tasks: 4 shares of what is left.
        assert_eq!(p.tail_cap(0, None), None);
        assert_eq!(p.tail_cap(200, None), None);
        assert_eq!(p.tail_cap(300, None), Some(25));
        assert_eq!(p.tail_cap(390, None), Some(6), "not below 50 / 8");
        let in_tail = |taken| p.in_tail(taken, p.tail_cap(taken, None));
        assert!(!in_tail(200));
        assert!(in_tail(300) && in_tail(400));
        assert_eq!(p.tail_cap(400, None), None, "nothing left to cap");
    }

    #[test]
    fn tiny_tasks_keep_bigger_chunks_and_a_given_size_stays() {
        let p = policy(400, None);
        // Tasks of a millisecond: down to one.
        let pace = Some(Duration::from_millis(1));
        assert_eq!(p.tail_cap(390, pace), Some(3));
        assert_eq!(p.tail_cap(399, pace), Some(1));
        // Tasks of a nanosecond: no smaller than 50 / 8.
        assert_eq!(p.tail_cap(399, Some(Duration::from_nanos(1))), Some(6));
        let given = policy(400, Some(50));
        assert_eq!(given.tail_cap(399, None), None);
        assert!(!given.in_tail(399, given.tail_cap(399, None)));
        let unknown = Policy::new(2, None, None, None, None).unwrap();
        assert_eq!(unknown.tail_cap(10, None), None);
    }

    #[test]
    fn a_run_is_cut_on_the_grid() {
        // Chunks of 2.5 end at 3, 5, 8, 10, 13, 15: a run of two is 0..5, then 5..8 alone,
        // then 8..13.
        let mut c = Chunks::new(0..20u32, ChunkSpec::Size(2.5), None);
        let cuts: Vec<(u64, usize)> = [2, 1, 2]
            .into_iter()
            .map(|run| {
                let (first, v) = c.next_capped(u64::MAX, run).unwrap();
                (first, v.len())
            })
            .collect();
        assert_eq!(cuts, vec![(0, 5), (5, 3), (8, 5)]);
        let p = policy(400, Some(3));
        assert_eq!(p.units(24), 8);
        assert_eq!(p.units(1), 1, "a chunk cut short still counts");
        assert_eq!(p.run(true, false), RUN_CHUNKS);
        assert_eq!(p.run(true, true), 1, "the tail");
        assert_eq!(p.run(false, false), 1);
        assert_eq!(policy(400, None).run(true, false), 1, "adaptive chunks");
    }

    #[test]
    fn a_capped_chunk_moves_the_grid() {
        let mut c = Chunks::new(0..20u32, ChunkSpec::Size(2.5), None);
        let lens: Vec<usize> = [u64::MAX, 1, u64::MAX, u64::MAX]
            .into_iter()
            .map(|cap| c.next_capped(cap, 1).unwrap().1.len())
            .collect();
        // 3, then 1 (capped), then the grid of 2.5 starts again at task 4: 3, 2.
        assert_eq!(lens, vec![3, 1, 3, 2]);
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

/// Where chunk boundaries fall: the running count of tasks cut so far and the next cut. The
/// cuts fall on a grid of `size` from `origin`; a chunk cut short by a cap moves the grid to
/// its end, so the chunks after it are not longer to catch up.
#[derive(Debug, Clone, Copy)]
struct Cuts {
    size: f64,
    k: u64,
    origin: u64,
    next_index: u64,
    limit: Option<u64>,
}

impl Cuts {
    fn new(spec: ChunkSpec, limit: Option<u64>) -> Self {
        Cuts {
            size: spec.size(),
            k: 0,
            origin: 0,
            next_index: 0,
            limit,
        }
    }

    /// How many tasks the next `run` chunks on the grid have together (before any cap).
    fn grid_len(&self, run: u64) -> u64 {
        let end = self.origin + chunk_end(self.k + run.max(1) - 1, self.size);
        let end = self.limit.map_or(end, |l| end.min(l));
        end.saturating_sub(self.next_index)
    }

    /// How many tasks the next `run` chunks cut as one will have at most, with at most `cap`
    /// (at least 1).
    fn next_len(&self, cap: u64, run: u64) -> u64 {
        self.grid_len(run).min(cap.max(1))
    }

    /// Records `run` chunks cut as one, of `len` tasks; returns the index of its first task.
    fn advance(&mut self, len: u64, run: u64) -> u64 {
        let first = self.next_index;
        let short = len < self.grid_len(run);
        self.next_index += len;
        self.k += run.max(1);
        if short {
            (self.origin, self.k) = (self.next_index, 0);
        }
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
        self.cuts.next_len(u64::MAX, 1)
    }

    /// The next `run` chunks as one, of at most `cap` tasks.
    fn next_capped(&mut self, cap: u64, run: u64) -> Option<(u64, Vec<I::Item>)> {
        let want = self.cuts.next_len(cap, run) as usize;
        if want == 0 {
            return None;
        }
        let chunk: Vec<I::Item> = self.inner.by_ref().take(want).collect();
        if chunk.is_empty() {
            return None;
        }
        Some((self.cuts.advance(chunk.len() as u64, run), chunk))
    }
}

impl<I: Iterator> Iterator for Chunks<I> {
    type Item = (u64, Vec<I::Item>);

    fn next(&mut self) -> Option<Self::Item> {
        self.next_capped(u64::MAX, 1)
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
/// one per task, so pulling a chunk out of a range or a vector stays a tight loop. `cap`: the
/// most tasks the chunk may have ([`Policy::tail_cap`]; `u64::MAX` for none). `run`: how many
/// chunks of the grid are cut as one ([`Policy::run`]; 1 for a chunk alone).
pub(crate) trait ChunkSource<T> {
    /// See [`Chunks::next_len`].
    fn next_len(&self, cap: u64, run: u64) -> u64;
    /// The next chunk: `(index of its first task, tasks)`.
    fn next_chunk(&mut self, cap: u64, run: u64) -> Option<(u64, ChunkInputs<T>)>;
    /// See [`Chunks::taken`].
    fn taken(&self) -> u64;
}

impl<I: Iterator> ChunkSource<I::Item> for Chunks<I> {
    fn next_len(&self, cap: u64, run: u64) -> u64 {
        self.cuts.next_len(cap, run)
    }

    fn next_chunk(&mut self, cap: u64, run: u64) -> Option<(u64, ChunkInputs<I::Item>)> {
        self.next_capped(cap, run)
            .map(|(first, v)| (first, ChunkInputs::Vec(v)))
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
    fn next_len(&self, cap: u64, run: u64) -> u64 {
        self.cuts.next_len(cap, run)
    }

    fn next_chunk(&mut self, cap: u64, run: u64) -> Option<(u64, ChunkInputs<T>)> {
        let len = self.cuts.next_len(cap, run);
        if len == 0 {
            return None;
        }
        let first = self.cuts.advance(len, run);
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
