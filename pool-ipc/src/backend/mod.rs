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

mod counters;
mod launcher;
mod link;
mod reader;
mod spawned;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use pool_core::{
    Backend, Command, CounterBlock, ErasedJob, Event, PoolError, SharedObjects, Wire, WorkerSetup,
};

use self::counters::SharedCounters;
use self::launcher::Launcher;
use self::link::ChildLink;
use self::reader::{Reader, lock};
use self::wire::{JobRef, WireCommand};
use crate::channel::{Link, MsgSender};
use crate::fnid::FnId;
use crate::process::WorkerProcess;
use crate::ring::WaitPolicy;
use crate::watcher::DeathWatcher;

/// Set in worker processes of daemon pools (the default), which may not start process pools.
static DAEMON_WORKER: AtomicBool = AtomicBool::new(false);

/// Whether this process is a worker of a daemon pool.
pub fn in_daemon_worker() -> bool {
    DAEMON_WORKER.load(Ordering::Relaxed)
}

/// Bytes per direction of each worker's link.
const LINK_CAPACITY: usize = 4 << 20;

/// Which kind of process workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessMethod {
    /// `fork()`: copy-on-write, any closure.
    Fork,
    /// Re-execute this binary: closures must capture nothing.
    Spawn,
}

struct Slot {
    tx: MsgSender,
    process: Arc<Mutex<WorkerProcess>>,
    killed: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    token: u64,
    /// Job keys this worker can resolve without a rebuild function.
    known: HashSet<u64>,
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
    launcher: Launcher,
    shared_bytes: Option<Arc<Vec<u8>>>,
    daemon: bool,
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
        let on_death = links.clone();
        // A dead worker cannot close its link: do it for it, which wakes its reader thread.
        let watcher = DeathWatcher::with_callback(move |death| {
            if let Some(link) = lock(&on_death).remove(&death.token) {
                link.close();
            }
        })
        .map_err(io_err("cannot start the death watcher"))?;
        let (events_tx, events_rx) = unbounded();
        Ok(ProcessBackend {
            method,
            counters: Arc::new(counters),
            slots: (0..n_jobs).map(|_| None).collect(),
            events_tx,
            events_rx,
            jobs: HashMap::new(),
            links,
            watcher,
            launcher: Launcher::new().map_err(io_err("cannot start the launcher thread"))?,
            daemon,
            shared_bytes: None,
            _types: PhantomData,
        })
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
            let _ = r.join();
        }
        self.watcher.unwatch(s.token);
        lock(&self.links).remove(&s.token);
    }

    fn start_process(
        &mut self,
        setup: &WorkerSetup<Sh, St>,
        link: &Link,
    ) -> Result<(WorkerProcess, HashSet<u64>), PoolError> {
        let id = setup.id;
        match self.method {
            ProcessMethod::Fork => {
                let jobs = self.jobs.clone();
                let known = jobs.keys().copied().collect();
                let (setup, link) = (setup.clone(), link.clone());
                let daemon = self.daemon;
                let main = Box::new(move || {
                    DAEMON_WORKER.store(daemon, Ordering::Relaxed);
                    crate::malloc::tune_worker();
                    let (tx, rx) = link.worker_end(WaitPolicy::default()).split();
                    pool_core::run_worker(setup, &mut ChildLink { tx, rx, jobs });
                    0
                });
                let p = self
                    .launcher
                    .fork(main)
                    .map_err(io_err(format!("cannot fork worker {id}")))?;
                Ok((p, known))
            }
            ProcessMethod::Spawn => {
                if self.shared_bytes.is_none() {
                    let bytes = postcard::to_stdvec(&*setup.shared).map_err(|e| {
                        PoolError::Serialization {
                            context: "the shared objects, for spawned workers".into(),
                            message: e.to_string(),
                        }
                    })?;
                    self.shared_bytes = Some(Arc::new(bytes));
                }
                let cmd = spawned::command(
                    setup,
                    link,
                    self.counters.region(),
                    self.slots.len(),
                    self.daemon,
                )?;
                let p = self
                    .launcher
                    .run(Box::new(move || cmd.spawn()))
                    .map_err(io_err(format!("cannot spawn worker {id}")))?;
                Ok((p, HashSet::new()))
            }
        }
    }
}

impl<Sh: SharedObjects, St: 'static> Backend<Sh, St> for ProcessBackend<Sh, St> {
    fn wire(&self) -> Wire {
        Wire::Bytes
    }

    fn counters(&self) -> Arc<dyn CounterBlock> {
        self.counters.clone()
    }

    fn announce_job(
        &mut self,
        call: u64,
        job: &Arc<dyn ErasedJob<Sh, St>>,
    ) -> Result<bool, PoolError> {
        if self.method == ProcessMethod::Spawn && job.rebuilder().is_none() {
            return Err(PoolError::InvalidConfig(format!(
                "StartMethod::Spawn runs tasks in a fresh process, so the task function must capture nothing \
                 (a fn item or a closure without captures); `{}` captures data. Pass the data as shared objects, \
                 or use StartMethod::Fork",
                job.name()
            )));
        }
        // Keep the jobs of recent calls only: older calls are over.
        if self.jobs.len() > 64 {
            let newest = call.saturating_sub(64);
            self.jobs.retain(|&k, _| k >= newest);
        }
        self.jobs.insert(call, job.clone());
        let live_can_run = job.rebuilder().is_some()
            || self.slots.iter().flatten().all(|s| s.known.contains(&call));
        Ok(live_can_run)
    }

    fn begin_call(&mut self) {
        crate::interrupt::begin_call();
    }

    fn end_call(&mut self) {
        crate::interrupt::end_call();
    }

    fn interrupted(&mut self) -> bool {
        crate::interrupt::take()
    }

    fn start_worker(&mut self, setup: WorkerSetup<Sh, St>) -> Result<(), PoolError> {
        let id = setup.id;
        self.retire(id, true);
        let link = Link::new(LINK_CAPACITY)
            .map_err(io_err(format!("cannot create the link of worker {id}")))?;
        let (mut process, known) = self.start_process(&setup, &link)?;
        let token = ((id as u64) << 32) | (setup.generation & 0xffff_ffff);
        lock(&self.links).insert(token, link.clone());
        if let Err(e) = self.watcher.watch(&process, token) {
            let _ = process.kill(libc::SIGKILL);
            return Err(io_err(format!("cannot watch worker {id}"))(e));
        }
        let (mut tx, rx) = link.parent_end(WaitPolicy::default()).split();
        if let Some(shared) = self
            .shared_bytes
            .as_ref()
            .filter(|_| self.method == ProcessMethod::Spawn)
        {
            // The first frame of a spawned worker: its copy of the shared objects.
            if let Err(e) = tx.send_bytes(shared) {
                let _ = process.kill(libc::SIGKILL);
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
        }
        let process = Arc::new(Mutex::new(process));
        let killed = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            rx,
            events: self.events_tx.clone(),
            process: process.clone(),
            killed: killed.clone(),
            worker: id,
            generation: setup.generation,
        };
        let reader = std::thread::Builder::new()
            .name(format!("pool-reader-{id}"))
            .spawn(move || reader.run())
            .map_err(io_err(format!("cannot start the reader of worker {id}")))?;
        self.slots[id] = Some(Slot {
            tx,
            process,
            killed,
            reader: Some(reader),
            token,
            known,
        });
        Ok(())
    }

    fn send(&mut self, slot: usize, cmd: Command<Sh, St>) -> Result<(), PoolError> {
        let s = self.slots[slot].as_mut().ok_or_else(|| {
            PoolError::backend(
                format!("worker {slot} is not running"),
                std::io::ErrorKind::NotConnected.into(),
            )
        })?;
        let gone = |_| {
            PoolError::backend(
                format!("worker {slot} has stopped"),
                std::io::ErrorKind::BrokenPipe.into(),
            )
        };
        match cmd {
            Command::Chunk {
                job,
                call,
                first,
                len,
                input,
                settings,
            } => {
                let rebuild = if s.known.contains(&call) {
                    None
                } else {
                    let r = job.rebuilder().ok_or_else(|| {
                        PoolError::InvalidConfig(format!(
                            "worker {slot} cannot run `{}`: it was started before this call",
                            job.name()
                        ))
                    })?;
                    s.known.insert(call);
                    Some(FnId::from_ptr(r as *const ()))
                };
                let bytes = match input {
                    pool_core::Data::Bytes(b) => b,
                    pool_core::Data::Local(_) => {
                        unreachable!("the pool encodes inputs for Wire::Bytes")
                    }
                };
                let header = WireCommand::Chunk {
                    job: JobRef { key: call, rebuild },
                    call,
                    first,
                    len,
                    settings,
                };
                s.tx.send_deferred(&header).map_err(gone)?;
                let sent = s.tx.send_bytes(&bytes).map_err(gone);
                pool_core::recycle_buffer(bytes);
                sent
            }
            Command::Flush => s.tx.send(&WireCommand::Flush).map_err(gone),
            Command::Exit => s.tx.send(&WireCommand::Exit).map_err(gone),
        }
    }

    fn events(&self) -> &Receiver<Event> {
        &self.events_rx
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
        for s in self.slots.iter_mut().filter_map(Option::take) {
            s.killed.store(true, Ordering::Release);
            let _ = lock(&s.process).kill(libc::SIGKILL);
            if let Some(r) = s.reader {
                let _ = r.join();
            }
        }
    }
}
