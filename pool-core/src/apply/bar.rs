//! The progress bar of a run of apply tasks.
//!
//! A run of apply tasks is what the user submits between two other uses of the pool: it
//! begins with the first `apply_async` and ends when the pool is joined, terminated or
//! dropped, or a map call starts. Its counts and clock go on for the whole run. The pool may
//! be idle inside a run: then the bar *pauses*, its line drawn as finished (the user's own
//! output, printed once the results are in, comes below it, not under a live bar) and its
//! clock stopped at the latest result; a task submitted later draws a new line that counts
//! on from there. A run submitted faster than it is done therefore has one line, and the
//! last line of any run counts all of it.

use std::time::Instant;

use super::TICK;
use crate::progress::{CallInfo, Outcome, ProgressSink, StatusHandle};

/// The progress bar of a run of apply tasks: its total grows as tasks are submitted.
pub(super) struct Bar {
    /// The line being drawn; `None` while paused (the last line is finished).
    sink: Option<Box<dyn ProgressSink>>,
    status: StatusHandle,
    submitted: u64,
    done: u64,
    failed: u64,
    last: Instant,
}

impl Bar {
    /// The bar of a new run, drawing with `sink`.
    pub(super) fn begin(
        mut sink: Box<dyn ProgressSink>,
        status: StatusHandle,
        info: &CallInfo,
    ) -> Self {
        status.begin(None);
        sink.start(info);
        Bar {
            sink: Some(sink),
            status,
            submitted: 0,
            done: 0,
            failed: 0,
            last: Instant::now(),
        }
    }

    pub(super) fn paused(&self) -> bool {
        self.sink.is_none()
    }

    /// Draws a new line with `sink`, counting on from the pause.
    pub(super) fn resume(&mut self, mut sink: Box<dyn ProgressSink>, info: &CallInfo) {
        self.status.resume();
        sink.start(info);
        self.sink = Some(sink);
        self.update(true);
    }

    pub(super) fn submitted(&mut self) {
        self.submitted += 1;
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
        if let Some(sink) = self.sink.as_mut()
            && (force || self.last.elapsed() >= TICK * 2)
        {
            self.last = Instant::now();
            sink.update(&self.status.snapshot());
        }
    }

    /// Every submitted task is done: finishes the line and stops the clock.
    pub(super) fn pause(&mut self) {
        self.end_line(&Outcome::Done);
    }

    /// Ends the run.
    pub(super) fn finish(mut self, outcome: &Outcome) {
        self.end_line(outcome);
    }

    fn end_line(&mut self, outcome: &Outcome) {
        self.record();
        if let Some(mut sink) = self.sink.take() {
            self.status.end();
            sink.finish(&self.status.snapshot(), outcome);
        }
    }
}
