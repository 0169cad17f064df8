//! The worker set of a pool: which slots run a worker, what each has in hand, restarts,
//! graceful stops and exit results. Shared by map calls and `apply_async`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::backend::{Backend, Command, Event, WorkerSetup};
use crate::counters::{CounterBlock, CounterRef, monotonic_ns};
use crate::error::{Cause, Failure, Phase, PoolError};
use crate::hook::{ExitFn, InitFn, StateFn};
use crate::job::{Data, ErasedJob};
use crate::timing::WorkerTimings;
use crate::worker::IN_HOOK;

/// Per-call worker settings (MPIRE's map arguments that shape workers).
pub(crate) struct WorkerSpec<Sh, St> {
    pub(crate) init: Option<InitFn<Sh, St>>,
    pub(crate) exit: Option<ExitFn<Sh, St>>,
    pub(crate) lifespan: Option<u64>,
}

impl<Sh, St> Clone for WorkerSpec<Sh, St> {
    fn clone(&self) -> Self {
        WorkerSpec {
            init: self.init.clone(),
            exit: self.exit.clone(),
            lifespan: self.lifespan,
        }
    }
}

/// A chunk a worker has in hand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlight {
    pub(crate) call: u64,
    pub(crate) first: u64,
    /// When it was sent to the worker.
    sent: Instant,
}

#[derive(Debug, Default)]
struct Slot {
    alive: bool,
    generation: u64,
    exiting: bool,
    assigned_in_life: u64,
    /// The lifespan this worker was started with (it stops itself there).
    lifespan: Option<u64>,
    inflight: VecDeque<InFlight>,
    /// This worker's last chunk took less than [`QUICK_CHUNK`] (see [`Slot::depth`]).
    quick: bool,
    /// When its last chunk came back.
    last_done: Option<Instant>,
}

impl Slot {
    /// Chunks the worker may hold at once. One, so that a chunk never waits behind a slow one
    /// while another worker is idle; two while its chunks are quick. Between two chunks a
    /// worker waits for its result to travel back and the next chunk to travel out, a gap
    /// that matters next to a chunk of a millisecond and not next to one of a second; and a
    /// chunk held behind a quick one waits little.
    fn depth(&self) -> usize {
        if self.quick { 2 } else { 1 }
    }

    /// Notes that a chunk sent at `sent` came back now.
    fn chunk_done(&mut self, sent: Instant) {
        let now = Instant::now();
        // With two in hand, a chunk began when the one before it ended.
        let began = self.last_done.map_or(sent, |d| d.max(sent));
        self.quick = now.duration_since(began) < QUICK_CHUNK;
        self.last_done = Some(now);
    }
}

/// How short a chunk must be for its worker to get the next one before it is done.
const QUICK_CHUNK: Duration = Duration::from_millis(2);

/// What the supervisor hands to the owner of a call.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// A chunk finished.
    Chunk { call: u64, first: u64, output: Data },
    /// A worker was lost with these chunks in hand; `failure` is for the task it was running.
    Lost {
        chunks: Vec<InFlight>,
        current: Option<u64>,
        failure: Failure,
    },
    /// A worker's init or exit failed.
    HookFailed(Failure),
}

pub(crate) struct Supervisor<Sh, St> {
    pub(crate) backend: Box<dyn Backend<Sh, St>>,
    counters: Arc<dyn CounterBlock>,
    slots: Vec<Slot>,
    pub(crate) shared: Arc<Sh>,
    make_state: StateFn<St>,
    cpu_ids: Option<Vec<Vec<usize>>>,
    pub(crate) insights: bool,
    spec: WorkerSpec<Sh, St>,
    pub(crate) exit_results: Vec<Vec<u8>>,
    pub(crate) timings: Vec<WorkerTimings>,
}

impl<Sh, St> Supervisor<Sh, St> {
    pub(crate) fn new(
        backend: Box<dyn Backend<Sh, St>>,
        n_jobs: usize,
        shared: Arc<Sh>,
        make_state: StateFn<St>,
        cpu_ids: Option<Vec<Vec<usize>>>,
        insights: bool,
    ) -> Self {
        Supervisor {
            counters: backend.counters(),
            backend,
            slots: (0..n_jobs).map(|_| Slot::default()).collect(),
            shared,
            make_state,
            cpu_ids,
            insights,
            spec: WorkerSpec {
                init: None,
                exit: None,
                lifespan: None,
            },
            exit_results: Vec::new(),
            timings: (0..n_jobs).map(WorkerTimings::new).collect(),
        }
    }

    pub(crate) fn n_jobs(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn counters(&self) -> &Arc<dyn CounterBlock> {
        &self.counters
    }

    /// A call id unique in this process (the dashboard and job caches key on it).
    /// A new call begins: its chunks may take longer than the last call's, so every worker
    /// starts again with one chunk at a time.
    pub(crate) fn new_call_id(&mut self) -> u64 {
        for s in &mut self.slots {
            (s.quick, s.last_done) = (false, None);
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn any_alive(&self) -> bool {
        self.slots.iter().any(|s| s.alive)
    }

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
        (slot.quick, slot.last_done) = (false, None);
        let counters = CounterRef::new(self.counters.clone(), id);
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

    /// A worker that can take a chunk of `len` tasks now: `Some(w)` forces that worker.
    pub(crate) fn pick(&self, only: Option<usize>) -> Option<usize> {
        let can = |s: &Slot| {
            s.alive
                && !s.exiting
                && s.inflight.len() < s.depth()
                && s.lifespan.is_none_or(|l| s.assigned_in_life < l)
        };
        match only {
            Some(w) => can(&self.slots[w]).then_some(w),
            None => (0..self.slots.len())
                .filter(|&w| can(&self.slots[w]))
                .min_by_key(|&w| self.slots[w].inflight.len()),
        }
    }

    /// A worker with nothing in hand (apply tasks go only to idle workers).
    pub(crate) fn pick_idle(&self) -> Option<usize> {
        (0..self.slots.len()).find(|&w| {
            let s = &self.slots[w];
            s.alive
                && !s.exiting
                && s.inflight.is_empty()
                && s.lifespan.is_none_or(|l| s.assigned_in_life < l)
        })
    }

    pub(crate) fn dispatch(
        &mut self,
        worker: usize,
        cmd: Command<Sh, St>,
    ) -> Result<(), PoolError> {
        if let Command::Chunk {
            call, first, len, ..
        } = &cmd
        {
            let slot = &mut self.slots[worker];
            slot.inflight.push_back(InFlight {
                call: *call,
                first: *first,
                sent: Instant::now(),
            });
            slot.assigned_in_life += u64::from(*len);
        }
        self.backend.send(worker, cmd)
    }

    /// Handles one event; returns what the call owner must see.
    pub(crate) fn handle(&mut self, event: Event) -> Result<Option<Delivery>, PoolError> {
        match event {
            Event::Ready { .. } => Ok(None),
            Event::ChunkDone {
                worker,
                generation,
                call,
                first,
                output,
            } => {
                let slot = &mut self.slots[worker];
                if slot.generation != generation {
                    return Ok(None);
                }
                if let Some(pos) = slot
                    .inflight
                    .iter()
                    .position(|c| c.call == call && c.first == first)
                {
                    let c = slot.inflight.remove(pos).expect("found");
                    slot.chunk_done(c.sent);
                }
                Ok(Some(Delivery::Chunk {
                    call,
                    first,
                    output,
                }))
            }
            Event::Failed {
                generation,
                failure,
            } => {
                if self.slots[failure.worker].generation != generation {
                    return Ok(None);
                }
                Ok(Some(Delivery::HookFailed(failure)))
            }
            Event::Timings {
                generation: _,
                timings,
            } => {
                let w = timings.worker;
                self.timings[w].merge(&timings);
                Ok(None)
            }
            Event::Exited {
                worker,
                generation,
                exit_result,
                ..
            } => {
                if self.slots[worker].generation != generation {
                    return Ok(None);
                }
                if let Some(r) = exit_result {
                    self.exit_results.push(r);
                }
                // A worker at the end of its lifespan is replaced when there is work for it
                // (see `revive`), so a call's last lives do not start idle successors.
                self.slots[worker].alive = false;
                Ok(None)
            }
            Event::Died {
                worker,
                generation,
                message,
            } => {
                if self.slots[worker].generation != generation {
                    return Ok(None);
                }
                Ok(Some(self.lose(worker, Cause::WorkerDied, message)))
            }
        }
    }

    /// Takes a worker out (killed, abandoned or dead) and says what it had in hand.
    pub(crate) fn lose(&mut self, worker: usize, cause: Cause, message: String) -> Delivery {
        let counters = self.counters.slots()[worker].current();
        let in_hook = counters.is_some_and(|(t, _)| t == IN_HOOK - 1);
        let current = counters.map(|(t, _)| t).filter(|_| !in_hook);
        self.backend.kill(worker);
        let slot = &mut self.slots[worker];
        slot.alive = false;
        let chunks: Vec<InFlight> = slot.inflight.drain(..).collect();
        let phase = if in_hook {
            if slot.exiting {
                Phase::Exit
            } else {
                Phase::Init
            }
        } else {
            Phase::Task
        };
        let failure = Failure {
            phase,
            cause,
            worker,
            task: current,
            args: None,
            message,
            backtrace: None,
            attempts: 1,
            earlier: Vec::new(),
        };
        Delivery::Lost {
            chunks,
            current,
            failure,
        }
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

    /// Tasks a worker has in hand.
    pub(crate) fn inflight(&self, worker: usize) -> &VecDeque<InFlight> {
        &self.slots[worker].inflight
    }

    /// Workers in init or exit for longer than `limit`, or in a task for longer than `task`.
    pub(crate) fn overdue(
        &self,
        hook: Option<Duration>,
        task: Option<Duration>,
    ) -> Vec<(usize, bool, Duration)> {
        let now = monotonic_ns();
        let mut out = Vec::new();
        for (w, s) in self.slots.iter().enumerate() {
            if !s.alive {
                continue;
            }
            let Some((t, started)) = self.counters.slots()[w].current() else {
                continue;
            };
            if started == 0 {
                continue;
            }
            let is_hook = t == IN_HOOK - 1;
            let limit = if is_hook { hook } else { task };
            if let Some(limit) = limit
                && Duration::from_nanos(now.saturating_sub(started)) > limit
            {
                out.push((w, is_hook, limit));
            }
        }
        out
    }

    /// Stops every worker without waiting (errors, interrupts, dropped iterators).
    pub(crate) fn terminate(&mut self) {
        for (w, slot) in self.slots.iter_mut().enumerate() {
            if slot.alive {
                self.counters.slots()[w].cancel.store(1, Ordering::Relaxed);
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
            let ev = self
                .backend
                .events()
                .recv_timeout(Duration::from_millis(20));
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
            let Ok(ev) = self.backend.events().recv_timeout(left) else {
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
