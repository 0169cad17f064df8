//! How each start method launches a worker process: its own strategy, no `if method == …`.
//!
//! - [`ForkLaunch`]: the child inherits the setup and every job announced so far; it knows
//!   those calls without rebuild ids.
//! - [`SpawnLaunch`]: a re-executed child gets a boot record (`pool_wire::boot`) and, as the
//!   first frame on its link, the shared objects, encoded once per back end; it knows no call
//!   and every function must be rebuildable.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use pool_core::{ErasedJob, PoolError, SharedObjects, WorkerSetup};
use pool_wire::boot::Remote;
use pool_wire::parent::Dispatch;
use pool_wire::worker::WorkerEnd;

use super::counters::SharedCounters;
use super::launcher::Launcher;
use super::link::RingCarrier;
use super::{DAEMON_WORKER, io_err, spawned};
use crate::channel::{Link, MsgSender};
use crate::process::WorkerProcess;
use crate::ring::WaitPolicy;

/// What a strategy gets to start one worker.
pub(crate) struct Start<'a, Sh, St> {
    pub(crate) setup: &'a WorkerSetup<Sh, St>,
    pub(crate) link: &'a Link,
    pub(crate) launcher: &'a Launcher,
    pub(crate) jobs: &'a HashMap<u64, Arc<dyn ErasedJob<Sh, St>>>,
    pub(crate) counters: &'a SharedCounters,
    pub(crate) n_slots: usize,
    /// How the worker waits for its commands ([`WaitPolicy::worker`] for this pool).
    pub(crate) wait: WaitPolicy,
    pub(crate) daemon: bool,
    /// Becomes the worker's stderr (fd 2): the parent passes it on and keeps its last line.
    pub(crate) stderr: OwnedFd,
    /// Whether the worker shares this process's heap of `SharedBytes` (Fork and Spawn, when
    /// there is one).
    pub(crate) heap: bool,
    /// The worker's ledger of shared-heap references, when it shares the heap and one was
    /// free.
    pub(crate) ledger: Option<u32>,
}

/// One start method's way to launch a worker process.
pub(crate) trait Launch<Sh, St>: Send {
    /// Refuses a job no worker of this method can run.
    fn check_job(&self, job: &Arc<dyn ErasedJob<Sh, St>>) -> Result<(), PoolError>;
    /// Starts a worker: its process, and the dispatch that knows which calls it can resolve.
    fn start(&mut self, s: Start<'_, Sh, St>) -> Result<(WorkerProcess, Dispatch), PoolError>;
    /// Sends what the new worker reads first on its link, before any command.
    fn greet(&self, tx: &mut MsgSender) -> Result<(), crate::channel::ChannelError>;
}

#[derive(Debug)]
pub(crate) struct ForkLaunch;

impl<Sh: SharedObjects, St: 'static> Launch<Sh, St> for ForkLaunch {
    fn check_job(&self, _job: &Arc<dyn ErasedJob<Sh, St>>) -> Result<(), PoolError> {
        Ok(())
    }

    fn start(&mut self, s: Start<'_, Sh, St>) -> Result<(WorkerProcess, Dispatch), PoolError> {
        let id = s.setup.id;
        let jobs = s.jobs.clone();
        let known: Vec<u64> = jobs.keys().copied().collect();
        let (setup, link, daemon, stderr) = (s.setup.clone(), s.link.clone(), s.daemon, s.stderr);
        let (wait, ledger) = (s.wait, s.ledger);
        let main = Box::new(move || {
            // SAFETY: dup2 onto fd 2 of this (single-threaded, just forked) process; `stderr`
            // is a live fd. On failure the worker keeps its parent's stderr.
            unsafe { libc::dup2(stderr.as_raw_fd(), 2) };
            DAEMON_WORKER.store(daemon, Ordering::Relaxed);
            pool_core::shared_bytes::forked_worker_shares_heap(ledger);
            crate::malloc::tune_worker();
            let (tx, rx) = link.worker_end(wait).split();
            // SAFETY: forked from the parent: same binary, and the parent makes rebuild ids
            // with `Remote::job` for this pool's `Sh` and `St`.
            let mut end = unsafe { WorkerEnd::new(RingCarrier { tx, rx }, jobs) };
            pool_core::run_worker(setup, &mut end);
            0
        });
        let p = s
            .launcher
            .fork(main)
            .map_err(io_err(format!("cannot fork worker {id}")))?;
        Ok((p, Dispatch::new(known)))
    }

    fn greet(&self, _tx: &mut MsgSender) -> Result<(), crate::channel::ChannelError> {
        Ok(())
    }
}

/// Spawned workers: the shared objects, encoded at the first start.
#[derive(Debug, Default)]
pub(crate) struct SpawnLaunch {
    shared: Option<Arc<Vec<u8>>>,
}

impl<Sh: SharedObjects, St: 'static> Launch<Sh, St> for SpawnLaunch {
    fn check_job(&self, job: &Arc<dyn ErasedJob<Sh, St>>) -> Result<(), PoolError> {
        Remote::Spawn.job(job).map(|_| ())
    }

    fn start(&mut self, s: Start<'_, Sh, St>) -> Result<(WorkerProcess, Dispatch), PoolError> {
        let id = s.setup.id;
        if self.shared.is_none() {
            let bytes =
                postcard::to_stdvec(&*s.setup.shared).map_err(|e| PoolError::Serialization {
                    context: "the shared objects, for spawned workers".into(),
                    message: pool_core::refusal::message(&*s.setup.shared, e),
                })?;
            self.shared = Some(Arc::new(bytes));
        }
        let heap = s
            .heap
            .then(pool_core::shared_bytes::heap_fd)
            .flatten()
            .map(|fd| (fd, s.ledger));
        let cmd = spawned::command(
            s.setup,
            s.link,
            s.counters.region(),
            s.n_slots,
            s.daemon,
            heap,
        )?
        .stderr(s.stderr);
        let p = s
            .launcher
            .run(Box::new(move || cmd.spawn()))
            .map_err(io_err(format!("cannot spawn worker {id}")))?;
        Ok((p, Dispatch::default()))
    }

    fn greet(&self, tx: &mut MsgSender) -> Result<(), crate::channel::ChannelError> {
        tx.send_bytes(self.shared.as_deref().map_or(&[][..], |v| v.as_slice()))
    }
}
