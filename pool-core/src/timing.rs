//! Raw timing of one worker, recorded when insights are enabled: the material `pool-insights`
//! turns into statistics.
//!
//! Each worker keeps its own [`WorkerTimings`] (no lock, no message per task) and hands it to
//! the parent when it stops or when a call ends; the parent merges them per worker slot.

use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Serializer as _;
use serde::{Deserialize, Serialize};

/// How many of the slowest tasks are kept with their arguments.
pub const TOP_TASKS: usize = 5;

/// One of the slowest tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowTask {
    /// How long it ran.
    pub duration: Duration,
    /// Its index in its call's input.
    pub task: u64,
    /// Its arguments, in `Debug` form.
    pub args: String,
}

/// Raw timings of one worker slot over one or more worker lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerTimings {
    /// The worker slot.
    pub worker: usize,
    /// Tasks completed.
    pub n_completed_tasks: u64,
    /// From the pool asking for the worker to the worker being ready to init.
    pub start_up: Duration,
    /// In `worker_init`.
    pub init: Duration,
    /// Waiting for work.
    pub waiting: Duration,
    /// In the task function.
    pub working: Duration,
    /// In `worker_exit`.
    pub exit: Duration,
    /// Moving data: (de)serializing arguments and results, copying them through the transport.
    pub data_transfer: Duration,
    /// The slowest tasks, slowest first.
    pub slowest: Vec<SlowTask>,
    /// Task durations in nanoseconds (hdrhistogram V2 encoding, see [`WorkerTimings::histogram`]).
    pub histogram_v2: Vec<u8>,
    /// Where the worker ran when that is not plain from its slot: for MPI workers, the rank and
    /// host ("MPI rank 2 on host h"), set by the parent.
    pub location: Option<String>,
}

impl WorkerTimings {
    /// Empty timings for a slot.
    pub fn new(worker: usize) -> Self {
        WorkerTimings {
            worker,
            n_completed_tasks: 0,
            start_up: Duration::ZERO,
            init: Duration::ZERO,
            waiting: Duration::ZERO,
            working: Duration::ZERO,
            exit: Duration::ZERO,
            data_transfer: Duration::ZERO,
            slowest: Vec::new(),
            histogram_v2: Vec::new(),
            location: None,
        }
    }

    /// The task-duration histogram (nanoseconds, 3 significant figures).
    pub fn histogram(&self) -> Histogram<u64> {
        if self.histogram_v2.is_empty() {
            return new_histogram();
        }
        hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut &self.histogram_v2[..])
            .unwrap_or_else(|_| new_histogram())
    }

    /// Adds `other` (a later life or a later call of the same slot) into `self`.
    pub fn merge(&mut self, other: &WorkerTimings) {
        if other.location.is_some() {
            self.location.clone_from(&other.location);
        }
        self.n_completed_tasks += other.n_completed_tasks;
        self.start_up += other.start_up;
        self.init += other.init;
        self.waiting += other.waiting;
        self.working += other.working;
        self.exit += other.exit;
        self.data_transfer += other.data_transfer;
        self.slowest.extend(other.slowest.iter().cloned());
        self.slowest.sort_by_key(|s| std::cmp::Reverse(s.duration));
        self.slowest.truncate(TOP_TASKS);
        if !other.histogram_v2.is_empty() {
            let mut h = self.histogram();
            // A decoded histogram does not resize by itself; `other` may hold longer tasks.
            h.auto(true);
            if h.add(other.histogram()).is_err() {
                debug_assert!(false, "an auto-resizing histogram takes any other");
            }
            self.histogram_v2 = encode(&h);
        }
    }
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is valid")
}

pub(crate) fn encode(h: &Histogram<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    // Serializing into a Vec cannot fail for a valid histogram.
    let _ = hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut out);
    out
}

/// What a worker records while it runs (only when insights are on).
///
/// Reading the clock twice costs more than a task of a few nanoseconds, so short tasks are
/// sampled: after a task under [`SHORT_TASK`] the recorder times only every `stride`-th task
/// (doubling up to 1024), and a timed task stands for the untimed ones before it (its duration
/// and histogram count are weighted). Any longer task sets the stride back to 1, so tasks that
/// take microseconds or more are all timed. While sampling, the task loop also runs most of
/// each chunk untimed and timed as a whole ([`Recorder::bulk`]).
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) timings: WorkerTimings,
    hist: Histogram<u64>,
    stride: u32,
    countdown: u32,
    untimed: u32,
}

/// Tasks shorter than this are timed by sampling.
pub(crate) const SHORT_TASK: Duration = Duration::from_micros(2);

impl Recorder {
    pub(crate) fn new(worker: usize) -> Self {
        Recorder {
            timings: WorkerTimings::new(worker),
            hist: new_histogram(),
            stride: 1,
            countdown: 0,
            untimed: 0,
        }
    }

    /// Whether tasks are short enough to be sampled. Then the task loop times the first few
    /// tasks of a chunk one by one and runs the rest as with insights off, timing them as a
    /// whole ([`Recorder::bulk`]): no per-task cost at all. A slow task in that rest counts in
    /// the working time and ends sampling, but its own duration is folded into the mean of
    /// its run.
    pub(crate) fn sampling(&self) -> bool {
        self.stride > 1
    }

    /// Records `n` tasks that ran untimed in `d` in all: they count, their time is working
    /// time, and the histogram gets their mean duration `n` times. A mean above
    /// [`SHORT_TASK`] ends sampling.
    pub(crate) fn bulk(&mut self, n: u64, d: Duration) {
        if n == 0 {
            return;
        }
        let mean = d / n.min(u64::from(u32::MAX)) as u32;
        let t = &mut self.timings;
        t.n_completed_tasks += n;
        t.working += d;
        let ns = mean.as_nanos().min(u128::from(u64::MAX)) as u64;
        if self.hist.record_n(ns, n).is_err() {
            self.hist.saturating_record_n(ns, n);
        }
        if mean >= SHORT_TASK {
            self.stride = 1;
            self.countdown = 0;
        }
    }

    /// Whether the next task is to be timed.
    #[inline]
    pub(crate) fn sample(&mut self) -> bool {
        if self.countdown == 0 {
            return true;
        }
        self.countdown -= 1;
        false
    }

    /// Counts a task that was not timed (see [`Recorder::sample`]).
    #[inline]
    pub(crate) fn untimed_task(&mut self) {
        self.timings.n_completed_tasks += 1;
        self.untimed += 1;
    }

    /// Records a timed task; `args` is asked for only when the task is among the slowest.
    pub(crate) fn task(&mut self, task: u64, d: Duration, args: impl FnOnce() -> String) {
        let weight = self.untimed + 1;
        self.untimed = 0;
        self.stride = if d < SHORT_TASK {
            (self.stride * 2).min(1024)
        } else {
            1
        };
        self.countdown = self.stride - 1;
        let t = &mut self.timings;
        t.n_completed_tasks += 1;
        t.working += d * weight;
        // `record_n` grows the auto-resizing histogram; `saturating_record` would clamp every
        // value to its current (initially tiny) upper bound.
        let ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        if self.hist.record_n(ns, u64::from(weight)).is_err() {
            self.hist.saturating_record_n(ns, u64::from(weight));
        }
        let slow = &mut t.slowest;
        if slow.len() < TOP_TASKS || slow.last().is_some_and(|s| s.duration < d) {
            slow.push(SlowTask {
                duration: d,
                task,
                args: args(),
            });
            slow.sort_by_key(|s| std::cmp::Reverse(s.duration));
            slow.truncate(TOP_TASKS);
        }
    }

    /// Hands over what was recorded and starts afresh.
    pub(crate) fn take(&mut self) -> WorkerTimings {
        let worker = self.timings.worker;
        let mut t = std::mem::replace(&mut self.timings, WorkerTimings::new(worker));
        t.histogram_v2 = encode(&self.hist);
        self.hist.reset();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tasks_are_sampled_but_all_counted() {
        let mut r = Recorder::new(0);
        let mut timed = 0;
        for i in 0..10_000 {
            if r.sample() {
                timed += 1;
                r.task(i, Duration::from_nanos(100), String::new);
            } else {
                r.untimed_task();
            }
        }
        assert!(timed < 200, "most short tasks go untimed: {timed}");
        let t = r.take();
        assert_eq!(t.n_completed_tasks, 10_000);
        let h = t.histogram();
        assert!(
            h.len() > 8_000 && h.len() <= 10_000,
            "weighted count {}",
            h.len()
        );
        // A long task resets the stride: the next one is timed again.
        let mut r = Recorder::new(0);
        for i in 0..100 {
            if r.sample() {
                r.task(i, Duration::from_nanos(100), String::new);
            } else {
                r.untimed_task();
            }
        }
        while !r.sample() {
            r.untimed_task();
        }
        r.task(100, Duration::from_millis(1), String::new);
        assert!(r.sample());
    }

    #[test]
    fn histogram_round_trips_through_its_encoding() {
        let mut r = Recorder::new(0);
        for _ in 0..10 {
            r.task(1, Duration::from_millis(2), String::new);
        }
        let t = r.take();
        let h = t.histogram();
        assert_eq!(h.len(), 10);
        let p50 = h.value_at_quantile(0.5);
        assert!((1_990_000..=2_010_000).contains(&p50), "p50 = {p50} ns");
        let mut merged = WorkerTimings::new(0);
        merged.merge(&t);
        merged.merge(&t);
        assert_eq!(merged.histogram().len(), 20);
        assert!((1_990_000..=2_010_000).contains(&merged.histogram().value_at_quantile(0.99)));
    }
}
