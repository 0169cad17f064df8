//! The progress bar of a run of apply tasks.
//!
//! A run of apply tasks is what the user submits between two other uses of the pool: it
//! begins with the first `apply_async` and ends when the pool is joined, terminated or
//! dropped, or a map call starts. The pool may be idle inside a run (each task done before
//! the next is submitted): the bar then *pauses* — drawn with its counts, its clock stopped at
//! the last result — and the next task resumes it, so a run has one bar however its tasks
//! are paced.

use std::time::Instant;

use super::TICK;
use crate::progress::{Outcome, ProgressSink, StatusHandle};

/// The progress bar of a run of apply tasks: its total grows as tasks are submitted.
pub(super) struct Bar {
    pub(super) sink: Box<dyn ProgressSink>,
    pub(super) status: StatusHandle,
    pub(super) submitted: u64,
    pub(super) done: u64,
    pub(super) failed: u64,
    pub(super) last: Instant,
    /// No task is outstanding: the bar's clock is stopped.
    pub(super) paused: bool,
}

impl Bar {
    pub(super) fn new(sink: Box<dyn ProgressSink>, status: StatusHandle) -> Self {
        Bar {
            sink,
            status,
            submitted: 0,
            done: 0,
            failed: 0,
            last: Instant::now(),
            paused: false,
        }
    }

    pub(super) fn submitted(&mut self) {
        self.submitted += 1;
        if self.paused {
            self.paused = false;
            self.status.resume();
        }
    }

    pub(super) fn count(&mut self, ok: bool) {
        self.done += 1;
        self.failed += u64::from(!ok);
    }

    /// Puts the counts in the status (which dashboards read).
    fn record(&self) {
        self.status.set_total(self.submitted);
        self.status.set(self.submitted, 0, self.done, self.failed);
    }

    pub(super) fn update(&mut self, force: bool) {
        self.record();
        if force || self.last.elapsed() >= TICK * 2 {
            self.last = Instant::now();
            self.sink.update(&self.status.snapshot());
        }
    }

    /// Draws the counts and stops the clock: every submitted task is done. The clock reads
    /// from the run's first task to its latest result, so it jumps over the pause when the
    /// next task comes.
    pub(super) fn pause(&mut self) {
        if !self.paused {
            self.record();
            self.status.end();
            self.last = Instant::now();
            self.sink.update(&self.status.snapshot());
            self.paused = true;
        }
    }

    pub(super) fn finish(self, outcome: &Outcome) {
        self.record();
        if !self.paused {
            self.status.end();
        }
        let mut sink = self.sink;
        sink.finish(&self.status.snapshot(), outcome);
    }
}
