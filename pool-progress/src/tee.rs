//! [`Tee`]: one call's progress sent to several sinks (the terminal and the dashboard).

use pool_core::{CallInfo, Outcome, ProgressSink, Status, WorkerTimings};

/// Forwards every event to each of its sinks, in order.
pub struct Tee {
    sinks: Vec<Box<dyn ProgressSink>>,
}

impl Tee {
    /// A tee over `sinks`.
    pub fn new(sinks: Vec<Box<dyn ProgressSink>>) -> Self {
        Tee { sinks }
    }
}

impl std::fmt::Debug for Tee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tee")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl ProgressSink for Tee {
    fn start(&mut self, info: &CallInfo) {
        self.sinks.iter_mut().for_each(|s| s.start(info));
    }
    fn update(&mut self, status: &Status) {
        self.sinks.iter_mut().for_each(|s| s.update(status));
    }
    fn task_failed(&mut self, message: &str) {
        self.sinks.iter_mut().for_each(|s| s.task_failed(message));
    }
    fn timings(&mut self, timings: &[WorkerTimings]) {
        self.sinks.iter_mut().for_each(|s| s.timings(timings));
    }
    fn finish(&mut self, status: &Status, outcome: &Outcome) {
        self.sinks
            .iter_mut()
            .for_each(|s| s.finish(status, outcome));
    }
}
