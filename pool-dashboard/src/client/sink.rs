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
    /// `(pool_id, call_id)` once started.
    call: Option<(u64, u64)>,
    failures_sent: u32,
    /// The last status seen, for a sink dropped before `finish`.
    last: Option<Status>,
}

impl DashboardSink {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        DashboardSink {
            shared,
            call: None,
            failures_sent: 0,
            last: None,
        }
    }
}

impl ProgressSink for DashboardSink {
    fn start(&mut self, info: &CallInfo) {
        self.call = Some((info.pool_id, info.call_id));
        self.shared.push(Event::Start { info: info.clone() }, true);
    }

    fn update(&mut self, status: &Status) {
        if let Some((pool_id, call_id)) = self.call {
            self.last = Some(status.clone());
            let status = status.clone();
            self.shared.push(
                Event::Update {
                    pool_id,
                    call_id,
                    status,
                },
                false,
            );
        }
    }

    fn task_failed(&mut self, message: &str) {
        if let Some((pool_id, call_id)) = self.call
            && self.failures_sent < MAX_FAILURES_PER_CALL
        {
            self.failures_sent += 1;
            let message = message.to_string();
            self.shared.push(
                Event::TaskFailed {
                    pool_id,
                    call_id,
                    message,
                },
                false,
            );
        }
    }

    fn timings(&mut self, timings: &[WorkerTimings]) {
        if let Some((pool_id, call_id)) = self.call {
            let workers = timings.iter().map(WorkerSummary::from).collect();
            self.shared.push(
                Event::Timings {
                    pool_id,
                    call_id,
                    workers,
                },
                false,
            );
        }
    }

    fn finish(&mut self, status: &Status, outcome: &Outcome) {
        if let Some((pool_id, call_id)) = self.call.take() {
            let (status, outcome) = (status.clone(), outcome.clone());
            self.shared.push(
                Event::Finish {
                    pool_id,
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
        if let Some((pool_id, call_id)) = self.call.take() {
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
                    pool_id,
                    call_id,
                    status,
                    outcome,
                },
                true,
            );
        }
    }
}
