//! One map-family call: pulls chunks from the input under back-pressure, hands them to
//! workers, puts results back in order (or not), enforces timeouts and the error policy, and
//! reports progress. The iterator returned by `imap` drives it; `map` just collects.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use crate::backend::Command;
use crate::chunking::{ChunkInputs, ChunkSource};
use crate::error::{Cause, Failure, PoolError};
use crate::job::{
    ErasedJob, Input, Payload, RunSettings, Wire, decode_output, decode_output_into, encode_inputs,
};
use crate::options::ErrorPolicy;
use crate::progress::{CallInfo, Outcome, ProgressSink, StatusHandle};
use crate::slab::Slab;
use crate::slab::SlabWriter;
use crate::supervisor::{Delivery, InFlight, Supervisor};

/// Results of a chunk: plain values when every task succeeded (the common case, moved in
/// whole), or one result per task.
pub(crate) enum Batch<R> {
    Values(std::vec::IntoIter<R>),
    Items(std::vec::IntoIter<Result<R, PoolError>>),
}

impl<R> Iterator for Batch<R> {
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Batch::Values(v) => v.next().map(Ok),
            Batch::Items(i) => i.next(),
        }
    }
}

/// Settings of a call, resolved from `MapOptions` and the pool.
pub(crate) struct CallConfig {
    pub(crate) ordered: bool,
    pub(crate) order_tasks: bool,
    pub(crate) keep_alive: bool,
    pub(crate) max_active: u64,
    pub(crate) policy: ErrorPolicy,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) init_timeout: Option<Duration>,
    pub(crate) exit_timeout: Option<Duration>,
    pub(crate) total: Option<u64>,
}

/// How often progress and timeouts are looked at while waiting.
const TICK: Duration = Duration::from_millis(50);

pub(crate) struct Call<'a, Sh, St, T, R> {
    sup: MutexGuard<'a, Supervisor<Sh, St>>,
    job: Arc<dyn ErasedJob<Sh, St>>,
    id: u64,
    chunks: Box<dyn ChunkSource<T> + 'a>,
    wire: Wire,
    /// The output that workers write into directly (in-process ordered `map`).
    slab: Option<Arc<Slab<R>>>,
    /// Writers of the chunks in flight whose results arrive encoded (process workers): they
    /// are decoded straight into the slab.
    writers: HashMap<u64, SlabWriter<R>>,
    /// The first task whose result did not fit in the slab (the input was longer than its
    /// size hint said); it and later ones come back in chunk vectors.
    spilled_at: Option<u64>,
    cfg: CallConfig,
    settings: RunSettings,
    input_done: bool,
    active: u64,
    rr: usize,
    next_expected: u64,
    reorder: BTreeMap<u64, (u64, Batch<R>)>,
    ready: VecDeque<Batch<R>>,
    retained: Option<HashMap<u64, Vec<T>>>,
    staged: VecDeque<(u64, ChunkInputs<T>)>,
    progress: Option<Box<dyn ProgressSink>>,
    status: StatusHandle,
    base_done: u64,
    returned: u64,
    failed: u64,
    last_tick: Instant,
    finished: bool,
}

impl<'a, Sh, St, T: Input, R: Payload> Call<'a, Sh, St, T, R> {
    #[allow(clippy::too_many_arguments)]
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
            stop_on_error: cfg.policy == ErrorPolicy::Stop,
            retries: match cfg.policy {
                ErrorPolicy::Continue { retries } => retries,
                ErrorPolicy::Stop => 0,
            },
            timed: cfg.task_timeout.is_some(),
        };
        let retain =
            matches!(cfg.policy, ErrorPolicy::Continue { .. }) || cfg.task_timeout.is_some();
        let base_done = sup
            .counters()
            .slots()
            .iter()
            .map(|c| c.tasks_done.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
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
            wire: sup.backend.wire(),
            id: info.call_id,
            sup,
            job,
            chunks,
            slab: None,
            writers: HashMap::new(),
            spilled_at: None,
            cfg,
            settings,
            input_done: false,
            active: 0,
            rr: 0,
            next_expected: 0,
            reorder: BTreeMap::new(),
            ready: VecDeque::new(),
            retained: retain.then(HashMap::new),
            staged: VecDeque::new(),
            progress,
            status,
            base_done,
            returned: 0,
            failed: 0,
            last_tick: Instant::now(),
            finished: false,
        }
    }

    /// The next result, driving the call as needed.
    pub(crate) fn next_result(&mut self) -> Option<Result<R, PoolError>> {
        loop {
            while let Some(b) = self.ready.front_mut() {
                match b.next() {
                    Some(r) => return Some(r),
                    None => {
                        self.ready.pop_front();
                    }
                }
            }
            let b = self.next_batch()?;
            self.ready.push_front(b);
        }
    }

    /// All remaining results in order, stopping at the first error (the eager `map`s):
    /// successful chunks are moved in whole, without a per-item step. The results of an
    /// ordered call of known length go straight to their place in the output: in-process
    /// workers write them there, encoded ones are decoded there.
    pub(crate) fn collect_all(&mut self) -> Result<Vec<R>, PoolError> {
        let total = self.cfg.total.unwrap_or(0) as usize;
        let in_place = self.cfg.ordered
            && self.cfg.policy == ErrorPolicy::Stop
            && self.cfg.total.is_some()
            && self.chunks.taken() == 0;
        if in_place {
            self.slab = Some(Slab::new(total));
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

    /// The next batch of results, driving the call as needed.
    fn next_batch(&mut self) -> Option<Batch<R>> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Some(b);
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.fill() {
                let e = self.explain(e);
                self.fail(e);
                continue;
            }
            if self.input_done && self.active == 0 {
                self.finish();
                continue;
            }
            match self.sup.backend.events().recv_timeout(TICK) {
                Ok(ev) => match self.sup.handle(ev) {
                    Ok(Some(d)) => self.deliver(d),
                    Ok(None) => {}
                    Err(e) => self.fail(e),
                },
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.fail(PoolError::backend(
                    "all workers are gone",
                    std::io::ErrorKind::BrokenPipe.into(),
                )),
            }
            if self.last_tick.elapsed() >= TICK {
                self.tick();
            }
        }
    }

    /// Sends chunks while back-pressure allows.
    ///
    /// Chunks are staged (pulled from the input, counted as active) ahead of need, up to one
    /// per worker, so a worker that frees up gets its next chunk at once instead of waiting
    /// for the input to be read.
    fn fill(&mut self) -> Result<(), PoolError> {
        loop {
            if !self.staged.is_empty() {
                let only = self.cfg.order_tasks.then_some(self.rr % self.sup.n_jobs());
                if self.sup.pick(only).is_none() && self.sup.any_dead() {
                    self.sup.revive()?;
                }
                if let Some(worker) = self.sup.pick(only) {
                    let (first, tasks) = self.staged.pop_front().expect("not empty");
                    self.send(worker, first, tasks)?;
                    continue;
                }
            }
            if self.input_done || self.staged.len() >= self.sup.n_jobs() {
                return Ok(());
            }
            let len = self.chunks.next_len();
            if self.active > 0 && self.active + len > self.cfg.max_active {
                return Ok(());
            }
            match self.chunks.next_chunk() {
                Some((first, tasks)) => {
                    self.active += tasks.len() as u64;
                    self.staged.push_back((first, tasks));
                }
                None => {
                    self.input_done = true;
                    self.status.set_total(self.chunks.taken());
                    return Ok(());
                }
            }
        }
    }

    fn send(&mut self, worker: usize, first: u64, tasks: ChunkInputs<T>) -> Result<(), PoolError> {
        self.rr += 1;
        let n = tasks.len() as u32;
        if let Some(r) = self.retained.as_mut() {
            r.insert(first, tasks.to_vec());
        }
        let dest = match &self.slab {
            Some(s) if self.spilled_at.is_none() && first + u64::from(n) <= s.capacity() as u64 => {
                Some(s.writer(first as usize, n as usize))
            }
            // More inputs than the length announced: the rest comes back the usual way.
            Some(_) => {
                self.spilled_at.get_or_insert(first);
                None
            }
            None => None,
        };
        // Encoded results are decoded into their place when they arrive.
        let dest = match (self.wire, dest) {
            (Wire::Bytes, Some(w)) => {
                self.writers.insert(first, w);
                None
            }
            (_, dest) => dest,
        };
        let input =
            encode_inputs(tasks, self.wire, dest).map_err(|message| PoolError::Serialization {
                context: format!("inputs of tasks #{first}..#{}", first + u64::from(n)),
                message,
            })?;
        let cmd = Command::Chunk {
            job: self.job.clone(),
            call: self.id,
            first,
            len: n,
            input,
            settings: self.settings,
        };
        self.sup.dispatch(worker, cmd)
    }

    fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::Chunk {
                call,
                first,
                output,
                ..
            } if call == self.id => {
                let decoded = match self.writers.remove(&first) {
                    Some(mut w) => decode_output_into(output, &mut w),
                    None => decode_output::<R>(output),
                };
                let out = match decoded {
                    Ok(o) => o,
                    Err(message) => {
                        return self.fail(PoolError::Serialization {
                            context: format!("results of the chunk at task #{first}"),
                            message,
                        });
                    }
                };
                let len = out.len();
                // The chunk is back: its kept copy (for re-running after a lost worker) can go.
                if let Some(r) = self.retained.as_mut() {
                    r.remove(&first);
                }
                self.returned += len;
                self.failed += out.failures.len() as u64;
                if let Some((_, f)) = out.failures.first()
                    && self.cfg.policy == ErrorPolicy::Stop
                {
                    return self.fail(f.clone().into());
                }
                if let Some(p) = self.progress.as_mut() {
                    for (_, f) in &out.failures {
                        p.task_failed(&format!("{f:#}"));
                    }
                }
                if out.failures.is_empty() {
                    return self.put(first, len, Batch::Values(out.values.into_iter()));
                }
                let mut values = out.values.into_iter();
                let mut failures = out.failures.into_iter().peekable();
                let mut items = Vec::with_capacity(len as usize);
                for offset in 0..len as u32 {
                    match failures.peek() {
                        Some((o, _)) if *o == offset => {
                            let (_, f) = failures.next().expect("peeked");
                            items.push(Err(f.into()));
                        }
                        _ => match values.next() {
                            Some(v) => items.push(Ok(v)),
                            None => break,
                        },
                    }
                }
                self.put(first, len, Batch::Items(items.into_iter()));
            }
            Delivery::Chunk { .. } => {}
            Delivery::HookFailed(f) => self.fail(f.into()),
            Delivery::Lost {
                chunks,
                current,
                failure,
            } => self.recover(chunks, current, failure),
        }
    }

    /// Puts the results of tasks `first..first+len` where they belong.
    /// A worker refused a command: it has most likely just failed (init panic, death), and
    /// its own report says more than the refusal. Look for it briefly.
    fn explain(&mut self, e: PoolError) -> PoolError {
        let deadline = Instant::now() + Duration::from_millis(200);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(ev) = self.sup.backend.events().recv_timeout(left) else {
                break;
            };
            match self.sup.handle(ev) {
                Ok(Some(Delivery::HookFailed(f))) => return f.into(),
                Ok(Some(Delivery::Lost { failure, .. })) => return failure.into(),
                _ => {}
            }
        }
        e
    }

    /// Tasks stay counted as active until their results can be handed out, so that results
    /// waiting behind a slow task (ordered calls) are bounded by `max_tasks_active` too.
    fn put(&mut self, first: u64, len: u64, batch: Batch<R>) {
        if !self.cfg.ordered {
            self.active -= len;
            self.ready.push_back(batch);
            return;
        }
        self.reorder.insert(first, (len, batch));
        while let Some((len, batch)) = self.reorder.remove(&self.next_expected) {
            self.next_expected += len;
            self.active -= len;
            self.ready.push_back(batch);
        }
    }

    /// A worker was lost (timeout, death): fail its current task, redo the rest when possible.
    fn recover(&mut self, chunks: Vec<InFlight>, current: Option<u64>, mut failure: Failure) {
        let mine: Vec<InFlight> = chunks.into_iter().filter(|c| c.call == self.id).collect();
        let keep_going = matches!(self.cfg.policy, ErrorPolicy::Continue { .. });
        if let (Some(t), Some(r)) = (current, self.retained.as_ref()) {
            failure.args = r
                .iter()
                .find(|(f, v)| **f <= t && t < **f + v.len() as u64)
                .map(|(f, v)| format!("{:?}", v[(t - f) as usize]));
        }
        if !keep_going || self.retained.is_none() {
            return self.fail(failure.into());
        }
        for c in mine {
            let Some(tasks) = self.retained.as_mut().and_then(|r| r.remove(&c.first)) else {
                continue;
            };
            // Tasks to run again stay active (staged); the failed one is settled by `put`.
            let mut segment: Option<(u64, Vec<T>)> = None;
            for (i, t) in tasks.into_iter().enumerate() {
                let idx = c.first + i as u64;
                if Some(idx) == current {
                    if let Some((first, s)) = segment.take() {
                        self.staged.push_front((first, ChunkInputs::Vec(s)));
                    }
                    self.returned += 1;
                    self.failed += 1;
                    if let Some(p) = self.progress.as_mut() {
                        p.task_failed(&format!("{failure:#}"));
                    }
                    self.put(
                        idx,
                        1,
                        Batch::Items(vec![Err(failure.clone().into())].into_iter()),
                    );
                } else {
                    segment.get_or_insert_with(|| (idx, Vec::new())).1.push(t);
                }
            }
            if let Some((first, s)) = segment {
                self.staged.push_front((first, ChunkInputs::Vec(s)));
            }
        }
        if let Err(e) = self.sup.revive() {
            self.fail(e);
        }
    }

    fn tick(&mut self) {
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

    fn finish(&mut self) {
        self.finished = true;
        self.sup.backend.end_call();
        let mut outcome = Outcome::Done;
        if !self.cfg.keep_alive
            && let Err(e) = self.sup.stop(self.cfg.exit_timeout)
        {
            outcome = Outcome::Failed(e.to_string());
            self.ready.push_back(Batch::Items(vec![Err(e)].into_iter()));
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
    fn fail(&mut self, e: PoolError) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.sup.backend.end_call();
        self.sup.terminate();
        self.ready.clear();
        self.report();
        self.status.end();
        self.sup.call_timings = None;
        if let Some(mut p) = self.progress.take() {
            let message = with_backtrace(&e);
            p.task_failed(&message);
            p.finish(&self.status.snapshot(), &Outcome::Failed(message));
        }
        self.ready.push_back(Batch::Items(vec![Err(e)].into_iter()));
    }
}

impl<Sh, St, T, R> Call<'_, Sh, St, T, R> {
    fn report(&mut self) {
        let done_now: u64 = self
            .sup
            .counters()
            .slots()
            .iter()
            .map(|c| c.tasks_done.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        let submitted = self.chunks.taken();
        let done = done_now
            .saturating_sub(self.base_done)
            .clamp(self.returned, submitted.max(self.returned));
        let running = self
            .sup
            .counters()
            .slots()
            .iter()
            .filter(|c| c.current().is_some_and(|(t, _)| t < u64::MAX - 1))
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
