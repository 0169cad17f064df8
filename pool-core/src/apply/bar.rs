//! The progress bar of a run of apply tasks.

use std::time::Instant;

use super::TICK;
use crate::progress::{Outcome, ProgressSink, StatusHandle};

/// The progress bar of a run of apply tasks: its total grows as tasks are submitted; it ends
/// when none is left.
pub(super) struct Bar {
    pub(super) sink: Box<dyn ProgressSink>,
    pub(super) status: StatusHandle,
    pub(super) submitted: u64,
    pub(super) done: u64,
    pub(super) failed: u64,
    pub(super) last: Instant,
}

impl Bar {
    pub(super) fn count(&mut self, ok: bool) {
        self.done += 1;
        self.failed += u64::from(!ok);
    }

    pub(super) fn update(&mut self, force: bool) {
        self.status.set_total(self.submitted);
        self.status.set(self.submitted, 0, self.done, self.failed);
        if force || self.last.elapsed() >= TICK * 2 {
            self.last = Instant::now();
            self.sink.update(&self.status.snapshot());
        }
    }

    pub(super) fn finish(mut self, outcome: &Outcome) {
        self.update(true);
        self.status.end();
        self.sink.finish(&self.status.snapshot(), outcome);
    }
}
