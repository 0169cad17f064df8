//! `apply` and `apply_async`: single tasks, each with its own function, results delivered
//! through an [`AsyncResult`](crate::AsyncResult) and optional callbacks.
//!
//! While apply tasks are outstanding, a collector thread owns the event stream: it hands
//! queued tasks to workers, completes results, runs callbacks and enforces timeouts.
//!
//! # The collector's life ([`Collector`], under the queue's lock)
//! 1. **Stopped → Running**: the first task submitted starts the collector thread and begins
//!    a call ([`crate::interrupt`]: Ctrl-C is the pool's).
//! 2. **Running → Lingering**: a pass finds nothing queued or outstanding: the call ends
//!    (Ctrl-C is the program's again) and the thread waits, parked on [`Applier::wake`], for
//!    the next task. A thread per burst of tasks cost ~45 µs (start and join) on every
//!    blocking `apply`, which now costs a round trip.
//! 3. **Lingering → Running**: a task submitted begins a call, goes to a worker from the
//!    submitting thread, and wakes the collector to take its result.
//! 4. **→ Stopped**: the end of a run of tasks (a map call, `join`, `terminate`, drop,
//!    `get_insights`) asks the collector to stop ([`Queue::stop`]) and joins it: a lingering
//!    one stops at once, a running one once nothing is outstanding. Ctrl-C stops it too: the
//!    tasks end with `Interrupted` and the pool starts new workers for later tasks.
//!
//! A worker whose last task was quick holds the next one while it runs one, as with a map's
//! chunks, so it does not sit idle while a result travels back and the next task travels out
//! (`apply_async` of a trivial task: 4.4 → 2.4 µs under threads, 7.4 → 4.5 µs under Fork);
//! [`hand`] says who gets a task and how a held task survives the loss of its worker.
//!
//! A run of the collector is a call for [`crate::interrupt`]: it begins when the first task is
//! submitted and ends when the collector exits. Ctrl-C in between terminates the workers and
//! ends every queued and running task with `PoolError::Interrupted` (the bar says
//! "interrupted"), under every start method; the pool starts new workers for later tasks.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::backend::{Command, Event, Waiting};
use crate::counters::monotonic_ns;
use crate::error::{Cause, PoolError};
use crate::job::Data;
use crate::patience::Patience;
use crate::progress::{CallInfo, Outcome, ProgressSink, StatusHandle};
use crate::supervisor::{Delivery, Supervisor};

mod bar;
mod hand;

use bar::Bar;
use hand::send_waiting;

/// Delivers a task's output; returns whether the task succeeded.
pub(crate) type Completion = Box<dyn FnOnce(Result<Data, PoolError>) -> bool + Send>;

pub(crate) struct Pending<Sh, St> {
    pub(crate) cmd: Command<Sh, St>,
    pub(crate) call: u64,
    pub(crate) timeout: Option<Duration>,
    pub(crate) complete: Completion,
}

struct Outstanding<Sh, St> {
    timeout: Option<Duration>,
    complete: Completion,
    /// A copy of the task, kept while it waits in a worker's hand behind another: if that
    /// worker is lost, the task never ran and goes back to the queue (see [`hand`]).
    resend: Option<Command<Sh, St>>,
}

struct Queue<Sh, St> {
    waiting: VecDeque<Pending<Sh, St>>,
    outstanding: HashMap<u64, Outstanding<Sh, St>>,
    collector: Collector,
    /// The end of the run asks the collector to stop (step 4).
    stop: bool,
    bar: Option<Bar>,
}

/// Where the collector thread is in its life (steps 1 to 4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Collector {
    Stopped,
    Running,
    Lingering,
}

pub(crate) struct Applier<Sh, St> {
    sup: Arc<Mutex<Supervisor<Sh, St>>>,
    queue: Arc<Mutex<Queue<Sh, St>>>,
    /// Wakes a lingering collector (a task, or a stop).
    wake: Arc<Condvar>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The number of the next apply task: errors name a task by it ("task #3").
    next_task: AtomicU64,
}

impl<Sh, St> fmt::Debug for Applier<Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applier").finish_non_exhaustive()
    }
}

const TICK: Duration = Duration::from_millis(20);

/// The most the collector spins for an event before it blocks: ~60 µs on the development VM,
/// as the other waiters do.
const SPINS: u32 = 2000;

/// The most events the collector takes in one pass before it looks at timeouts and sends the
/// waiting tasks.
const EVENT_BATCH: usize = 64;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<Sh: Send + Sync + 'static, St: 'static> Applier<Sh, St> {
    pub(crate) fn new(sup: Arc<Mutex<Supervisor<Sh, St>>>) -> Self {
        let queue = Queue {
            waiting: VecDeque::new(),
            outstanding: HashMap::new(),
            collector: Collector::Stopped,
            stop: false,
            bar: None,
        };
        Applier {
            sup,
            queue: Arc::new(Mutex::new(queue)),
            wake: Arc::new(Condvar::new()),
            thread: Mutex::new(None),
            next_task: AtomicU64::new(0),
        }
    }

    /// Starts a progress bar for apply tasks, or resumes a paused one, unless one is drawn
    /// (`start` makes the sink).
    pub(crate) fn ensure_bar(
        &self,
        status: &StatusHandle,
        info: &CallInfo,
        start: impl FnOnce() -> Option<Box<dyn ProgressSink>>,
    ) {
        let mut q = lock(&self.queue);
        if q.bar.as_ref().is_some_and(|b| !b.paused()) {
            return;
        }
        let Some(sink) = start() else { return };
        match q.bar.as_mut() {
            Some(b) => b.resume(sink, info),
            None => q.bar = Some(Bar::begin(sink, status.clone(), info)),
        }
    }

    /// A number for a new apply task: 0, 1, 2... in the order tasks are submitted to this pool.
    pub(crate) fn number_task(&self) -> u64 {
        self.next_task.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a task and makes sure the collector runs.
    pub(crate) fn submit(&self, p: Pending<Sh, St>) {
        let mut q = lock(&self.queue);
        if let Some(b) = q.bar.as_mut() {
            b.submitted();
        }
        q.waiting.push_back(p);
        if q.collector == Collector::Lingering {
            // Step 3.
            q.collector = Collector::Running;
            drop(q);
            let unsent: Vec<_> = {
                let mut s = lock(&self.sup);
                s.backend.begin_call();
                send_waiting(&mut s, &mut lock(&self.queue)).collect()
            };
            self.wake.notify_all();
            self.fail_unsent(unsent);
        } else if q.collector == Collector::Running && q.waiting.len() == 1 {
            // The collector may be waiting for the workers' events (up to its tick) while a
            // worker is idle: send the task from here, unless the collector holds the
            // supervisor (it is busy, and sends the task in this pass or the next). Behind
            // other queued tasks, it goes out when a worker's result comes.
            drop(q);
            let unsent: Vec<_> = match self.sup.try_lock() {
                Ok(mut s) => send_waiting(&mut s, &mut lock(&self.queue)).collect(),
                Err(_) => Vec::new(),
            };
            self.fail_unsent(unsent);
        } else if q.collector == Collector::Stopped {
            // Step 1.
            q.collector = Collector::Running;
            drop(q);
            // From here to the collector's exit, Ctrl-C is the pool's (it ends the tasks).
            lock(&self.sup).backend.begin_call();
            if let Some(old) = lock(&self.thread).take() {
                let _ = old.join();
            }
            let (sup, queue, wake) = (self.sup.clone(), self.queue.clone(), self.wake.clone());
            let spawned = std::thread::Builder::new()
                .name("pool-apply".into())
                .spawn(move || collect(&sup, &queue, &wake));
            match spawned {
                Ok(handle) => *lock(&self.thread) = Some(handle),
                // The OS refused a thread: nothing will run these tasks, so fail them.
                Err(e) => {
                    lock(&self.sup).backend.end_call();
                    let waiting: Vec<Completion> = {
                        let mut q = lock(&self.queue);
                        q.collector = Collector::Stopped;
                        q.waiting.drain(..).map(|p| p.complete).collect()
                    };
                    let kind = e.kind();
                    let message = e.to_string();
                    for complete in waiting {
                        complete(Err(PoolError::backend(
                            "cannot start the apply collector thread",
                            std::io::Error::new(kind, message.clone()),
                        )));
                    }
                }
            }
        }
    }
}

impl<Sh, St> Applier<Sh, St> {
    /// Blocks until no apply task is outstanding, and stops the collector (step 4).
    pub(crate) fn wait_idle(&self) {
        let Some(h) = lock(&self.thread).take() else {
            return;
        };
        lock(&self.queue).stop = true;
        self.wake.notify_all();
        let _ = h.join();
        lock(&self.queue).stop = false;
    }

    /// Ends the tasks that could not be sent, with why.
    fn fail_unsent(&self, unsent: Vec<(Completion, PoolError)>) {
        for (complete, e) in unsent {
            let ok = complete(Err(e));
            if let Some(b) = lock(&self.queue).bar.as_mut() {
                b.count(ok);
            }
        }
    }

    /// Ends the run of apply tasks: waits for its tasks, then finishes its bar. Map calls,
    /// `join`, `terminate` and drop end a run; the next `apply_async` begins one.
    pub(crate) fn end_run(&self) {
        self.wait_idle();
        let bar = lock(&self.queue).bar.take();
        if let Some(b) = bar {
            b.finish(&Outcome::Done);
        }
    }

    /// Fails every outstanding task with `Terminated` and ends the run.
    pub(crate) fn cancel_all(&self) {
        let completions: Vec<Completion> = {
            let mut q = lock(&self.queue);
            let mut c: Vec<Completion> = q.waiting.drain(..).map(|p| p.complete).collect();
            c.extend(q.outstanding.drain().map(|(_, o)| o.complete));
            c
        };
        for c in completions {
            c(Err(PoolError::Terminated));
        }
        self.end_run();
    }

    /// Whether apply tasks are queued or running.
    pub(crate) fn busy(&self) -> bool {
        let q = lock(&self.queue);
        !q.waiting.is_empty() || !q.outstanding.is_empty()
    }
}

/// The collector thread's loop.
fn collect<Sh, St>(sup: &Mutex<Supervisor<Sh, St>>, queue: &Mutex<Queue<Sh, St>>, wake: &Condvar) {
    let events = lock(sup).backend.events().clone();
    let mut patience = Patience::new(SPINS);
    // The first pass sends the task that started the collector, without waiting for an event.
    let mut ev = None;
    loop {
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
                    Delivery::Chunk { call, output, .. } => match q.outstanding.remove(&call) {
                        Some(o) => done.push((o.complete, Ok(output))),
                        None => crate::shared_bytes::discard(output, s.backend.shares_heap()),
                    },
                    Delivery::Lost {
                        chunks,
                        current,
                        failure,
                    } => hand::take_back(&mut q, &mut done, chunks, current, &failure),
                    Delivery::HookFailed(f) => fail_all(&mut q, &mut done, &PoolError::from(f)),
                }
            }
            if !interrupted && s.revive().is_err() {
                fail_all(&mut q, &mut done, &PoolError::Terminated);
            }
            done.extend(send_waiting(&mut s, &mut q).map(|(c, e)| (c, Err(e))));
            let idle = q.waiting.is_empty() && q.outstanding.is_empty();
            if idle {
                // Step 2, or step 4.
                q.collector = if interrupted || q.stop {
                    Collector::Stopped
                } else {
                    Collector::Lingering
                };
                s.backend.end_call();
            }
            // Ctrl-C ends the run of tasks; otherwise the bar waits for more ([`bar`]).
            let interrupted_bar = if idle && interrupted {
                q.bar.take()
            } else {
                None
            };
            drop(q);
            drop(s);
            if !done.is_empty() {
                crate::call_end::run();
            }
            // Completions (and the user's callbacks) run with no lock held.
            let oks: Vec<bool> = done.into_iter().map(|(c, r)| c(r)).collect();
            if let Some(b) = interrupted_bar {
                // Interrupted tasks did not run to an end: they are not counted.
                b.finish(&Outcome::Interrupted);
                return;
            }
            let mut q = lock(queue);
            // A task submitted since this pass found the queue idle goes on with the run.
            let paused = idle && q.collector != Collector::Running;
            if let Some(b) = q.bar.as_mut() {
                oks.iter().for_each(|&ok| b.count(ok));
                if paused {
                    b.pause();
                } else {
                    b.update(false);
                }
            }
            if paused {
                let mut q = wake
                    .wait_while(q, |q| q.collector == Collector::Lingering && !q.stop)
                    .unwrap_or_else(|e| e.into_inner());
                if q.collector != Collector::Running {
                    // Step 4 (asked to stop while lingering, or stopped at this pass).
                    q.collector = Collector::Stopped;
                    return;
                }
                // Step 3: the submitting thread sent the task; its result is an event.
                drop(q);
                ev = None;
                continue;
            }
        }
        ev = next_event(sup, &events, &mut patience);
    }
}

/// The next event within a tick: one already queued, else one that comes while this thread
/// waits as the back end says ([`Backend::waiting`]: spinning or yielding on the channel with
/// no lock held, or the back end reading the workers' rings from this thread,
/// [`Backend::poll`], with the supervisor locked for that spin), else the first to come,
/// waited for with no lock held and the listening handed back ([`Backend::park`]).
///
/// [`Backend::poll`]: crate::backend::Backend::poll
/// [`Backend::park`]: crate::backend::Backend::park
/// [`Backend::waiting`]: crate::backend::Backend::waiting
fn next_event<Sh, St>(
    sup: &Mutex<Supervisor<Sh, St>>,
    events: &Receiver<Event>,
    patience: &mut Patience,
) -> Option<Event> {
    if let Ok(ev) = events.try_recv() {
        return Some(ev);
    }
    let mut s = lock(sup);
    let waiting = s.backend.waiting();
    let polled = waiting == Waiting::Poll && s.backend.poll(true);
    drop(s);
    let came = match waiting {
        Waiting::Poll => polled,
        Waiting::Spin => patience.spin_until(|| !events.is_empty()),
        Waiting::Yield => crate::patience::yield_until(|| !events.is_empty()),
        Waiting::Block => false,
    };
    if came && let Ok(ev) = events.try_recv() {
        return Some(ev);
    }
    lock(sup).backend.park();
    events.recv_timeout(TICK).ok()
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
