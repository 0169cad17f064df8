//! The process back end of `pool_core`: workers as forked (`Fork`) or re-executed (`Spawn`)
//! processes, each with a shared-memory link, its counters in a shared block, a reader thread
//! and a watched pidfd.
//!
//! Fork: workers are forked from the launcher thread and inherit the shared objects, the state
//! factory, the hooks and every job announced so far (copy-on-write, nothing serialized). A job
//! announced later reaches a live worker only if its function captures nothing (rebuilt from
//! its `fn` offset); otherwise the pool restarts the workers for it.
//! Spawn: workers are fresh executions of this binary (`pool::entry()` first in `main`); the
//! state factory, hooks and task functions must capture nothing, and the shared objects are
//! serialized once per worker.
//! Forkserver: as Spawn, but workers are forks of the forkserver (`crate::forkserver`)
//! instead of fresh executions.
//!
//! Both speak `pool_wire`'s protocol; each start method is a launch strategy (the `strategy`
//! module), so this file holds what they share: slots, links, readers, death watching, and
//! who listens to the workers (`duty`: the caller's thread itself, while it waits for results
//! on a pool whose workers do not outnumber the cores; the reader threads otherwise).

mod counters;
mod duty;
mod forkserved;
mod inbox;
mod launcher;
mod link;
mod reader;
mod spawned;
mod strategy;

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use pool_core::patience::Patience;
use pool_core::{
    Backend, Command, CounterBlock, CounterRef, Data, ErasedJob, Event, PoolError, SharedObjects,
    Unsent, Wire, WorkerCounters, WorkerSetup,
};

use pool_wire::parent::Dispatch;

pub use self::duty::Duty;

use self::counters::SharedCounters;
use self::inbox::{Inbox, Took, Wait};
use self::launcher::Launcher;
use self::reader::{Reader, lock};
use self::strategy::{ForkLaunch, Launch, SpawnLaunch, Start};
use crate::channel::{Link, MsgSender};
use crate::process::WorkerProcess;
use crate::ring::{RingCloser, WaitPolicy};
use crate::stderr::StderrTee;
use crate::watcher::DeathWatcher;

/// Set in worker processes of daemon pools (the default), which may not start process pools.
static DAEMON_WORKER: AtomicBool = AtomicBool::new(false);

/// Whether this process is a worker of a daemon pool.
pub fn in_daemon_worker() -> bool {
    DAEMON_WORKER.load(Ordering::Relaxed)
}

/// Bytes per direction of each worker's link.
const LINK_CAPACITY: usize = 4 << 20;

/// The caller's thread takes the listening duty back only when its last sleep on the events
/// channel was shorter than this: results then come back faster than two thread wake-ups, and
/// polling saves them. After a longer sleep (chunks of a millisecond and more) the readers keep
/// the duty: taking it back and handing it over again would cost each chunk two more.
const WORTH_POLLING: Duration = Duration::from_micros(100);

/// Which kind of process workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessMethod {
    /// `fork()`: copy-on-write, any closure.
    Fork,
    /// Re-execute this binary: closures must capture nothing.
    Spawn,
    /// Forks of the forkserver: closures must capture nothing, as under `Spawn`.
    Forkserver,
}

struct Slot {
    tx: MsgSender,
    /// Its messages, read by its reader or by the caller's thread (`duty.rs`).
    inbox: Arc<Mutex<Inbox>>,
    /// Its inbox's ring, to nudge its reader out of a wait.
    inbox_ring: RingCloser,
    process: Arc<Mutex<WorkerProcess>>,
    killed: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    token: u64,
    /// Its ledger of shared-heap references (Fork), credited as commands carrying handles
    /// are sent to it, drained once it is reaped.
    ledger: Option<u32>,
    /// Encodes its commands; knows which calls it can resolve and which chunks it owes.
    dispatch: Dispatch,
}

/// Worker processes for a pool.
pub struct ProcessBackend<Sh, St> {
    method: ProcessMethod,
    counters: Arc<SharedCounters>,
    slots: Vec<Option<Slot>>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    jobs: HashMap<u64, Arc<dyn ErasedJob<Sh, St>>>,
    links: Arc<Mutex<HashMap<u64, Link>>>,
    watcher: DeathWatcher,
    /// The workers' stderr, passed through, with each one's last line for its death report.
    stderr: Arc<StderrTee>,
    launcher: Launcher,
    strategy: Box<dyn Launch<Sh, St>>,
    daemon: bool,
    /// Who reads the workers' rings, and whether the caller's thread may (`duty.rs`): when
    /// the workers do not outnumber the cores.
    duty: Arc<Duty>,
    caller_polls: bool,
    /// How long the caller's thread spins for a result before it sleeps.
    patience: Patience,
    /// This process runs on one CPU: the caller's thread yields to the workers instead of
    /// spinning (a worker runs only when it gives up the CPU).
    one_cpu: bool,
    /// How a Fork worker waits for its commands (spawned ones work it out themselves).
    worker_wait: WaitPolicy,
    /// Fork: the heap of `SharedBytes` was made before any worker, so every worker shares it.
    shares_heap: bool,
    /// When the caller last handed the duty back to sleep (see [`WORTH_POLLING`]).
    parked_at: Option<Instant>,
    _types: PhantomData<fn() -> St>,
}

impl<Sh, St> fmt::Debug for ProcessBackend<Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessBackend")
            .field("method", &self.method)
            .field(
                "workers",
                &self.slots.iter().filter(|s| s.is_some()).count(),
            )
            .finish()
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PoolError {
    let context = context.into();
    move |source| PoolError::Backend { context, source }
}

impl<Sh: SharedObjects, St: 'static> ProcessBackend<Sh, St> {
    /// A back end with `n_jobs` worker slots; `daemon` workers may not start process pools.
    pub fn new(method: ProcessMethod, n_jobs: usize, daemon: bool) -> Result<Self, PoolError> {
        crate::entry::exit_if_hook_skipped();
        if method == ProcessMethod::Spawn && !crate::entry::hook_called() {
            return Err(PoolError::InvalidConfig(crate::entry::ADD_THE_HOOK.into()));
        }
        let counters =
            SharedCounters::new(n_jobs).map_err(io_err("cannot create the shared counters"))?;
        let links: Arc<Mutex<HashMap<u64, Link>>> = Arc::default();
        let duty = Arc::new(Duty::default());
        let (on_death, bell) = (links.clone(), duty.clone());
        // A dead worker cannot close its link: do it for it, and wake its reader thread.
        let watcher = DeathWatcher::with_callback(move |death| {
            if let Some(link) = lock(&on_death).remove(&death.token) {
                link.close();
                bell.ring_bell();
            }
        })
        .map_err(io_err("cannot start the death watcher"))?;
        let (events_tx, events_rx) = unbounded();
        let cpus = pool_core::cpu_count();
        Ok(ProcessBackend {
            method,
            counters: Arc::new(counters),
            slots: (0..n_jobs).map(|_| None).collect(),
            events_tx,
            events_rx,
            jobs: HashMap::new(),
            links,
            watcher,
            stderr: Arc::new(
                StderrTee::new().map_err(io_err("cannot start the workers' stderr thread"))?,
            ),
            launcher: Launcher::new().map_err(io_err("cannot start the launcher thread"))?,
            strategy: match method {
                ProcessMethod::Fork => Box::new(ForkLaunch),
                ProcessMethod::Spawn => Box::new(SpawnLaunch::default()),
                ProcessMethod::Forkserver => Box::new(forkserved::ForkserverLaunch::default()),
            },
            daemon,
            duty,
            caller_polls: n_jobs <= cpus,
            patience: Patience::new(WaitPolicy::WORKER.spins),
            one_cpu: cpus == 1,
            worker_wait: WaitPolicy::worker(n_jobs, cpus),
            shares_heap: matches!(method, ProcessMethod::Fork | ProcessMethod::Spawn)
                && pool_core::shared_bytes::prepare_heap(),
            parked_at: None,
            _types: PhantomData,
        })
    }

    /// Takes what the workers have sent, from the caller's thread (step 2 of `duty.rs`);
    /// returns whether anything came.
    fn take_sent(&mut self) -> bool {
        let mut took = false;
        for s in self.slots.iter().flatten() {
            // Its reader gives the lock up at once after the nudge of step 1 (or after the
            // message in its hands): wait for it rather than spin, as that reader may need
            // this core to run.
            let mut inbox = lock(&s.inbox);
            loop {
                match inbox.take(Wait::No) {
                    Took::One => took = true,
                    Took::Nothing => break,
                    Took::Ended => {
                        // Its reader reports it (step 6).
                        self.duty.ring_bell();
                        break;
                    }
                }
            }
        }
        took
    }

    fn retire(&mut self, slot: usize, kill: bool) {
        let Some(mut s) = self.slots[slot].take() else {
            return;
        };
        if kill {
            s.killed.store(true, Ordering::Release);
            let _ = lock(&s.process).kill(libc::SIGKILL);
        }
        if let Some(r) = s.reader.take() {
            self.duty.hand_back();
            let _ = r.join();
        }
        // Nothing reads its ring any more: once it is reaped, what its ledger records is
        // given back (now, if it is already).
        if let Some(l) = s.ledger {
            lock(&s.process).on_exit(move || pool_core::shared_bytes::drain_ledger(l));
        }
        self.watcher.unwatch(s.token);
        lock(&self.links).remove(&s.token);
        self.stderr.detach(s.token);
    }
}

impl<Sh: SharedObjects, St: 'static> Backend<Sh, St> for ProcessBackend<Sh, St> {
    fn wire(&self) -> Wire {
        Wire::Bytes
    }

    fn shares_heap(&self) -> bool {
        self.shares_heap
    }

    fn counters(&self, slot: usize) -> &WorkerCounters {
        &self.counters.slots()[slot]
    }

    fn counters_for_new_worker(&mut self, slot: usize) -> CounterRef {
        CounterRef::new(self.counters.clone(), slot)
    }

    fn announce_job(
        &mut self,
        call: u64,
        job: &Arc<dyn ErasedJob<Sh, St>>,
    ) -> Result<bool, PoolError> {
        self.strategy.check_job(job)?;
        // Keep the jobs of recent calls only: older calls are over (the span the workers' own
        // caches keep, `pool_wire::recent`). Pruned in bulk: a pass per call over the whole
        // table was 5 % of an `apply_async` task.
        let kept = pool_wire::recent::KEPT;
        if self.jobs.len() as u64 > 2 * kept {
            let oldest_kept = call.saturating_sub(kept);
            self.jobs.retain(|&k, _| k >= oldest_kept);
        }
        self.jobs.insert(call, job.clone());
        let live_can_run = job.rebuilder().is_some()
            || self.slots.iter().flatten().all(|s| s.dispatch.knows(call));
        Ok(live_can_run)
    }

    fn start_worker(&mut self, setup: WorkerSetup<Sh, St>) -> Result<(), PoolError> {
        let id = setup.id;
        self.retire(id, true);
        let link = Link::new(LINK_CAPACITY)
            .map_err(io_err(format!("cannot create the link of worker {id}")))?;
        let token = ((id as u64) << 32) | (setup.generation & 0xffff_ffff);
        let stderr = self.stderr.attach(token).map_err(io_err(format!(
            "cannot create the stderr pipe of worker {id}"
        )))?;
        let ledger = self
            .shares_heap
            .then(pool_core::shared_bytes::claim_ledger)
            .flatten();
        let started = self.strategy.start(Start {
            setup: &setup,
            link: &link,
            launcher: &self.launcher,
            jobs: &self.jobs,
            counters: &self.counters,
            n_slots: self.slots.len(),
            wait: self.worker_wait,
            daemon: self.daemon,
            stderr,
            heap: self.shares_heap,
            ledger,
        });
        let (mut process, dispatch) = match started {
            Ok(s) => s,
            Err(e) => {
                if let Some(l) = ledger {
                    pool_core::shared_bytes::drain_ledger(l);
                }
                return Err(e);
            }
        };
        // Should it fail to start, its ledger is given back once it is reaped (at the drop).
        let give_back = |process: &mut WorkerProcess| {
            if let Some(l) = ledger {
                process.on_exit(move || pool_core::shared_bytes::drain_ledger(l));
            }
        };
        lock(&self.links).insert(token, link.clone());
        if let Err(e) = self.watcher.watch(&process, token) {
            let _ = process.kill(libc::SIGKILL);
            give_back(&mut process);
            return Err(io_err(format!("cannot watch worker {id}"))(e));
        }
        let (mut tx, rx) = link.parent_end(WaitPolicy::PARENT).split();
        let inbox_ring = rx.closer();
        // A worker waiting for its results to be read reads no commands: never wait for it
        // while holding the duty of reading them.
        let duty = self.duty.clone();
        tx.before_waiting(Arc::new(move || duty.hand_back()));
        if let Err(e) = self.strategy.greet(&mut tx) {
            let _ = process.kill(libc::SIGKILL);
            give_back(&mut process);
            // A worker that ended on its own at start-up says why in its exit status.
            let why = match process.wait() {
                Ok(r) if r.signal() != Some(libc::SIGKILL) => {
                    format!(": worker process {} {r}", process.pid())
                }
                _ => String::new(),
            };
            return Err(PoolError::backend(
                format!("cannot send the shared objects to worker {id}: {e}{why}"),
                std::io::ErrorKind::BrokenPipe.into(),
            ));
        }
        let process = Arc::new(Mutex::new(process));
        let killed = Arc::new(AtomicBool::new(false));
        let inbox = Arc::new(Mutex::new(Inbox::new(
            rx,
            self.events_tx.clone(),
            id,
            setup.generation,
            dispatch.outstanding().clone(),
            ledger,
        )));
        let reader = Reader {
            inbox: inbox.clone(),
            ring: inbox_ring.clone(),
            duty: self.duty.clone(),
            events: self.events_tx.clone(),
            process: process.clone(),
            killed: killed.clone(),
            worker: id,
            generation: setup.generation,
            stderr: self.stderr.clone(),
            token,
        };
        let reader = std::thread::Builder::new()
            .name(format!("pool-reader-{id}"))
            .spawn(move || reader.run())
            .map_err(io_err(format!("cannot start the reader of worker {id}")))?;
        self.slots[id] = Some(Slot {
            tx,
            inbox,
            inbox_ring,
            process,
            killed,
            reader: Some(reader),
            token,
            ledger,
            dispatch,
        });
        Ok(())
    }

    fn send(&mut self, slot: usize, cmd: Command<Sh, St>) -> Result<(), Unsent<Sh, St>> {
        let stopped = || {
            PoolError::backend(
                format!("worker {slot} has stopped"),
                std::io::ErrorKind::BrokenPipe.into(),
            )
        };
        let Some(s) = self.slots[slot].as_mut() else {
            let e = PoolError::backend(
                format!("worker {slot} is not running"),
                std::io::ErrorKind::NotConnected.into(),
            );
            return Err(Unsent::returned(e, cmd));
        };
        let mut cmd = cmd;
        // The command's references go to the worker's ledger as it is sent; a copy stays with
        // the command in case it comes back (only buffers of the shared heap have any).
        let mut kept_refs = None;
        if let Command::Chunk { refs, .. } = &mut cmd
            && !refs.is_empty()
        {
            let refs = std::mem::take(refs);
            kept_refs = Some(refs.clone());
            match s.ledger {
                Some(l) => refs.credit_to(l),
                None => refs.hand_over(),
            }
        }
        let sent = match s.dispatch.encode(slot, &cmd)? {
            (header, Some(bytes)) => {
                s.tx.send_deferred(&header)
                    .and_then(|()| s.tx.send_bytes(bytes))
            }
            (header, None) => s.tx.send(&header),
        };
        if sent.is_err() {
            // The ring is closed (or closed under the frames): the worker is dead and runs none
            // of it, so the command goes back whole.
            if let (Command::Chunk { refs, .. }, Some(kept)) = (&mut cmd, kept_refs) {
                *refs = kept;
            }
            return Err(Unsent::returned(stopped(), cmd));
        }
        if let Command::Chunk {
            input: Data::Bytes(bytes),
            ..
        } = cmd
        {
            pool_core::recycle_buffer(bytes);
        }
        Ok(())
    }

    fn events(&self) -> &Receiver<Event> {
        &self.events_rx
    }

    /// Steps 1 and 2 of `duty.rs`, when the workers do not outnumber the cores.
    fn poll(&mut self, spin: bool) -> bool {
        if !self.caller_polls {
            return false;
        }
        let slept = self.parked_at.map(|t| t.elapsed());
        if !self.duty.caller_has_it() && slept.is_some_and(|d| d > WORTH_POLLING) {
            return false;
        }
        if self.duty.take() {
            for s in self.slots.iter().flatten() {
                s.inbox_ring.nudge_receiver();
            }
        }
        if !spin {
            return self.take_sent();
        }
        if self.one_cpu {
            return pool_core::patience::yield_until(|| self.take_sent());
        }
        let mut patience = self.patience;
        let came = patience.spin_until(|| self.take_sent());
        self.patience = patience;
        came
    }

    /// Step 3 of `duty.rs`.
    fn park(&mut self) {
        if self.caller_polls {
            self.duty.hand_back();
            self.parked_at = Some(Instant::now());
        }
    }

    fn end_call(&mut self) {
        self.park();
        pool_core::interrupt::end_call();
    }

    fn kill(&mut self, slot: usize) {
        self.retire(slot, true);
    }

    fn shutdown(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        for slot in 0..self.slots.len() {
            let exited = self.slots[slot].as_ref().is_none_or(|s| {
                let mut p = lock(&s.process);
                loop {
                    if p.has_exited() {
                        break true;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break false;
                    }
                    let _ = p.wait_timeout(left.min(Duration::from_millis(5)));
                }
            });
            self.retire(slot, !exited);
        }
    }
}

impl<Sh, St> Drop for ProcessBackend<Sh, St> {
    fn drop(&mut self) {
        self.duty.hand_back();
        for s in self.slots.iter_mut().filter_map(Option::take) {
            s.killed.store(true, Ordering::Release);
            let _ = lock(&s.process).kill(libc::SIGKILL);
            if let Some(r) = s.reader {
                let _ = r.join();
            }
        }
    }
}
