//! The [`ProgressSink`] that turns one call's events into queued reports.

use std::sync::Arc;

use pool_core::{CallInfo, Outcome, ProgressSink, Status, WorkerTimings};

use super::{FINISH_FLUSH, Shared};
use crate::protocol::{Event, WorkerSummary};

/// Task-failure messages sent per call; later ones are counted only by the status.
const MAX_FAILURES_PER_CALL: u32 = 100;

/// The [`ProgressSink`] of one call: turns its events into queued reports.
pub(crate) struct DashboardSink {
    shared: Arc<Shared>,
    call_id: Option<u64>,
    failures_sent: u32,
    /// The last status seen, for a sink dropped before `finish`.
    last: Option<Status>,
}

impl DashboardSink {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        DashboardSink {
            shared,
            call_id: None,
            failures_sent: 0,
            last: None,
        }
    }
}

impl ProgressSink for DashboardSink {
    fn start(&mut self, info: &CallInfo) {
        self.call_id = Some(info.call_id);
        self.shared.push(Event::Start { info: info.clone() }, true);
    }

    fn update(&mut self, status: &Status) {
        if let Some(call_id) = self.call_id {
            self.last = Some(status.clone());
            let status = status.clone();
            self.shared.push(Event::Update { call_id, status }, false);
        }
    }

    fn task_failed(&mut self, message: &str) {
        if let Some(call_id) = self.call_id
            && self.failures_sent < MAX_FAILURES_PER_CALL
        {
            self.failures_sent += 1;
            let message = message.to_string();
            self.shared
                .push(Event::TaskFailed { call_id, message }, false);
        }
    }

    fn timings(&mut self, timings: &[WorkerTimings]) {
        if let Some(call_id) = self.call_id {
            let workers = timings.iter().map(WorkerSummary::from).collect();
            self.shared.push(Event::Timings { call_id, workers }, false);
        }
    }

    fn finish(&mut self, status: &Status, outcome: &Outcome) {
        if let Some(call_id) = self.call_id.take() {
            let (status, outcome) = (status.clone(), outcome.clone());
            self.shared.push(
                Event::Finish {
                    call_id,
                    status,
                    outcome,
                },
                true,
            );
            self.shared.flush(FINISH_FLUSH);
        }
    }
}

impl Drop for DashboardSink {
    /// A sink dropped before `finish` (the driving thread unwound): the call is shown as
    /// interrupted rather than running forever. Nothing waits here.
    fn drop(&mut self) {
        if let Some(call_id) = self.call_id.take() {
            let mut status = self.last.take().unwrap_or(Status {
                total: None,
                submitted: 0,
                running: 0,
                done: 0,
                failed: 0,
                elapsed: std::time::Duration::ZERO,
                rate: 0.0,
                eta: None,
                active: false,
            });
            status.active = false;
            status.running = 0;
            let outcome = Outcome::Interrupted;
            self.shared.push(
                Event::Finish {
                    call_id,
                    status,
                    outcome,
                },
                true,
            );
        }
    }
}
