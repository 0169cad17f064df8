//! The `Policy` of one call: how its input is cut (chunk size, the adaptive tail, runs of
//! micro chunks), how many tasks may be pulled ahead, how far results may run ahead of the
//! ordered output, and how many chunks a worker holds; and a worker's [`Pace`], which decides
//! the last two. The scheduler's protocol, in `call`, says where each applies.
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
//! ([`Policy::run`]).

use std::time::Duration;

use super::ChunkSpec;
use crate::error::PoolError;

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
    fn runs_are_cut_out_of_the_tail_of_a_given_grid_and_count_for_their_chunks() {
        let p = policy(400, Some(3));
        assert_eq!(p.units(24), 8);
        assert_eq!(p.units(1), 1, "a chunk cut short still counts");
        assert_eq!(p.run(true, false), RUN_CHUNKS);
        assert_eq!(p.run(true, true), 1, "the tail");
        assert_eq!(p.run(false, false), 1);
        assert_eq!(policy(400, None).run(true, false), 1, "adaptive chunks");
    }
}
