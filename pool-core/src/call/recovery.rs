//! Lost workers and retries: a worker that died, timed out or refused a chunk loses what it
//! held; the task it was running fails (named, with its arguments) or is tried again, and the
//! rest runs again.

use std::time::{Duration, Instant};

use super::{Batch, Call};
use crate::chunking::ChunkInputs;
use crate::error::{Cause, Failure, PoolError};
use crate::job::{Input, Payload, RunSettings};
use crate::supervisor::{Delivery, InFlight};

impl<Sh, St, T: Input, R: Payload> Call<'_, Sh, St, T, R> {
    /// A worker was lost with `chunks` in hand, running task `current`: see the protocol, 3.
    pub(super) fn recover(
        &mut self,
        chunks: Vec<InFlight>,
        current: Option<u64>,
        mut failure: Failure,
    ) {
        let mine: Vec<InFlight> = chunks.into_iter().filter(|c| c.call == self.id).collect();
        if let Some(t) = current {
            failure.args = self.args_of(t);
        }
        if !self.cfg.keep_going() || self.retained.is_none() {
            let failure = self.with_history(failure);
            return self.fail(failure.into());
        }
        for c in mine {
            self.active = self.active.saturating_sub(u64::from(c.len));
            let Some(tasks) = self.retained.as_mut().and_then(|r| r.remove(&c.first)) else {
                continue;
            };
            // Tasks to run again are staged (active again); the failed one is settled here.
            let mut segment: Option<(u64, Vec<T>)> = None;
            for (i, t) in tasks.into_vec().into_iter().enumerate() {
                let idx = c.first + i as u64;
                if Some(idx) == current {
                    if let Some((first, s)) = segment.take() {
                        self.stage_again(first, s);
                    }
                    self.task_lost(idx, t, failure.clone());
                } else {
                    segment.get_or_insert_with(|| (idx, Vec::new())).1.push(t);
                }
            }
            if let Some((first, s)) = segment {
                self.stage_again(first, s);
            }
        }
        if let Err(e) = self.sup.revive() {
            self.fail(e);
        }
    }

    fn stage_again(&mut self, first: u64, tasks: Vec<T>) {
        self.active += tasks.len() as u64;
        self.staged.push_front((first, ChunkInputs::Vec(tasks)));
    }

    /// Task `idx` (input `arg`) failed with its worker: staged again alone while retries
    /// remain for this kind of failure, else its error takes its place.
    fn task_lost(&mut self, idx: u64, arg: T, failure: Failure) {
        let tried = self.history.get(&idx).map_or(0, Vec::len) as u32 + 1;
        if tried <= self.cfg.retries() && self.cfg.retry_on.covers(&failure.cause) {
            self.history.entry(idx).or_default().push(failure.reason());
            return self.stage_again(idx, vec![arg]);
        }
        let failure = self.with_history(failure);
        self.returned += 1;
        self.failed += 1;
        if let Some(p) = self.progress.as_mut() {
            p.task_failed(&format!("{failure:#}"));
        }
        self.reorder
            .put(idx, 1, Batch::Items(vec![Err(failure.into())].into_iter()));
    }

    /// A task's final failure, with the attempts made before it.
    pub(super) fn with_history(&mut self, mut f: Failure) -> Failure {
        if let Some(task) = f.task
            && let Some(mut earlier) = self.history.remove(&task)
        {
            f.attempts += earlier.len() as u32;
            earlier.append(&mut f.earlier);
            f.earlier = earlier;
        }
        f
    }

    /// The settings of a chunk that retries one task: the worker retries its panics only as
    /// many times as attempts remain.
    pub(super) fn retry_settings(&self, first: u64, len: u32) -> Option<RunSettings> {
        let tried = self.history.get(&first).filter(|_| len == 1)?.len() as u32;
        Some(RunSettings {
            retries: self.settings.retries.saturating_sub(tried),
            ..self.settings
        })
    }

    /// The `Debug` form of task `t`'s arguments, from the copies kept of chunks in hand.
    fn args_of(&self, t: u64) -> Option<String> {
        let (first, inputs) = self
            .retained
            .as_ref()?
            .iter()
            .find(|(f, v)| **f <= t && t < **f + v.len() as u64)?;
        let arg = inputs
            .copy()
            .into_vec()
            .into_iter()
            .nth((t - first) as usize)?;
        Some(format!("{arg:?}"))
    }

    /// Worker `worker` refused a chunk (`e`): it has most likely just failed (init panic,
    /// death), and its own report says more than the refusal. Look for it briefly, handling
    /// whatever else arrives meanwhile; without a report, the worker is lost all the same.
    pub(super) fn refused(&mut self, worker: usize, e: PoolError) {
        let deadline = Instant::now() + Duration::from_millis(200);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(ev) = self.sup.next_event(left) else {
                break;
            };
            match self.sup.handle(ev) {
                Ok(Some(d)) => {
                    let ends = match &d {
                        Delivery::HookFailed(_) => true,
                        Delivery::Lost { failure, .. } => failure.worker == worker,
                        Delivery::Chunk { .. } => false,
                    };
                    self.deliver(d);
                    if ends {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => return self.fail(e),
            }
        }
        let d = self.sup.lose(worker, Cause::WorkerDied, e.to_string());
        self.deliver(d);
    }
}
