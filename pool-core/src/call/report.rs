//! What a call tells the world: progress and status at each tick (where timeouts and Ctrl-C
//! are looked for too), and how it ended (done, failed, interrupted).

use std::time::Instant;

use super::Call;
use crate::error::{Cause, PoolError};
use crate::job::{Input, Payload};
use crate::progress::Outcome;

impl<Sh, St, T: Input, R: Payload> Call<'_, Sh, St, T, R> {
    pub(super) fn tick(&mut self) {
        self.last_tick = Instant::now();
        if self.sup.backend.interrupted() {
            return self.fail(PoolError::Interrupted);
        }
        for (w, is_hook, limit) in self
            .sup
            .overdue(self.cfg.init_timeout, self.cfg.task_timeout)
        {
            let what = if is_hook { "worker_init" } else { "the task" };
            let d = self.sup.lose(
                w,
                Cause::Timeout(limit),
                format!("{what} ran longer than {limit:?}"),
            );
            self.deliver(d);
        }
        self.report();
    }

    pub(super) fn finish(&mut self) {
        self.finished = true;
        self.sup.backend.end_call();
        crate::call_end::run();
        let mut outcome = Outcome::Done;
        if !self.cfg.keep_alive
            && let Err(e) = self.sup.stop(self.cfg.exit_timeout)
        {
            outcome = Outcome::Failed(e.to_string());
            self.reorder
                .ready
                .push_back(super::Batch::Items(vec![Err(e)].into_iter()));
        }
        self.report();
        self.status.end();
        let timings = self.sup.end_call_timings();
        if let Some(mut p) = self.progress.take() {
            if let Some(t) = timings {
                p.timings(&t);
            }
            p.finish(&self.status.snapshot(), &outcome);
        }
    }

    /// Stops the call at `e`: workers are terminated, buffered results dropped.
    pub(super) fn fail(&mut self, e: PoolError) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.sup.backend.end_call();
        self.sup.terminate();
        crate::call_end::run();
        self.reorder.clear();
        self.report();
        self.status.end();
        self.sup.call_timings = None;
        if let Some(mut p) = self.progress.take() {
            let outcome = match e {
                PoolError::Interrupted => Outcome::Interrupted,
                _ => {
                    let message = with_backtrace(&e);
                    p.task_failed(&message);
                    Outcome::Failed(message)
                }
            };
            p.finish(&self.status.snapshot(), &outcome);
        }
        self.reorder
            .ready
            .push_back(super::Batch::Items(vec![Err(e)].into_iter()));
    }
}

impl<Sh, St, T, R> Call<'_, Sh, St, T, R> {
    fn report(&mut self) {
        let done_now = self.sup.tasks_done();
        let submitted = self.chunks.taken();
        let done = done_now
            .saturating_sub(self.base_done)
            .clamp(self.returned, submitted.max(self.returned));
        let running = (0..self.sup.n_jobs())
            .filter(|&w| {
                self.sup
                    .counters(w)
                    .current()
                    .is_some_and(|(t, _)| t < u64::MAX - 1)
            })
            .count() as u64;
        self.status.set(
            submitted,
            running.min(submitted - done.min(submitted)),
            done,
            self.failed,
        );
        if let Some(p) = self.progress.as_mut() {
            p.update(&self.status.snapshot());
        }
    }

    /// The call is abandoned before its end (iterator dropped): stop its work.
    pub(crate) fn abandon_if_running(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.sup.backend.end_call();
        self.sup.terminate();
        crate::call_end::run();
        self.report();
        self.status.end();
        self.sup.call_timings = None;
        if let Some(mut p) = self.progress.take() {
            p.finish(&self.status.snapshot(), &Outcome::Interrupted);
        }
    }
}

/// The error for a progress sink: a worker's failure with the backtrace taken where it happened
/// (`{:#}`); renderers that show one line take the first.
fn with_backtrace(e: &PoolError) -> String {
    match e.failure() {
        Some(f) => format!("{f:#}"),
        None => e.to_string(),
    }
}
