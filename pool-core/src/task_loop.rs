//! The per-task loop, the hot path of every back end, and where a failing task's arguments
//! come from.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::context::WorkerContext;
use crate::error::{Cause, Failure, Phase};
use crate::job::{Input, TaskEnv};
use crate::panic;
use crate::slab::SlabWriter;
use crate::task_inputs::TaskInputs;
use crate::timing::Recorder;

/// Where a chunk's results go: a vector handed back to the parent, or their final place in
/// the call's output (see [`crate::slab`]).
///
/// Results are written through a raw pointer and counted afterwards, so that the task loop
/// keeps its count in a register (see [`Consumed`]).
pub(crate) trait ResultSink<R> {
    /// Makes room for `n` more results; returns where the next one goes.
    fn reserve(&mut self, n: usize) -> *mut R;
    /// Counts `n` more results as written.
    ///
    /// # Safety
    /// `n` results were written from the pointer [`ResultSink::reserve`] returned, within the
    /// room it made.
    unsafe fn commit(&mut self, n: usize);
    /// Results written so far.
    fn len(&self) -> usize;

    /// Writes one result.
    fn push(&mut self, r: R) {
        let slot = self.reserve(1);
        // SAFETY: `reserve(1)` made room for one result at `slot`.
        unsafe {
            slot.write(r);
            self.commit(1);
        }
    }
}

impl<R> ResultSink<R> for Vec<R> {
    #[inline]
    fn reserve(&mut self, n: usize) -> *mut R {
        Vec::reserve(self, n);
        // SAFETY: at most one past the end of the allocation.
        unsafe { self.as_mut_ptr().add(Vec::len(self)) }
    }

    #[inline]
    unsafe fn commit(&mut self, n: usize) {
        // SAFETY: the caller initialized `n` elements past `len`, within the capacity.
        unsafe { self.set_len(Vec::len(self) + n) };
    }

    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl<R> ResultSink<R> for SlabWriter<R> {
    #[inline]
    fn reserve(&mut self, n: usize) -> *mut R {
        assert!(n <= self.room(), "more results than tasks in the chunk");
        self.next_slot()
    }

    #[inline]
    unsafe fn commit(&mut self, n: usize) {
        // SAFETY: passed on from the caller.
        unsafe { SlabWriter::commit(self, n) };
    }

    fn len(&self) -> usize {
        self.written()
    }
}

/// How a chunk ended, besides its results: the failed tasks (offset in the chunk) and how many
/// tasks were not run.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    pub(crate) failures: Vec<(u32, Failure)>,
    pub(crate) skipped: u32,
}

/// Where a task's arguments are found after the task consumed them (for error reports,
/// retries and the slowest-task list of insights).
pub(crate) enum ArgSource<'a> {
    /// Each argument is cloned while its task runs (in-process inputs), over the last one's
    /// copy.
    Cloned,
    /// The chunk's encoded inputs, decoded again on demand: nothing is copied per task.
    Encoded(&'a [u8]),
}

impl ArgSource<'_> {
    /// The argument at `offset` in the chunk, decoded again.
    pub(crate) fn decode<T: Input>(&self, offset: usize) -> Option<T> {
        match self {
            ArgSource::Cloned => None,
            // The first decode adopted the handles' references: this one takes its own.
            ArgSource::Encoded(b) => {
                crate::shared_bytes::decoding_again(|| crate::input_wire::nth(b, offset))
            }
        }
    }

    /// The argument at `offset` in `Debug` form.
    pub(crate) fn debug<T: Input>(&self, offset: usize) -> String {
        self.decode::<T>(offset)
            .map_or_else(|| "?".to_string(), |a| format!("{a:?}"))
    }
}

/// The per-task loop: the hot path of every back end.
///
/// A panic is caught once per run of tasks, not once per task: the loop runs inside one
/// `catch_unwind`, and after a panic it records the failure (retrying the task if asked) and
/// resumes with the next task in a fresh one. The failing task is the one after the last
/// result written, and its argument is found again in the input buffer (types without drop
/// glue), in the encoded chunk (process workers) or in a copy kept while it runs (other
/// in-process types). Results of successful tasks go to `values`, in order.
pub(crate) fn run_tasks<Sh, St, F, T, R, S>(
    f: &F,
    ctx: &mut WorkerContext<'_, Sh, St>,
    first: u64,
    inputs: &mut TaskInputs<T>,
    source: &ArgSource<'_>,
    env: &mut TaskEnv<'_>,
    values: &mut S,
) -> Settled
where
    F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R,
    T: Input,
    S: ResultSink<R>,
{
    let n = inputs.remaining();
    let mut out = Settled::default();
    let s = env.settings;
    let counters = env.counters;
    // Tasks finish in order, failed ones included: the slot's total after the task at
    // `offset` is `done0 + offset + 1`.
    let done0 = counters.tasks_done.load(Ordering::Relaxed);
    // In-process inputs (threads) that the buffer cannot give back after their task consumed
    // them are kept by cloning, each over the last (`clone_from`: a `String` or `Vec` reuses
    // the kept one's memory; a fresh clone per task cost an allocation and a free, and made
    // `s.len()` over owned strings 1.6-1.7x rayon, 1.3x with the reuse); since such a worker
    // cannot die mid-task, the task in hand needs marking only for timeouts.
    let in_process = matches!(source, ArgSource::Cloned);
    let keep = in_process && std::mem::needs_drop::<T>();
    let mark_each = s.timed || !in_process;
    let mut kept: Option<T> = None;
    let mut next = 0;
    loop {
        let span = Span {
            first,
            room: n - next,
            start: next,
            done0,
            timed: s.timed,
            keep,
            mark_each,
        };
        let base = values.len();
        // With short tasks, insights time a few tasks one by one and the rest as a whole
        // (see `Recorder::sampling`): where that bulk run started, and after how many tasks.
        let mut bulk: Option<(Instant, usize)> = None;
        let run = panic::catch(|| {
            let (inputs, kept) = (&mut *inputs, &mut kept);
            match env.recorder.as_deref_mut() {
                None => span.run(f, ctx, inputs, kept, values, counters, source, Untimed),
                Some(rec) if rec.sampling() => {
                    let head = Span {
                        room: span.room.min(SAMPLED_PER_SPAN),
                        ..span
                    };
                    let timed = Timed { rec, every: true };
                    if let Some(c) = head.run(f, ctx, inputs, kept, values, counters, source, timed)
                    {
                        return Some(c);
                    }
                    let done = values.len() - base;
                    bulk = Some((Instant::now(), done));
                    let rest = Span {
                        start: span.start + done,
                        room: span.room - done,
                        ..span
                    };
                    rest.run(f, ctx, inputs, kept, values, counters, source, Untimed)
                }
                Some(rec) => {
                    let timed = Timed { rec, every: false };
                    span.run(f, ctx, inputs, kept, values, counters, source, timed)
                }
            }
        });
        let ran = values.len() - base;
        if let (Some((t0, head)), Some(rec)) = (bulk, env.recorder.as_deref_mut()) {
            rec.bulk((ran - head) as u64, t0.elapsed());
        }
        match run {
            Ok(None) => {
                counters.end(done0 + (next + ran) as u64, s.timed);
                break;
            }
            Ok(Some(cancelled_at)) => {
                counters.end(done0 + (next + ran) as u64, s.timed);
                out.skipped = (n - cancelled_at) as u32;
                break;
            }
            Err(caught) => {
                let offset = next + ran;
                next = offset + 1;
                let arg = kept
                    .take()
                    .or_else(|| inputs.last().cloned())
                    .or_else(|| source.decode::<T>(offset));
                let task = first + offset as u64;
                let mut attempts = 1;
                let mut last = caught;
                let mut recovered = None;
                let mut earlier = Vec::new();
                while let (true, Some(a)) = (attempts <= s.retries, arg.as_ref()) {
                    attempts += 1;
                    match panic::catch(|| f(ctx, a.clone())) {
                        Ok(r) => {
                            recovered = Some(r);
                            break;
                        }
                        Err(c) => {
                            let before = std::mem::replace(&mut last, c);
                            earlier.push(format!("panicked: {}", before.message));
                        }
                    }
                }
                counters.end(done0 + next as u64, s.timed);
                match recovered {
                    Some(r) => values.push(r),
                    None => {
                        counters.tasks_failed.fetch_add(1, Ordering::Relaxed);
                        out.failures.push((
                            offset as u32,
                            Failure {
                                phase: Phase::Task,
                                cause: Cause::Panic,
                                worker: ctx.worker_id,
                                task: Some(task),
                                args: arg.as_ref().map(|a| format!("{a:?}")),
                                message: last.message,
                                backtrace: last.backtrace,
                                attempts,
                                earlier,
                            },
                        ));
                        if s.stop_on_error {
                            out.skipped = (n - offset - 1) as u32;
                            break;
                        }
                    }
                }
            }
        }
    }
    out
}

/// Tasks timed one by one at the start of each run while insights sample short tasks (the
/// rest of the run is timed as a whole).
const SAMPLED_PER_SPAN: usize = 16;

/// A run of tasks between two panics: everything it needs is a plain value, so the loop keeps
/// its state in registers.
#[derive(Clone, Copy)]
struct Span {
    /// Index of the chunk's first task.
    first: u64,
    /// Offset in the chunk of the span's first task.
    start: usize,
    /// Tasks left in the chunk from there: the most results the span can write.
    room: usize,
    /// The slot's task total before the chunk.
    done0: u64,
    /// Record each task's start time (task timeouts).
    timed: bool,
    /// Keep each task's arguments in `kept` while it runs.
    keep: bool,
    /// Mark each task as the one in hand in the counters (for timeouts and for naming the
    /// task of a worker process that dies); else only the span's first one is.
    mark_each: bool,
}

/// What a span does around each task besides running it: nothing, or the timing of insights.
trait Around {
    /// Runs the task with index `task` through `run`; `args` names its arguments if needed.
    fn task<R>(&mut self, task: u64, run: impl FnOnce() -> R, args: impl FnOnce() -> String) -> R;
}

/// Insights off: the task only.
struct Untimed;

impl Around for Untimed {
    #[inline(always)]
    fn task<R>(&mut self, _: u64, run: impl FnOnce() -> R, _: impl FnOnce() -> String) -> R {
        run()
    }
}

/// Insights on: task durations and the slowest tasks with their arguments. Every task is timed
/// when `every` is set, else as [`Recorder::sample`] says.
struct Timed<'a> {
    rec: &'a mut Recorder,
    every: bool,
}

impl Around for Timed<'_> {
    #[inline(always)]
    fn task<R>(&mut self, task: u64, run: impl FnOnce() -> R, args: impl FnOnce() -> String) -> R {
        if self.every || self.rec.sample() {
            let t0 = Instant::now();
            let r = run();
            self.rec.task(task, t0.elapsed(), args);
            r
        } else {
            let r = run();
            self.rec.untimed_task();
            r
        }
    }
}

impl Span {
    /// Runs up to `room` tasks, until the input ends (`None`) or the call is cancelled (the
    /// offset of the first task not run).
    ///
    /// Inputs are read through a pointer into the input buffer and results written through
    /// one into the sink, with both counts in a [`Consumed`] guard that hands them back when
    /// the span ends, normally or by a panic: the loop keeps its state in registers.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn run<Sh, St, F, T, R, S>(
        self,
        f: &F,
        ctx: &mut WorkerContext<'_, Sh, St>,
        inputs: &mut TaskInputs<T>,
        kept: &mut Option<T>,
        values: &mut S,
        counters: &crate::counters::WorkerCounters,
        source: &ArgSource<'_>,
        mut around: impl Around,
    ) -> Option<usize>
    where
        F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R,
        T: Input,
        S: ResultSink<R>,
    {
        if !self.mark_each {
            counters.begin(self.first + self.start as u64, false);
        }
        let slots = values.reserve(self.room);
        let mut span = Consumed {
            sink: values,
            written: 0,
            inputs,
            taken: 0,
            _r: std::marker::PhantomData,
        };
        let mut stride = Stride::default();
        loop {
            let (args, available) = span.next_window();
            let k = available.min(self.room - span.written);
            if k == 0 {
                return None;
            }
            let mut i = 0;
            while i < k {
                if counters.cancel.load(Ordering::Relaxed) != 0 {
                    return Some(self.start + span.written);
                }
                let end = k.min(i + stride.len);
                // A stride that ends the span sets the length of none after it: untimed (a
                // one-task chunk reads no clock here).
                let ends_span = span.written + (end - i) >= self.room;
                let t0 = (!ends_span).then(Instant::now);
                for i in i..end {
                    let offset = self.start + span.written;
                    let task = self.first + offset as u64;
                    if self.mark_each {
                        counters.begin(task, self.timed);
                    }
                    // SAFETY: `i < k <= available`: inside the window, and read once (it
                    // counts as taken from here on).
                    let arg = unsafe { args.add(i).read() };
                    span.taken = i + 1;
                    if self.keep {
                        match kept {
                            Some(k) => k.clone_from(&arg),
                            None => *kept = Some(arg.clone()),
                        }
                    }
                    let describe = || match kept.as_ref() {
                        Some(a) => format!("{a:?}"),
                        None if !std::mem::needs_drop::<T>() => {
                            // SAFETY: without drop glue the bits left in the buffer are a
                            // valid value (see `TaskInputs::last`).
                            format!("{:?}", unsafe { &*args.add(i) })
                        }
                        None => source.debug::<T>(offset),
                    };
                    let r = around.task(task, || f(ctx, arg), describe);
                    // SAFETY: `written < room`, the room reserved for this span.
                    unsafe { slots.add(span.written).write(r) };
                    span.written += 1;
                }
                i = end;
                counters.tasks_done.store(
                    self.done0 + (self.start + span.written) as u64,
                    Ordering::Release,
                );
                if let Some(t0) = t0 {
                    stride.took(t0.elapsed());
                }
            }
        }
    }
}

/// How many tasks run between two looks at the counters (publishing the tasks done, checking
/// for cancellation): one while tasks are slow, up to thousands while they take nanoseconds,
/// so that the parent sees progress within a millisecond either way and a trivial task pays
/// for no shared-memory store of its own.
struct Stride {
    len: usize,
}

impl Default for Stride {
    fn default() -> Self {
        Stride { len: 1 }
    }
}

impl Stride {
    const MAX: usize = 4096;

    /// Adjusts to the time the last stride took.
    #[inline(always)]
    fn took(&mut self, t: std::time::Duration) {
        if t < std::time::Duration::from_micros(100) {
            self.len = (self.len * 2).min(Self::MAX);
        } else if t > std::time::Duration::from_millis(1) {
            self.len = (self.len / 2).max(1);
        }
    }
}

/// What a span has taken from its inputs and written to its sink, counted in locals and
/// handed back when the span ends, normally or by a panic. The counts thus live in
/// registers: the input buffer and the sink (behind pointers that a result's write could
/// alias) are touched once per window, not once per task.
struct Consumed<'a, T, R, S: ResultSink<R>> {
    sink: &'a mut S,
    written: usize,
    inputs: &'a mut TaskInputs<T>,
    /// Inputs taken from the current window.
    taken: usize,
    _r: std::marker::PhantomData<fn(R)>,
}

impl<T, R, S: ResultSink<R>> Consumed<'_, T, R, S> {
    /// Hands back what was taken so far and opens the next window of inputs.
    #[inline(always)]
    fn next_window(&mut self) -> (*const T, usize) {
        // SAFETY: `taken` inputs were read out of the current window, once each.
        unsafe { self.inputs.consumed(std::mem::take(&mut self.taken)) };
        self.inputs.window()
    }
}

impl<T, R, S: ResultSink<R>> Drop for Consumed<'_, T, R, S> {
    fn drop(&mut self) {
        // SAFETY: the span read `taken` inputs of the window once each, and wrote exactly
        // `written` results from where `reserve` pointed, within the room it asked for.
        unsafe {
            self.inputs.consumed(self.taken);
            self.sink.commit(self.written);
        }
    }
}
