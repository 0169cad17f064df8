//! The thread back end (`StartMethod::Threading`): each worker is an OS thread with its own
//! command channel; all workers share one event channel to the parent.
//!
//! A thread cannot be killed. A worker whose task times out is *abandoned*: its channel is
//! closed, its later events are dropped, and it ends by itself when the stuck task returns (the
//! pool never waits for it). A task that never returns keeps its thread until the process
//! exits; use a process start method when that matters.
//!
//! While the workers leave the caller a core (fewer workers than cores), a worker waiting for
//! its next command and the caller waiting for results spin first, as long as their recent
//! waits show it pays ([`crate::patience`]): one-task chunks then cost no sleep and no futex
//! wake-up each (issue #17). Otherwise a spinning thread would take the core of a working one,
//! and they sleep at once, except on a single CPU (an affinity mask, a cgroup quota), where
//! they yield a few times first ([`crate::patience::yield_until`]): the thread they wait for
//! then runs at once, and the caller and its worker hand the CPU to each other without a
//! futex wake-up.
//!
//! Each worker writes its own counters, fresh ones carrying its slot's totals: a thread left
//! running writes to its own when its task ends, never over those of the worker that took its
//! slot (which would hide that worker's task from the timeout check, or move the progress of
//! the next call).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::backend::{Backend, Command, Event, Unsent, Waiting, WorkerLink, WorkerSetup};
use crate::counters::{CounterRef, WorkerCounters};
use crate::error::PoolError;
use crate::job::Wire;
use crate::patience::Patience;
use crate::worker::run_worker;

/// The most a waiting thread spins: ~60 µs on the development VM, as a worker process does.
const SPINS: u32 = 2000;

struct Slot<Sh, St> {
    commands: Sender<Command<Sh, St>>,
    handle: JoinHandle<()>,
    cancelled: Arc<AtomicBool>,
}

/// Workers as threads of this process.
pub struct ThreadBackend<Sh, St> {
    /// The counters of each slot's current worker.
    counters: Vec<Arc<WorkerCounters>>,
    slots: Vec<Option<Slot<Sh, St>>>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    abandoned: Vec<JoinHandle<()>>,
    /// Whether waiting threads spin first (fewer workers than cores).
    spin: bool,
    /// Whether waiting threads yield first (a single CPU).
    yields: bool,
    /// How long the caller spins for an event before it sleeps.
    patience: Patience,
}

impl<Sh, St> fmt::Debug for ThreadBackend<Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadBackend")
            .field("slots", &self.slots.len())
            .field("abandoned", &self.abandoned.len())
            .finish()
    }
}

impl<Sh, St> ThreadBackend<Sh, St> {
    /// A back end with `n_jobs` worker slots.
    pub fn new(n_jobs: usize) -> Self {
        let (events_tx, events_rx) = unbounded();
        let cpus = crate::cpu_count();
        ThreadBackend {
            counters: (0..n_jobs).map(|_| Arc::default()).collect(),
            slots: (0..n_jobs).map(|_| None).collect(),
            events_tx,
            events_rx,
            abandoned: Vec::new(),
            spin: n_jobs < cpus,
            yields: cpus == 1,
            patience: Patience::new(SPINS),
        }
    }
}

struct ThreadLink<Sh, St> {
    commands: Receiver<Command<Sh, St>>,
    /// How long it spins for a command before it sleeps; `None`: it sleeps at once, or
    /// after yielding a few times when `yields`.
    patience: Option<Patience>,
    yields: bool,
    events: Sender<Event>,
    cancelled: Arc<AtomicBool>,
}

impl<Sh, St> WorkerLink<Sh, St> for ThreadLink<Sh, St> {
    fn recv(&mut self) -> Option<Command<Sh, St>> {
        if self.cancelled.load(Ordering::Acquire) {
            return None;
        }
        if let Some(p) = self.patience.as_mut() {
            p.spin_until(|| !self.commands.is_empty());
        } else if self.yields {
            crate::patience::yield_until(|| !self.commands.is_empty());
        }
        self.commands.recv().ok()
    }

    fn send(&mut self, event: Event) {
        if !self.cancelled.load(Ordering::Acquire) {
            let _ = self.events.send(event);
        }
    }
}

impl<Sh, St> Backend<Sh, St> for ThreadBackend<Sh, St>
where
    Sh: Send + Sync + 'static,
    St: 'static,
{
    fn wire(&self) -> Wire {
        Wire::Local
    }

    fn counters(&self, slot: usize) -> &WorkerCounters {
        &self.counters[slot]
    }

    fn counters_for_new_worker(&mut self, slot: usize) -> CounterRef {
        let last = &self.counters[slot];
        let fresh = WorkerCounters::default();
        fresh
            .tasks_done
            .store(last.tasks_done.load(Ordering::Acquire), Ordering::Relaxed);
        fresh
            .tasks_failed
            .store(last.tasks_failed.load(Ordering::Relaxed), Ordering::Relaxed);
        self.counters[slot] = Arc::new(fresh);
        CounterRef::new(self.counters[slot].clone(), 0)
    }

    fn start_worker(&mut self, setup: WorkerSetup<Sh, St>) -> Result<(), PoolError> {
        let id = setup.id;
        if let Some(old) = self.slots[id].take() {
            // The previous worker said `Exited`; it is returning from its loop.
            drop(old.commands);
            let _ = old.handle.join();
        }
        let (tx, rx) = unbounded();
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut link = ThreadLink {
            commands: rx,
            patience: self.spin.then(|| Patience::new(SPINS)),
            yields: self.yields,
            events: self.events_tx.clone(),
            cancelled: cancelled.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("pool-worker-{id}"))
            .spawn(move || run_worker(setup, &mut link))
            .map_err(|e| PoolError::backend(format!("cannot start worker thread {id}"), e))?;
        self.slots[id] = Some(Slot {
            commands: tx,
            handle,
            cancelled,
        });
        Ok(())
    }

    fn send(&mut self, slot: usize, cmd: Command<Sh, St>) -> Result<(), Unsent<Sh, St>> {
        let Some(s) = self.slots[slot].as_ref() else {
            let e = PoolError::backend(
                format!("worker {slot} is not running"),
                std::io::ErrorKind::NotConnected.into(),
            );
            return Err(Unsent::returned(e, cmd));
        };
        s.commands.send(cmd).map_err(|refused| {
            let e = PoolError::backend(
                format!("worker {slot} has stopped"),
                std::io::ErrorKind::BrokenPipe.into(),
            );
            Unsent::returned(e, refused.into_inner())
        })
    }

    fn events(&self) -> &Receiver<Event> {
        &self.events_rx
    }

    fn poll(&mut self, spin: bool) -> bool {
        let events = &self.events_rx;
        match self.waiting() {
            Waiting::Spin if spin => self.patience.spin_until(|| !events.is_empty()),
            Waiting::Yield if spin => crate::patience::yield_until(|| !events.is_empty()),
            _ => !events.is_empty(),
        }
    }

    fn waiting(&self) -> Waiting {
        if self.spin {
            Waiting::Spin
        } else if self.yields {
            Waiting::Yield
        } else {
            Waiting::Block
        }
    }

    fn kill(&mut self, slot: usize) {
        if let Some(s) = self.slots[slot].take() {
            s.cancelled.store(true, Ordering::Release);
            drop(s.commands);
            self.abandoned.push(s.handle);
        }
    }

    fn shutdown(&mut self, grace: Duration) {
        for s in self.slots.iter().flatten() {
            let _ = s.commands.send(Command::Exit);
        }
        let deadline = Instant::now() + grace;
        for s in self.slots.iter_mut().filter_map(Option::take) {
            drop(s.commands);
            while !s.handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
            if s.handle.is_finished() {
                let _ = s.handle.join();
            }
            // else: a task that never returns; the thread is detached (see module docs).
        }
        // Abandoned threads are never waited for: those that ended are reaped, the others
        // are left to end by themselves.
        let (ended, running): (Vec<_>, Vec<_>) =
            self.abandoned.drain(..).partition(|h| h.is_finished());
        self.abandoned = running;
        for h in ended {
            let _ = h.join();
        }
    }
}

impl<Sh, St> Drop for ThreadBackend<Sh, St> {
    fn drop(&mut self) {
        for s in self.slots.iter().flatten() {
            s.cancelled.store(true, Ordering::Release);
        }
    }
}
