//! One map-family call: the scheduler. It pulls chunks from the input under back-pressure,
//! hands them to workers, puts results back in order (or not), recovers from lost workers,
//! retries failed tasks, enforces timeouts and reports progress. The iterator returned by
//! `imap` drives it; `map` just collects.
//!
//! - [`dispatch`]: pulling chunks, sending them, taking delivered results in;
//! - [`reorder`]: putting results in input order;
//! - [`recovery`]: lost workers, retries, naming the lost task;
//! - [`report`]: progress, timeouts and Ctrl-C at each tick, and the end of the call.
//!
//! # Protocol
//!
//! 1. **A chunk** is a run of consecutive tasks `first..first + len` of one call. It moves
//!    through these states:
//!    - *staged*: pulled from the input (`Call::staged`), waiting for a worker that can take it;
//!    - *sent*: in a worker's hand (`Slot::inflight` in the supervisor), behind another chunk;
//!    - *running*: at the front of a worker's hand; the worker's counters name its current task;
//!    - *delivered*: its results came back (`Event::ChunkDone`); or *lost*: its worker died,
//!      timed out, or refused it;
//!    - *reordered*: delivered results held until every task before them is out (ordered calls);
//!    - *yielded*: handed to the caller.
//! 2. **Generations.** Each worker started in a slot gets the slot's next generation; every
//!    event carries its sender's, and the supervisor drops events of an older generation (a
//!    killed worker's late `ChunkDone` or `Died`). So a sent chunk is delivered or lost once.
//! 3. **Events, by state of the chunks they concern.** The call takes every event already
//!    queued (up to 64) before it sends more chunks, and waits only when none is queued.
//!    - `ChunkDone` (sent or running → delivered): its tasks stop counting as active; it goes to
//!      [`reorder::Reorder`], which yields it at once (unordered) or once the chunks before it
//!      are out (ordered). Failed tasks in it were already retried by the worker (panics only,
//!      as many times as the call's retries allow): under Stop the first one fails the call,
//!      under keep-going each takes its task's place, with the attempts made before.
//!    - `Died`, a timeout seen at a tick, a refused send (sent or running → lost): every chunk
//!      the worker held is lost. Without keep-going the call fails with the failure of the task
//!      that was running (its arguments named). With keep-going that task is staged again
//!      alone while retries remain for its kind of failure ([`crate::RetryOn`]), else its error
//!      takes its place; the other tasks of the lost chunks are staged again, at the front. A
//!      new worker takes the slot.
//!    - `Failed` (a worker's init or exit): the call fails.
//!    - Ctrl-C, seen at a tick: the call fails with `Interrupted`, in every mode.
//!    - `Exited` (lifespan reached): the slot is empty until a chunk needs it (then revived).
//! 4. **Back-pressure** (the numbers come from [`crate::chunking::Policy`]):
//!    - *inputs ahead*: tasks staged or sent (pulled and not delivered) stay within
//!      `max_tasks_active`. Delivered results waiting in the reorder buffer do not count, so a
//!      slow task never stops the other workers;
//!    - *results ahead* (ordered calls): no chunk is pulled that starts `max_ahead` tasks or
//!      more past the first result not yet out, so what waits behind a stuck task is bounded;
//!    - *hand depth*: a worker holds one chunk, two while its chunks are quick (< 20 ms),
//!      eight while they are tiny (< 0.1 ms), sixteen while they are micro (< 10 µs), and one
//!      whatever its pace once the call is in its tail (`Policy::hand_depth`); at most
//!      `n_jobs` chunks are staged.
//!    - *runs*: while every worker's chunks are micro and the call is out of its tail (and
//!      its chunks are not adaptive), the next eight chunks of the grid are cut as one
//!      (`Policy::run`): they travel to one worker and back as one chunk, and count for
//!      eight in its hand.
//!    - *the tail*: when the user gave no `chunk_size` and the length is known, each chunk is
//!      cut as it is staged, to at most `Policy::tail_cap` tasks: a share of the tasks left,
//!      so chunks shrink as the call nears its end. From the first chunk cut short, or once
//!      every task is cut (or the input ran out), the call is in its tail: chunks go to
//!      workers with nothing in hand only, so none waits behind a slow task while another
//!      worker idles. The mean task time of the call's delivered chunks (`Supervisor`'s pace)
//!      keeps chunks of tiny tasks from shrinking to round trips.
//!    - *the caller*: nothing is pulled or sent while the caller does not ask for results.
//! 5. **End.** When the input is exhausted and no chunk is staged, sent, running or reordered,
//!    the call ends: without keep-alive the workers stop gracefully (`worker_exit` runs). A
//!    failure, Ctrl-C or a dropped iterator ends it at once: workers are terminated, buffered
//!    results dropped, and the progress bar says why (failed, interrupted).

mod dispatch;
mod dropper;
mod recovery;
mod reorder;
mod report;
mod task_map;

use std::collections::VecDeque;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use crate::chunking::{ChunkInputs, ChunkSource, Policy};
use crate::error::PoolError;
use crate::job::{ErasedJob, Input, Payload, RunSettings, Wire};
use crate::options::{ErrorPolicy, RetryOn};
use crate::progress::{CallInfo, ProgressSink, StatusHandle};
use crate::slab::{Slab, SlabWriter};
use crate::supervisor::Supervisor;

use reorder::{Batch, Reorder};
use task_map::TaskMap;

/// Settings of a call, resolved from `MapOptions` and the pool.
pub(crate) struct CallConfig {
    pub(crate) ordered: bool,
    pub(crate) order_tasks: bool,
    pub(crate) keep_alive: bool,
    pub(crate) policy: Policy,
    pub(crate) on_error: ErrorPolicy,
    pub(crate) retry_on: RetryOn,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) init_timeout: Option<Duration>,
    pub(crate) exit_timeout: Option<Duration>,
    pub(crate) total: Option<u64>,
}

impl CallConfig {
    /// Extra attempts per failed task (keep-going only).
    fn retries(&self) -> u32 {
        match self.on_error {
            ErrorPolicy::Continue { retries } => retries,
            ErrorPolicy::Stop => 0,
        }
    }

    fn keep_going(&self) -> bool {
        matches!(self.on_error, ErrorPolicy::Continue { .. })
    }
}

/// How often progress, timeouts and Ctrl-C are looked at while waiting.
const TICK: Duration = Duration::from_millis(50);

pub(crate) struct Call<'a, Sh, St, T, R> {
    sup: MutexGuard<'a, Supervisor<Sh, St>>,
    job: Arc<dyn ErasedJob<Sh, St>>,
    id: u64,
    chunks: Box<dyn ChunkSource<T> + 'a>,
    wire: Wire,
    /// Whether [`crate::SharedBytes`] inputs cross as handles ([`Backend::shares_heap`]).
    handles: bool,
    /// The output that workers write into directly (in-process ordered `map`).
    slab: Option<Arc<Slab<R>>>,
    /// Writers of the chunks in flight whose results arrive encoded (process workers): they
    /// are decoded straight into the slab.
    writers: TaskMap<SlabWriter<R>>,
    /// The first task whose result did not fit in the slab (the input was longer than its
    /// size hint said); it and later ones come back in chunk vectors.
    spilled_at: Option<u64>,
    cfg: CallConfig,
    settings: RunSettings,
    input_done: bool,
    /// Tasks staged or sent: pulled from the input, not delivered yet.
    active: u64,
    rr: usize,
    staged: VecDeque<(u64, ChunkInputs<T>)>,
    reorder: Reorder<R>,
    /// Copies of the inputs of chunks in hand, by first task: to run them again after a lost
    /// worker and to name a lost task's arguments.
    retained: Option<TaskMap<ChunkInputs<T>>>,
    /// Drops the kept inputs of chunks that came back, off the caller's thread when that pays.
    dropper: dropper::Dropper<ChunkInputs<T>>,
    /// Why each failed attempt of a task being retried failed, by task.
    history: TaskMap<Vec<String>>,
    progress: Option<Box<dyn ProgressSink>>,
    status: StatusHandle,
    base_done: u64,
    returned: u64,
    failed: u64,
    last_tick: Instant,
    /// When the events of this pass began to be taken: read once, at the first of them, and
    /// used for them all, for the chunks sent next, and for the tick (one clock read a pass
    /// instead of three a task: `chunk_size(1)`, issue #17).
    clock: Option<Instant>,
    finished: bool,
}

impl<'a, Sh, St, T: Input, R: Payload> Call<'a, Sh, St, T, R> {
    pub(crate) fn new(
        sup: MutexGuard<'a, Supervisor<Sh, St>>,
        job: Arc<dyn ErasedJob<Sh, St>>,
        chunks: Box<dyn ChunkSource<T> + 'a>,
        cfg: CallConfig,
        progress: Option<Box<dyn ProgressSink>>,
        info: &CallInfo,
        status: StatusHandle,
    ) -> Self {
        let settings = RunSettings {
            stop_on_error: cfg.on_error == ErrorPolicy::Stop,
            retries: if cfg.retry_on.panics {
                cfg.retries()
            } else {
                0
            },
            timed: cfg.task_timeout.is_some(),
        };
        let wire = sup.backend.wire();
        // Process workers can die: their inputs are kept to name a lost task's arguments.
        let retain = cfg.keep_going() || cfg.task_timeout.is_some() || wire == Wire::Bytes;
        let base_done = sup.tasks_done();
        // The caller's total (`ProgressSpec::total`) when the inputs have no known length.
        status.begin(cfg.total.or(info.spec.total));
        let mut sup = sup;
        sup.backend.begin_call();
        let mut progress = progress;
        if let Some(p) = progress.as_mut() {
            // The progress sink is given this call's timings at its end, not the pool's.
            sup.begin_call_timings();
            p.start(info);
        }
        Call {
            wire,
            handles: sup.backend.shares_heap(),
            id: info.call_id,
            sup,
            job,
            chunks,
            slab: None,
            writers: TaskMap::default(),
            spilled_at: None,
            reorder: Reorder::new(cfg.ordered),
            cfg,
            settings,
            input_done: false,
            active: 0,
            rr: 0,
            staged: VecDeque::new(),
            retained: retain.then(TaskMap::default),
            dropper: dropper::Dropper::default(),
            history: TaskMap::default(),
            progress,
            status,
            base_done,
            returned: 0,
            failed: 0,
            last_tick: Instant::now(),
            clock: None,
            finished: false,
        }
    }

    /// The time of this pass (see [`Call::clock`]), read now if the pass has none yet.
    fn now(&mut self) -> Instant {
        *self.clock.get_or_insert_with(Instant::now)
    }

    /// The next result, driving the call as needed.
    pub(crate) fn next_result(&mut self) -> Option<Result<R, PoolError>> {
        loop {
            while let Some(b) = self.reorder.ready.front_mut() {
                match b.next() {
                    Some(r) => return Some(r),
                    None => {
                        self.reorder.ready.pop_front();
                    }
                }
            }
            let b = self.next_batch()?;
            self.reorder.ready.push_front(b);
        }
    }

    /// All remaining results in order, stopping at the first error (the eager `map`s):
    /// successful chunks are moved in whole, without a per-item step. The results of an
    /// ordered call of known length go straight to their place in the output: in-process
    /// workers write them there, encoded ones are decoded there.
    pub(crate) fn collect_all(&mut self) -> Result<Vec<R>, PoolError> {
        let total = self.cfg.total.unwrap_or(0) as usize;
        let in_place = self.cfg.ordered
            && self.cfg.on_error == ErrorPolicy::Stop
            && self.cfg.total.is_some()
            && self.chunks.taken() == 0;
        if in_place {
            self.slab = Some(self.output_slab(total));
        }
        let mut out = Vec::with_capacity(if in_place { 0 } else { total });
        while let Some(b) = self.next_batch() {
            match b {
                Batch::Values(v) => out.extend(v),
                Batch::Items(items) => {
                    for r in items {
                        out.push(r?);
                    }
                }
            }
        }
        let Some(slab) = self.slab.take() else {
            return Ok(out);
        };
        let in_place = self.spilled_at.unwrap_or_else(|| self.chunks.taken());
        let mut all = Slab::into_vec(slab, in_place as usize).map_err(|_| {
            PoolError::backend(
                "results are missing from the output of the call",
                std::io::ErrorKind::InvalidData.into(),
            )
        })?;
        all.append(&mut out);
        Ok(all)
    }

    /// The slab of an ordered call's `total` results: the input vector's own memory when the
    /// results are of the inputs' type and the inputs lend it, else a fresh allocation.
    fn output_slab(&mut self, total: usize) -> Arc<Slab<R>> {
        if typeid::of::<T>() == typeid::of::<R>()
            && let Some((ptr, cap)) = self.chunks.lend_allocation(total)
        {
            // SAFETY: `T` is `R`, so this is a `Vec<R>`'s allocation of `cap`, lent to the
            // output with no element to drop; each chunk's inputs are read (by a thread worker,
            // or encoded here) before its results are written over them.
            return unsafe { Slab::adopt(ptr.cast::<R>(), cap) };
        }
        Slab::new(total)
    }

    /// The next batch of results, driving the call as needed.
    fn next_batch(&mut self) -> Option<Batch<R>> {
        loop {
            if let Some(b) = self.reorder.ready.pop_front() {
                return Some(b);
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.fill() {
                self.fail(e);
                continue;
            }
            if self.input_done && self.active == 0 {
                self.finish();
                continue;
            }
            // Events already queued are taken without a wait; the call waits (and reads the
            // clock for its deadline) only when there are none.
            self.clock = None;
            if !self.take_queued_events() && !self.take_polled_events() {
                match self.sup.next_event(TICK) {
                    Ok(ev) => {
                        self.take_event(ev);
                        self.take_queued_events();
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.fail(PoolError::backend(
                        "all workers are gone",
                        std::io::ErrorKind::BrokenPipe.into(),
                    )),
                }
            }
            if self.now().saturating_duration_since(self.last_tick) >= TICK {
                self.tick();
            }
        }
    }
}
