//! The collector thread: while apply tasks are outstanding it owns the pool's event stream,
//! completes results, enforces each task's timeout and sends queued tasks to workers (an idle
//! one, or one whose tasks are quick, behind its running task: see [`behind`]).

use std::sync::Mutex;
use std::time::Duration;

use crossbeam_channel::{Receiver, select};

use super::{Completion, EVENT_BATCH, Outstanding, Pending, Queue, TICK, lock};
use crate::backend::{Command, Event};
use crate::counters::monotonic_ns;
use crate::error::{Cause, PoolError};
use crate::job::Data;
use crate::progress::Outcome;
use crate::supervisor::{Delivery, Supervisor};

/// The collector thread's loop.
pub(super) fn collect<Sh, St>(
    sup: &Mutex<Supervisor<Sh, St>>,
    queue: &Mutex<Queue<Sh, St>>,
    wake: &Receiver<()>,
) {
    let events = lock(sup).backend.events().clone();
    loop {
        let ev = next_event(sup, &events, wake);
        let mut done: Vec<(Completion, Result<Data, PoolError>)> = Vec::new();
        {
            let mut s = lock(sup);
            let mut q = lock(queue);
            let mut deliveries = Vec::new();
            let interrupted = s.backend.interrupted();
            if interrupted {
                s.terminate();
                let mut all: Vec<Completion> =
                    q.outstanding.drain().map(|(_, o)| o.complete).collect();
                all.extend(q.waiting.drain(..).map(|p| p.complete));
                done.extend(all.into_iter().map(|c| (c, Err(PoolError::Interrupted))));
            } else {
                // The events already queued too, up to a batch: with many short tasks, one
                // event per pass would leave the workers waiting on this thread.
                let queued = std::iter::from_fn(|| events.try_recv().ok()).take(EVENT_BATCH);
                for ev in ev.into_iter().chain(queued) {
                    match s.handle(ev) {
                        Ok(Some(d)) => deliveries.push(d),
                        Ok(None) => {}
                        Err(e) => fail_all(&mut q, &mut done, &e),
                    }
                }
            }
            // Timeouts: each apply task has its own.
            let now = monotonic_ns();
            for w in 0..s.n_jobs() {
                let Some(c) = s.inflight(w).front().copied() else {
                    continue;
                };
                let Some(limit) = q.outstanding.get(&c.call).and_then(|o| o.timeout) else {
                    continue;
                };
                let Some((_, started)) = s.counters(w).current() else {
                    continue;
                };
                if started != 0 && Duration::from_nanos(now.saturating_sub(started)) > limit {
                    deliveries.push(s.lose(
                        w,
                        Cause::Timeout(limit),
                        format!("the task ran longer than {limit:?}"),
                    ));
                }
            }
            for d in deliveries {
                match d {
                    Delivery::Chunk { call, output, .. } => {
                        if let Some(o) = q.outstanding.remove(&call) {
                            done.push((o.complete, Ok(output)));
                        }
                    }
                    Delivery::Lost {
                        chunks,
                        current,
                        failure,
                    } => {
                        let mut again = Vec::new();
                        for c in chunks {
                            let Some(o) = q.outstanding.remove(&c.call) else {
                                continue;
                            };
                            match o.resend {
                                // Sent behind the task that was lost, never begun: queued again.
                                Some(cmd) if current != Some(c.first) => again.push(Pending {
                                    cmd,
                                    call: c.call,
                                    timeout: o.timeout,
                                    complete: o.complete,
                                }),
                                _ => done.push((o.complete, Err(failure.clone().into()))),
                            }
                        }
                        for p in again.into_iter().rev() {
                            q.waiting.push_front(p);
                        }
                    }
                    Delivery::HookFailed(f) => fail_all(&mut q, &mut done, &PoolError::from(f)),
                }
            }
            if !interrupted && s.revive().is_err() {
                fail_all(&mut q, &mut done, &PoolError::Terminated);
            }
            while let Some(p) = q.waiting.pop_front() {
                let (w, resend) = match s.pick_idle() {
                    Some(w) => (w, None),
                    None => match (s.pick_behind_quick(), behind(&p.cmd)) {
                        (Some(w), Some(copy)) => (w, Some(copy)),
                        _ => {
                            q.waiting.push_front(p);
                            break;
                        }
                    },
                };
                match s.dispatch(w, p.cmd) {
                    Ok(()) => {
                        q.outstanding.insert(
                            p.call,
                            Outstanding {
                                timeout: p.timeout,
                                complete: p.complete,
                                resend,
                            },
                        );
                    }
                    Err(e) => done.push((p.complete, Err(e))),
                }
            }
            let idle = q.waiting.is_empty() && q.outstanding.is_empty();
            if idle {
                q.running = false;
                s.backend.end_call();
            }
            let bar = if idle { q.bar.take() } else { None };
            drop(q);
            drop(s);
            // Completions (and the user's callbacks) run with no lock held.
            let oks: Vec<bool> = done.into_iter().map(|(c, r)| c(r)).collect();
            if idle {
                if let Some(mut b) = bar {
                    // Interrupted tasks did not run to an end: they are not counted.
                    if !interrupted {
                        oks.iter().for_each(|&ok| b.count(ok));
                    }
                    b.finish(if interrupted {
                        &Outcome::Interrupted
                    } else {
                        &Outcome::Done
                    });
                }
                return;
            }
            if let Some(b) = lock(queue).bar.as_mut() {
                oks.iter().for_each(|&ok| b.count(ok));
                b.update(false);
            }
        }
    }
}

/// With no worker idle, a task may go to one that runs a task already when that worker's
/// tasks are quick (under [`crate::chunking::QUICK_CHUNK`], as a map's chunks may): it then
/// waits in the worker's queue instead of the worker waiting for this thread between tasks.
/// Never behind a slower worker, where it could wait long after another frees up. The task
/// keeps a copy of its command, sent again should the worker be lost before the task began;
/// only encoded inputs can be copied, so thread workers get tasks only when idle.
fn behind<Sh, St>(cmd: &Command<Sh, St>) -> Option<Command<Sh, St>> {
    match cmd {
        Command::Chunk {
            job,
            call,
            first,
            len,
            input: Data::Bytes(bytes),
            settings,
        } => Some(Command::Chunk {
            job: job.clone(),
            call: *call,
            first: *first,
            len: *len,
            input: Data::Bytes(bytes.clone()),
            settings: *settings,
        }),
        _ => None,
    }
}

/// The next event within a tick: one already queued, else one the workers have just sent
/// (the back end reads their rings from this thread when it may, [`Backend::poll`], with the
/// supervisor locked for a few microseconds at most), else the first to come, waited for with
/// no lock held and the listening handed back ([`Backend::park`]). `None` after the tick, or
/// at once when a task is queued (`wake`): it may go to a worker now.
///
/// [`Backend::poll`]: crate::backend::Backend::poll
/// [`Backend::park`]: crate::backend::Backend::park
fn next_event<Sh, St>(
    sup: &Mutex<Supervisor<Sh, St>>,
    events: &Receiver<Event>,
    wake: &Receiver<()>,
) -> Option<Event> {
    if let Ok(ev) = events.try_recv() {
        return Some(ev);
    }
    if lock(sup).backend.poll(true)
        && let Ok(ev) = events.try_recv()
    {
        return Some(ev);
    }
    lock(sup).backend.park();
    select! {
        recv(events) -> ev => ev.ok(),
        recv(wake) -> _ => None,
        default(TICK) => None,
    }
}

fn fail_all<Sh, St>(
    q: &mut Queue<Sh, St>,
    done: &mut Vec<(Completion, Result<Data, PoolError>)>,
    e: &PoolError,
) {
    let msg = e.to_string();
    for (_, o) in q.outstanding.drain() {
        done.push((
            o.complete,
            Err(PoolError::backend(
                msg.clone(),
                std::io::ErrorKind::Other.into(),
            )),
        ));
    }
    for p in q.waiting.drain(..) {
        done.push((
            p.complete,
            Err(PoolError::backend(
                msg.clone(),
                std::io::ErrorKind::Other.into(),
            )),
        ));
    }
}
