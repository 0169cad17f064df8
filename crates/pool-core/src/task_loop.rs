//! The per-task loop, the hot path of every back end, and where a failing task's arguments
//! come from.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::context::WorkerContext;
use crate::error::{Cause, Failure, Phase};
use crate::job::{ChunkOutput, Input, TaskEnv};
use crate::panic;
use crate::timing::Recorder;

/// Where a task's arguments are found after the task consumed them (for error reports,
/// retries and the slowest-task list of insights).
pub(crate) enum ArgSource<'a> {
    /// Each argument is cloned while its task runs (in-process inputs).
    Cloned,
    /// The chunk's encoded inputs, decoded again on demand: nothing is copied per task.
    Encoded(&'a [u8]),
}

impl ArgSource<'_> {
    /// The argument at `offset` in the chunk, decoded again.
    pub(crate) fn decode<T: Input>(&self, offset: usize) -> Option<T> {
        match self {
            ArgSource::Cloned => None,
            ArgSource::Encoded(b) => postcard::from_bytes::<Vec<T>>(b)
                .ok()?
                .into_iter()
                .nth(offset),
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
/// resumes with the next task in a fresh one. Each task's arguments are kept (cloned) until it
/// returns, so a failure can name them.
pub(crate) fn run_tasks<Sh, St, F, T, R>(
    f: &F,
    ctx: &mut WorkerContext<'_, Sh, St>,
    first: u64,
    inputs: Vec<T>,
    source: &ArgSource<'_>,
    env: &mut TaskEnv<'_>,
) -> ChunkOutput<R>
where
    F: Fn(&mut WorkerContext<'_, Sh, St>, T) -> R,
    T: Input,
{
    let n = inputs.len();
    let mut out = ChunkOutput {
        values: Vec::with_capacity(n),
        failures: Vec::new(),
        skipped: 0,
    };
    let s = env.settings;
    let counters = env.counters;
    let mut done = counters.tasks_done.load(Ordering::Relaxed);
    let mut iter = inputs.into_iter().enumerate();
    let keep = matches!(source, ArgSource::Cloned);
    // The task in hand (its offset), and its arguments when they are kept by cloning.
    let mut held: (usize, Option<T>) = (0, None);
    loop {
        let run = panic::catch(|| {
            for (offset, arg) in iter.by_ref() {
                if counters.cancel.load(Ordering::Relaxed) != 0 {
                    return Some(offset);
                }
                let task = first + offset as u64;
                counters.begin(task, s.timed);
                let timed = env.recorder.as_deref_mut().is_some_and(Recorder::sample);
                let started = timed.then(Instant::now);
                held = (offset, keep.then(|| arg.clone()));
                out.values.push(f(ctx, arg));
                match (env.recorder.as_deref_mut(), started) {
                    (Some(rec), Some(t0)) => rec.task(task, t0.elapsed(), || match &held.1 {
                        Some(a) => format!("{a:?}"),
                        None => source.debug::<T>(offset),
                    }),
                    (Some(rec), None) => rec.untimed_task(),
                    _ => {}
                }
                done += 1;
                counters.end(done, s.timed);
            }
            None
        });
        match run {
            Ok(None) => break,
            Ok(Some(cancelled_at)) => {
                out.skipped = (n - cancelled_at) as u32;
                break;
            }
            Err(caught) => {
                let (offset, kept) = (held.0, held.1.take());
                let arg = kept.or_else(|| source.decode::<T>(offset));
                let task = first + offset as u64;
                let mut attempts = 1;
                let mut last = caught;
                let mut recovered = None;
                while let (true, Some(a)) = (attempts <= s.retries, arg.as_ref()) {
                    attempts += 1;
                    match panic::catch(|| f(ctx, a.clone())) {
                        Ok(r) => {
                            recovered = Some(r);
                            break;
                        }
                        Err(c) => last = c,
                    }
                }
                done += 1;
                counters.end(done, s.timed);
                match recovered {
                    Some(r) => out.values.push(r),
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
