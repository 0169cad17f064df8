//! `apply` and `apply_async`: single tasks, each with its own function, results delivered
//! through an [`AsyncResult`](crate::AsyncResult) and optional callbacks.
//!
//! While apply tasks are outstanding, a collector thread owns the event stream
//! ([`collector`]): it hands queued tasks to workers, completes results, runs callbacks and
//! enforces timeouts. It exits when nothing is outstanding; map calls wait for that before they
//! start.
//!
//! A run of the collector is a call for [`crate::interrupt`]: it begins when the first task is
//! submitted and ends when the collector exits. Ctrl-C in between terminates the workers and
//! ends every queued and running task with `PoolError::Interrupted` (the bar says
//! "interrupted"), under every start method; the pool starts new workers for later tasks.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::backend::Command;
use crate::error::PoolError;
use crate::job::Data;
use crate::progress::{CallInfo, Outcome, ProgressSink, StatusHandle};
use crate::supervisor::Supervisor;

mod collector;
use collector::collect;

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
    /// For a task sent behind a running one: its command again, should the worker be lost
    /// before the task began (see `behind` in [`collector`]).
    resend: Option<Command<Sh, St>>,
}

struct Queue<Sh, St> {
    waiting: VecDeque<Pending<Sh, St>>,
    outstanding: HashMap<u64, Outstanding<Sh, St>>,
    running: bool,
    bar: Option<Bar>,
}

/// The progress bar of a run of apply tasks: its total grows as tasks are submitted; it ends
/// when none is left.
struct Bar {
    sink: Box<dyn ProgressSink>,
    status: StatusHandle,
    submitted: u64,
    done: u64,
    failed: u64,
    last: Instant,
}

impl Bar {
    fn count(&mut self, ok: bool) {
        self.done += 1;
        self.failed += u64::from(!ok);
    }

    fn update(&mut self, force: bool) {
        self.status.set_total(self.submitted);
        self.status.set(self.submitted, 0, self.done, self.failed);
        if force || self.last.elapsed() >= TICK * 2 {
            self.last = Instant::now();
            self.sink.update(&self.status.snapshot());
        }
    }

    fn finish(mut self, outcome: &Outcome) {
        self.update(true);
        self.status.end();
        self.sink.finish(&self.status.snapshot(), outcome);
    }
}

pub(crate) struct Applier<Sh, St> {
    sup: Arc<Mutex<Supervisor<Sh, St>>>,
    queue: Arc<Mutex<Queue<Sh, St>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The number of the next apply task: errors name a task by it ("task #3").
    next_task: AtomicU64,
    /// Wakes the collector when a task is queued while it waits for events.
    wake: (Sender<()>, Receiver<()>),
}

impl<Sh, St> fmt::Debug for Applier<Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applier").finish_non_exhaustive()
    }
}

const TICK: Duration = Duration::from_millis(20);

/// The most events the collector takes in one pass before it looks at timeouts and sends the
/// waiting tasks.
const EVENT_BATCH: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<Sh: Send + Sync + 'static, St: 'static> Applier<Sh, St> {
    pub(crate) fn new(sup: Arc<Mutex<Supervisor<Sh, St>>>) -> Self {
        let queue = Queue {
            waiting: VecDeque::new(),
            outstanding: HashMap::new(),
            running: false,
            bar: None,
        };
        Applier {
            sup,
            queue: Arc::new(Mutex::new(queue)),
            thread: Mutex::new(None),
            next_task: AtomicU64::new(0),
            wake: bounded(1),
        }
    }

    /// Starts a progress bar for apply tasks unless one runs (`start` makes the sink).
    pub(crate) fn ensure_bar(
        &self,
        status: &StatusHandle,
        info: &CallInfo,
        start: impl FnOnce() -> Option<Box<dyn ProgressSink>>,
    ) {
        let mut q = lock(&self.queue);
        if q.bar.is_none()
            && let Some(mut sink) = start()
        {
            status.begin(None);
            sink.start(info);
            q.bar = Some(Bar {
                sink,
                status: status.clone(),
                submitted: 0,
                done: 0,
                failed: 0,
                last: Instant::now(),
            });
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
            b.submitted += 1;
        }
        q.waiting.push_back(p);
        if q.running {
            // One wake-up pending is enough: the collector looks at the whole queue.
            let _ = self.wake.0.try_send(());
        } else {
            q.running = true;
            drop(q);
            // From here to the collector's exit, Ctrl-C is the pool's (it ends the tasks).
            lock(&self.sup).backend.begin_call();
            if let Some(old) = lock(&self.thread).take() {
                let _ = old.join();
            }
            let (sup, queue, wake) = (self.sup.clone(), self.queue.clone(), self.wake.1.clone());
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
                        q.running = false;
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
    /// Blocks until no apply task is outstanding.
    pub(crate) fn wait_idle(&self) {
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
    }

    /// Fails every outstanding task with `Terminated`.
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
        self.wait_idle();
    }

    /// Whether apply tasks are queued or running.
    pub(crate) fn busy(&self) -> bool {
        let q = lock(&self.queue);
        !q.waiting.is_empty() || !q.outstanding.is_empty()
    }

    pub(crate) fn shutdown(&self) {
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
    }
}
