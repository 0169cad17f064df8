//! The life cycle of the pool's workers: started for a call (restarted when they cannot run
//! its job), revived after a loss or at the end of a lifespan, stopped gracefully (their
//! `worker_exit` runs and its result is kept) or terminated.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Delivery, Supervisor, WorkerSpec};
use crate::backend::{Command, Event, WorkerSetup};
use crate::counters::monotonic_ns;
use crate::error::{Cause, Phase, PoolError};
use crate::job::ErasedJob;
use crate::timing::WorkerTimings;

impl<Sh, St> Supervisor<Sh, St> {
    /// Prepares workers for `call`: tells the back end its job, restarts live workers that
    /// cannot run it (gracefully: their exit functions run), sets the worker settings for
    /// workers started from now on, and starts missing workers.
    /// `fresh` asks for new workers even if some are alive (a map call without keep-alive
    /// after `apply_async` tasks started workers).
    pub(crate) fn ensure_workers(
        &mut self,
        spec: WorkerSpec<Sh, St>,
        call: u64,
        job: &Arc<dyn ErasedJob<Sh, St>>,
        fresh: bool,
    ) -> Result<(), PoolError> {
        let runnable = self.backend.announce_job(call, job)?;
        if !self.any_alive() {
            self.exit_results.clear();
        } else if !runnable || fresh {
            self.stop(None)?;
            self.exit_results.clear();
        }
        self.spec = spec;
        for id in 0..self.slots.len() {
            if !self.slots[id].alive {
                self.start(id)?;
            }
        }
        Ok(())
    }

    fn start(&mut self, id: usize) -> Result<(), PoolError> {
        let slot = &mut self.slots[id];
        slot.generation += 1;
        slot.assigned_in_life = 0;
        slot.lifespan = self.spec.lifespan;
        slot.exiting = false;
        slot.inflight.clear();
        slot.forget_pace();
        let counters = self.backend.counters_for_new_worker(id);
        counters.get().cancel.store(0, Ordering::Relaxed);
        counters.get().current_task.store(0, Ordering::Relaxed);
        let setup = WorkerSetup {
            id,
            generation: slot.generation,
            shared: self.shared.clone(),
            make_state: self.make_state.clone(),
            init: self.spec.init.clone(),
            exit: self.spec.exit.clone(),
            lifespan: self.spec.lifespan,
            insights: self.insights,
            counters,
            cpus: self.cpu_ids.as_ref().map(|c| c[id % c.len()].clone()),
            requested_ns: monotonic_ns(),
        };
        self.backend.start_worker(setup)?;
        self.slots[id].alive = true;
        Ok(())
    }

    /// Whether some slot has no worker.
    pub(crate) fn any_dead(&self) -> bool {
        self.slots.iter().any(|s| !s.alive)
    }

    /// Restarts slots that have no worker (lifespan reached; lost under `keep_going`).
    pub(crate) fn revive(&mut self) -> Result<(), PoolError> {
        for id in 0..self.slots.len() {
            if !self.slots[id].alive {
                self.start(id)?;
            }
        }
        Ok(())
    }

    /// Stops every worker without waiting (errors, interrupts, dropped iterators).
    pub(crate) fn terminate(&mut self) {
        for (w, slot) in self.slots.iter_mut().enumerate() {
            if slot.alive {
                self.backend.counters(w).cancel.store(1, Ordering::Relaxed);
                self.backend.kill(w);
                slot.alive = false;
                slot.inflight.clear();
            }
        }
        self.backend.shutdown(Duration::from_millis(50));
    }

    /// Stops every worker gracefully: `worker_exit` runs and its results are collected.
    /// `exit_timeout` bounds each exit function; `hook_failures` receives exit failures.
    pub(crate) fn stop(&mut self, exit_timeout: Option<Duration>) -> Result<(), PoolError> {
        let mut first_error = None;
        // A worker that refuses `Exit` is already on its way out (lifespan reached): its own
        // `Exited` (with its exit result) or `Died` is still to come. Wait for it, a while.
        let mut refused = Vec::new();
        for w in 0..self.slots.len() {
            if self.slots[w].alive {
                self.slots[w].exiting = true;
                if self.backend.send(w, Command::Exit).is_err() {
                    refused.push(w);
                }
            }
        }
        let patience = std::time::Instant::now() + Duration::from_secs(5);
        while self.any_alive() {
            if std::time::Instant::now() > patience {
                for &w in &refused {
                    self.slots[w].alive = false;
                }
            }
            let ev = self.next_event(Duration::from_millis(20));
            match ev {
                Ok(ev) => match self.handle(ev)? {
                    Some(Delivery::HookFailed(f)) => {
                        first_error.get_or_insert(PoolError::from(f));
                    }
                    Some(Delivery::Lost { failure, .. }) => {
                        first_error.get_or_insert(PoolError::from(failure));
                    }
                    _ => {}
                },
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
            for (w, _, limit) in self.overdue(exit_timeout, None) {
                let d = self.lose(
                    w,
                    Cause::Timeout(limit),
                    format!("worker_exit ran longer than {limit:?}"),
                );
                if let Delivery::Lost { mut failure, .. } = d {
                    failure.phase = Phase::Exit;
                    first_error.get_or_insert(PoolError::from(failure));
                }
            }
        }
        self.backend.shutdown(Duration::from_secs(5));
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Asks every worker for the timings recorded so far (insights of a kept-alive pool).
    /// Starts recording a call's timings apart from the pool's: first brings in what live
    /// workers recorded before (so that it counts for the pool, not for this call). Call it
    /// when no call runs and no apply task is outstanding.
    pub(crate) fn begin_call_timings(&mut self) {
        if !self.insights {
            return;
        }
        self.flush_timings();
        self.call_timings = Some((0..self.slots.len()).map(WorkerTimings::new).collect());
    }

    /// The call's timings, once every task of it has been delivered: brings in what live
    /// (kept-alive) workers recorded since [`Supervisor::begin_call_timings`].
    pub(crate) fn end_call_timings(&mut self) -> Option<Vec<WorkerTimings>> {
        self.call_timings.as_ref()?;
        self.flush_timings();
        self.call_timings.take()
    }

    /// Brings in the timings that live workers recorded so far (keep-alive pools keep their
    /// workers between calls): asks each for them and waits (at most a second) for the answers.
    /// Call it when no call runs and no apply task is outstanding.
    pub(crate) fn flush_timings(&mut self) {
        if !self.insights {
            return;
        }
        let mut waiting: Vec<usize> = (0..self.slots.len())
            .filter(|&w| self.slots[w].alive && self.backend.send(w, Command::Flush).is_ok())
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while !waiting.is_empty() {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                break;
            };
            let Ok(ev) = self.next_event(left) else {
                break;
            };
            if let Event::Timings { timings, .. } = &ev {
                waiting.retain(|&w| w != timings.worker);
            }
            // Nothing else runs: other events (a worker that died idle) only update the slots.
            let _ = self.handle(ev);
        }
    }
}

impl<Sh, St> Drop for Supervisor<Sh, St> {
    fn drop(&mut self) {
        if self.any_alive() {
            let _ = self.stop(Some(Duration::from_secs(5)));
        }
        self.backend.shutdown(Duration::from_millis(100));
    }
}
