//! One worker slot as the supervisor sees it: alive or not, its generation, what it has in
//! hand, and how quick its chunks are (which lets it hold more than one; see
//! [`crate::chunking::Policy::hand_depth`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::chunking::{MICRO_CHUNK, Pace, Policy, RUN_DEPTH};

/// A chunk a worker has in hand (*sent*, or *running* at the front of the hand).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlight {
    pub(crate) call: u64,
    pub(crate) first: u64,
    pub(crate) len: u32,
    /// How many chunks of the call's grid it is: more than one for a run
    /// ([`crate::chunking::Policy::run`]).
    pub(crate) units: u32,
    /// When it was sent to the worker.
    pub(crate) sent: Instant,
    /// Whether it reached the worker: false for a chunk its back end gave back (the worker
    /// was already gone), which the worker cannot have begun.
    pub(crate) reached: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub(crate) alive: bool,
    /// Bumped at each start of a worker here; events of older workers are dropped.
    pub(crate) generation: u64,
    /// Asked to run `worker_exit` and stop.
    pub(crate) exiting: bool,
    pub(crate) assigned_in_life: u64,
    /// The lifespan this worker was started with (it stops itself there).
    pub(crate) lifespan: Option<u64>,
    pub(crate) inflight: VecDeque<InFlight>,
    /// How long this worker's last chunk took.
    pace: Pace,
    /// When its last chunk came back.
    last_done: Option<Instant>,
    /// The window its chunks are timed over for [`Pace::Micro`]: since when, and how many
    /// chunks of the grid came back since.
    window: Option<(Instant, u32)>,
    /// Whether its chunks came back quicker than [`crate::chunking::MICRO_CHUNK`] each over the
    /// last window.
    micro_over_window: bool,
}

/// Chunks of the grid a worker's pace is timed over before it counts as micro (two runs).
const MICRO_WINDOW: u32 = RUN_DEPTH as u32;

impl Slot {
    /// Whether it can take a chunk of `units` chunks of the grid now (`tail`: the call is in
    /// its tail, see [`Policy::hand_depth`], which counts such units). A run bigger than the
    /// depth goes to an empty hand.
    pub(crate) fn can_take(&self, tail: bool, units: u32) -> bool {
        let held = self.held();
        self.alive
            && !self.exiting
            && (held == 0 || (held + units) as usize <= Policy::hand_depth(self.pace, tail))
            && self.lifespan.is_none_or(|l| self.assigned_in_life < l)
    }

    /// Chunks of the grid in hand (a run counts for each of its chunks).
    pub(crate) fn held(&self) -> u32 {
        self.inflight.iter().map(|c| c.units).sum()
    }

    /// Whether its chunks are micro (it may take runs, [`crate::chunking::Policy::run`]).
    pub(crate) fn micro(&self) -> bool {
        self.pace == Pace::Micro
    }

    /// Notes that a chunk of `units` chunks of the grid, sent at `sent`, came back now;
    /// returns how long it took.
    pub(crate) fn chunk_done(&mut self, sent: Instant, now: Instant, units: u32) -> Duration {
        // With two in hand, a chunk began when the one before it ended.
        let began = self.last_done.map_or(sent, |d| d.max(sent));
        let took = now.duration_since(began);
        // The pace is a grid chunk's: a run of eight micro ones is no slower than each.
        self.pace = Pace::of(took / units.max(1));
        // Micro takes more than one chunk's word: results taken together share one reading
        // of the clock, so all but the first seem to have taken no time (1 MiB echoes, ~40 µs
        // each, looked micro). The time between results over a window says what each took.
        let (since, n) = self.window.get_or_insert((began, 0));
        *n += units;
        if *n >= MICRO_WINDOW {
            self.micro_over_window = now.duration_since(*since) / *n < MICRO_CHUNK;
            self.window = Some((now, 0));
        }
        if self.pace == Pace::Micro && !self.micro_over_window {
            self.pace = Pace::Tiny;
        }
        self.last_done = Some(now);
        took
    }

    /// Forgets how quick its chunks were (a new call's may be slower).
    pub(crate) fn forget_pace(&mut self) {
        (self.pace, self.last_done) = (Pace::Slow, None);
        (self.window, self.micro_over_window) = (None, false);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::chunking::{PIPELINE_DEPTH, RUN_DEPTH};

    fn chunk() -> InFlight {
        InFlight {
            call: 1,
            first: 0,
            len: 1,
            units: 1,
            sent: Instant::now(),
            reached: true,
        }
    }

    /// How many chunks a live worker of `pace` takes before it is full.
    fn takes(pace: Pace, tail: bool) -> usize {
        let mut s = Slot {
            alive: true,
            pace,
            ..Slot::default()
        };
        while s.can_take(tail, 1) {
            s.inflight.push_back(chunk());
        }
        s.inflight.len()
    }

    #[test]
    fn a_worker_holds_more_chunks_the_quicker_they_are_and_one_in_the_tail() {
        assert_eq!(Pace::of(Duration::from_micros(2)), Pace::Micro);
        assert_eq!(Pace::of(Duration::from_micros(20)), Pace::Tiny);
        assert_eq!(Pace::of(Duration::from_micros(500)), Pace::Quick);
        assert_eq!(Pace::of(Duration::from_millis(50)), Pace::Slow);
        assert_eq!(takes(Pace::Micro, false), RUN_DEPTH);
        assert_eq!(takes(Pace::Tiny, false), PIPELINE_DEPTH);
        assert_eq!(takes(Pace::Quick, false), 2);
        assert_eq!(takes(Pace::Slow, false), 1);
        for pace in [Pace::Micro, Pace::Tiny, Pace::Quick, Pace::Slow] {
            assert_eq!(takes(pace, true), 1, "{pace:?}, in the tail");
        }
    }

    #[test]
    fn a_run_counts_for_its_chunks_and_goes_alone_to_a_slow_hand() {
        let run = crate::chunking::RUN_CHUNKS as u32;
        let mut s = Slot {
            alive: true,
            pace: Pace::Micro,
            ..Slot::default()
        };
        let mut n = 0;
        while s.can_take(false, run) {
            s.inflight.push_back(InFlight {
                units: run,
                ..chunk()
            });
            n += 1;
        }
        assert_eq!(n, 2, "two runs");
        assert_eq!(s.held() as usize, RUN_DEPTH);
        // Eight chunks of a millisecond back together: each took 1 ms, not 8.
        let t0 = Instant::now();
        s.chunk_done(t0, t0 + Duration::from_millis(8), 8);
        assert_eq!(s.pace, Pace::Quick);
        s.inflight.clear();
        assert!(
            s.can_take(true, run),
            "an empty hand takes a run whatever its depth"
        );
        s.inflight.push_back(chunk());
        assert!(!s.can_take(false, run));
        s.pace = Pace::Tiny;
        assert!(s.can_take(false, PIPELINE_DEPTH as u32 - 1));
        assert!(!s.can_take(false, PIPELINE_DEPTH as u32));
    }

    #[test]
    fn results_taken_together_do_not_make_chunks_micro() {
        let mut s = Slot {
            alive: true,
            ..Slot::default()
        };
        let t0 = Instant::now();
        let at = |us: u64| t0 + Duration::from_micros(us);
        // Sixteen one-task chunks of 40 µs, their results taken eight at a time: in each
        // batch, all but the first seem to have taken no time.
        for i in 0..16 {
            s.chunk_done(t0, if i < 8 { at(320) } else { at(640) }, 1);
        }
        assert_eq!(s.pace, Pace::Tiny);
        assert!(!s.micro());
        // Then sixteen of 1 µs: micro once the window is full.
        for i in 1..=16 {
            s.chunk_done(at(640), at(640 + i), 1);
            assert_eq!(s.micro(), i == 16, "after {i}");
        }
    }

    #[test]
    fn a_slow_chunk_ends_the_pipeline() {
        let mut s = Slot {
            alive: true,
            pace: Pace::Tiny,
            ..Slot::default()
        };
        let long_ago = Instant::now()
            .checked_sub(Duration::from_millis(50))
            .expect("the clock runs long enough");
        s.chunk_done(long_ago, Instant::now(), 1);
        assert_eq!(s.pace, Pace::Slow);
        s.pace = Pace::Tiny;
        s.forget_pace();
        assert_eq!(s.pace, Pace::Slow, "a new call starts cautious");
    }
}
