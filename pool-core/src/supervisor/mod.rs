//! The worker set of a pool: which slots run a worker, what each has in hand, and what the
//! workers' events mean for the call that owns them. Shared by map calls and `apply_async`.
//!
//! - [`slot`]: one slot's state (alive, generation, chunks in hand, pace);
//! - [`lifecycle`]: starting, reviving, stopping and terminating workers, exit results;
//! - here: handing out chunks and turning events into [`Delivery`]s. An event of an older
//!   generation than its slot's (a worker already killed or replaced) is dropped, so each chunk
//!   is delivered or lost once (see the protocol in `crate::call`).

mod lifecycle;
mod slot;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::backend::{Backend, Command, Event, Unsent};
use crate::counters::{WorkerCounters, monotonic_ns};
use crate::error::{Cause, Failure, Phase, PoolError};
use crate::hook::{ExitFn, InitFn, StateFn};
use crate::job::Data;
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

/// What the supervisor hands to the owner of a call.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// A chunk finished; `len`: its tasks as sent (0 if it was not in hand).
    Chunk {
        call: u64,
        first: u64,
        len: u32,
        output: Data,
    },
    /// A worker was lost with these chunks in hand; `failure` is for the task it was running.
    Lost {
        chunks: Vec<InFlight>,
        current: Option<u64>,
        failure: Box<Failure>,
    },
    /// A worker's init or exit failed.
    HookFailed(Box<Failure>),
}

pub(crate) use slot::InFlight;
use slot::Slot;

/// A call id unique in this process (the dashboard and job caches key on it). An
/// `apply_async` task takes one directly: the workers keep their pace, as the tasks of a run of
/// submissions are one stream, and a worker whose last task was quick holds the next one
/// (`apply/hand.rs`) whoever submitted it. A map call takes its id from
/// [`Supervisor::new_call_id`].
pub(crate) fn next_call_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(crate) struct Supervisor<Sh, St> {
    pub(crate) backend: Box<dyn Backend<Sh, St>>,
    slots: Vec<Slot>,
    pub(crate) shared: Arc<Sh>,
    make_state: StateFn<St>,
    cpu_ids: Option<Vec<Vec<usize>>>,
    pub(crate) insights: bool,
    spec: WorkerSpec<Sh, St>,
    pub(crate) exit_results: Vec<Vec<u8>>,
    /// Timings of every call so far (`get_insights`).
    pub(crate) timings: Vec<WorkerTimings>,
    /// Timings of the current call alone, while a call with progress records them (see
    /// [`Supervisor::begin_call_timings`]).
    pub(crate) call_timings: Option<Vec<WorkerTimings>>,
    /// The current call's pace: time its chunks took and their tasks (adaptive chunks, see
    /// [`crate::chunking::Policy::tail_cap`]).
    pace: (Duration, u64),
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
            call_timings: None,
            pace: (Duration::ZERO, 0),
        }
    }

    pub(crate) fn n_jobs(&self) -> usize {
        self.slots.len()
    }

    /// The counters of the worker now in `slot`.
    pub(crate) fn counters(&self, slot: usize) -> &WorkerCounters {
        self.backend.counters(slot)
    }

    /// The tasks every slot has finished, over the pool's life.
    pub(crate) fn tasks_done(&self) -> u64 {
        (0..self.slots.len())
            .map(|w| self.counters(w).tasks_done.load(Ordering::Relaxed))
            .sum()
    }

    /// A new map call begins: its chunks may take longer than the last call's, so every worker
    /// starts again with one chunk at a time. Returns its id ([`next_call_id`]).
    pub(crate) fn new_call_id(&mut self) -> u64 {
        for s in &mut self.slots {
            s.forget_pace();
        }
        self.pace = (Duration::ZERO, 0);
        next_call_id()
    }

    /// The current call's mean task time so far, once a chunk came back.
    pub(crate) fn mean_task_time(&self) -> Option<Duration> {
        let (took, tasks) = self.pace;
        (tasks > 0).then(|| took / u32::try_from(tasks).unwrap_or(u32::MAX))
    }

    pub(crate) fn any_alive(&self) -> bool {
        self.slots.iter().any(|s| s.alive)
    }

    /// A worker that can take a chunk of `units` chunks of the grid now, the one with the least
    /// in hand: `Some(w)` forces that worker (round-robin). `tail`: the call is in its tail
    /// ([`Slot::can_take`]).
    pub(crate) fn pick(&self, only: Option<usize>, tail: bool, units: u32) -> Option<usize> {
        match only {
            Some(w) => self.slots[w].can_take(tail, units).then_some(w),
            None => (0..self.slots.len())
                .filter(|&w| self.slots[w].can_take(tail, units))
                .min_by_key(|&w| self.slots[w].held()),
        }
    }

    /// Whether the call may cut runs of chunks ([`crate::chunking::Policy::run`]): every live
    /// worker's chunks are micro, and none has a lifespan (a run would carry it past it).
    pub(crate) fn takes_runs(&self) -> bool {
        let mut live = self.slots.iter().filter(|s| s.alive).peekable();
        live.peek().is_some() && live.all(|s| s.micro() && s.lifespan.is_none())
    }

    /// The next event, waiting at most `timeout`: every blocking wait of the pool goes through
    /// here, so that the back end hands listening back first ([`Backend::park`]).
    pub(crate) fn next_event(
        &mut self,
        timeout: Duration,
    ) -> Result<Event, crossbeam_channel::RecvTimeoutError> {
        self.backend.park();
        self.backend.events().recv_timeout(timeout)
    }

    pub(crate) fn dispatch(
        &mut self,
        worker: usize,
        cmd: Command<Sh, St>,
    ) -> Result<(), Unsent<Sh, St>> {
        self.dispatch_at(worker, cmd, Instant::now(), 1)
    }

    /// [`Self::dispatch`] with the time of sending read by the caller (a call reads the clock
    /// once for the chunks it sends together), for a chunk of `units` chunks of the grid.
    /// A chunk the back end does not deliver counts as in the worker's hand all the same, and
    /// goes with the worker when its loss is handled.
    pub(crate) fn dispatch_at(
        &mut self,
        worker: usize,
        cmd: Command<Sh, St>,
        now: Instant,
        units: u32,
    ) -> Result<(), Unsent<Sh, St>> {
        self.note_sent(worker, &cmd, now, units);
        let unsent = self.backend.send(worker, cmd).err();
        if let Some(Unsent { cmd: Some(_), .. }) = unsent
            && let Some(c) = self.slots[worker].inflight.back_mut()
        {
            c.reached = false;
        }
        unsent.map_or(Ok(()), Err)
    }

    fn note_sent(&mut self, worker: usize, cmd: &Command<Sh, St>, now: Instant, units: u32) {
        if let Command::Chunk {
            call, first, len, ..
        } = cmd
        {
            let slot = &mut self.slots[worker];
            slot.inflight.push_back(InFlight {
                call: *call,
                first: *first,
                len: *len,
                units,
                sent: now,
                reached: true,
            });
            slot.assigned_in_life += u64::from(*len);
        }
    }

    /// Handles one event; returns what the call owner must see.
    pub(crate) fn handle(&mut self, event: Event) -> Result<Option<Delivery>, PoolError> {
        self.handle_at(event, Instant::now())
    }

    /// [`Self::handle`] with the time the event was taken read by the caller (a call reads the
    /// clock once for the events it takes together).
    pub(crate) fn handle_at(
        &mut self,
        event: Event,
        now: Instant,
    ) -> Result<Option<Delivery>, PoolError> {
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
                    // A killed worker's late result: nobody decodes it.
                    crate::shared_bytes::discard(output, self.backend.shares_heap());
                    return Ok(None);
                }
                let mut len = 0;
                if let Some(pos) = slot
                    .inflight
                    .iter()
                    .position(|c| c.call == call && c.first == first)
                {
                    let c = slot.inflight.remove(pos).expect("found");
                    let took = slot.chunk_done(c.sent, now, c.units);
                    self.pace.0 += took;
                    self.pace.1 += u64::from(c.len);
                    len = c.len;
                }
                Ok(Some(Delivery::Chunk {
                    call,
                    first,
                    len,
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
                if let Some(call) = self.call_timings.as_mut() {
                    call[w].merge(&timings);
                }
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
    pub(crate) fn lose(&mut self, worker: usize, cause: Cause, mut message: String) -> Delivery {
        let counters = self.counters(worker).current();
        let in_hook = counters.is_some_and(|(t, _)| t == IN_HOOK - 1);
        let mut current = counters.map(|(t, _)| t).filter(|_| !in_hook);
        self.backend.kill(worker);
        let slot = &mut self.slots[worker];
        // No task marked in hand, but a chunk in hand: the worker had run the tasks of its
        // oldest chunk and was sending their results (or had not begun it). Its first task is
        // the one lost; the others are named in the message. A chunk that never reached it
        // (given back by its back end) is not the one.
        let oldest = slot.inflight.front().filter(|c| c.reached);
        if let (None, false, Some(c)) = (current, in_hook, oldest) {
            current = Some(c.first);
            if c.len > 1 {
                let last = c.first + u64::from(c.len) - 1;
                message.push_str(&format!(
                    " (with its chunk in hand, tasks #{}..=#{last})",
                    c.first
                ));
            }
        }
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
            failure: Box::new(failure),
        }
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
            let Some((t, started)) = self.counters(w).current() else {
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
}
