//! The seam between the pool and whatever runs its workers (threads here; processes in
//! `pool-ipc`).
//!
//! The parent talks to a [`Backend`] with [`Command`]s and hears [`Event`]s; a worker, wherever
//! it runs, is [`crate::worker::run_worker`] reading commands from a [`WorkerLink`]. Everything
//! typed (the task function, its inputs and results) travels inside [`Data`] and an
//! [`ErasedJob`], so back ends are object-safe and know nothing of user types.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::counters::{CounterRef, WorkerCounters};
use crate::error::{Failure, PoolError};
use crate::hook::{ExitFn, InitFn, StateFn};
use crate::job::{Data, ErasedJob, RunSettings, Wire};
use crate::timing::WorkerTimings;

/// How workers are started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMethod {
    /// Forked processes: copy-on-write shared objects, any closure as task. The default.
    #[default]
    Fork,
    /// Fresh executions of the current binary: tasks must be `fn` items or non-capturing
    /// closures, and `pool::entry()` must run first in `main`.
    Spawn,
    /// Threads of this process.
    Threading,
    /// Processes forked from a small server process started by `pool::entry()`: start-up
    /// does not grow with the parent, and workers inherit none of its later threads or locks.
    /// Tasks, hooks and state factories must capture nothing, as under `Spawn`.
    Forkserver,
    /// MPI ranks under `mpirun` (feature `mpi` of the `pool` crate): rank 0 runs the program
    /// and the pool, ranks 1.. are the workers; functions are identified as under `Spawn`.
    Mpi,
}

impl StartMethod {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::Threading => "threading",
            StartMethod::Mpi => "mpi",
            StartMethod::Forkserver => "forkserver",
        }
    }

    /// The method whose [`StartMethod::name`] is `name`.
    ///
    /// ```
    /// use pool_core::StartMethod;
    /// assert_eq!(StartMethod::from_name("forkserver"), Some(StartMethod::Forkserver));
    /// assert_eq!(StartMethod::from_name("Fork"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        [
            StartMethod::Fork,
            StartMethod::Spawn,
            StartMethod::Threading,
            StartMethod::Mpi,
            StartMethod::Forkserver,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// Everything a new worker needs.
pub struct WorkerSetup<Sh, St> {
    /// Slot id, `0..n_jobs`.
    pub id: usize,
    /// Incremented each time the slot gets a new worker; events of older ones are ignored.
    pub generation: u64,
    /// The pool's shared objects.
    pub shared: Arc<Sh>,
    /// Makes the worker's state.
    pub make_state: StateFn<St>,
    /// Runs before the first task.
    pub init: Option<InitFn<Sh, St>>,
    /// Runs when the worker stops.
    pub exit: Option<ExitFn<Sh, St>>,
    /// Stop after this many tasks.
    pub lifespan: Option<u64>,
    /// Record timings.
    pub insights: bool,
    /// The slot's counters.
    pub counters: CounterRef,
    /// CPUs to pin the worker to.
    pub cpus: Option<Vec<usize>>,
    /// When the pool asked for this worker (for the start-up time).
    pub requested_ns: u64,
}

impl<Sh, St> Clone for WorkerSetup<Sh, St> {
    fn clone(&self) -> Self {
        WorkerSetup {
            id: self.id,
            generation: self.generation,
            shared: self.shared.clone(),
            make_state: self.make_state.clone(),
            init: self.init.clone(),
            exit: self.exit.clone(),
            lifespan: self.lifespan,
            insights: self.insights,
            counters: self.counters.clone(),
            cpus: self.cpus.clone(),
            requested_ns: self.requested_ns,
        }
    }
}

impl<Sh, St> fmt::Debug for WorkerSetup<Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerSetup")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .field("init", &self.init.is_some())
            .field("exit", &self.exit.is_some())
            .field("lifespan", &self.lifespan)
            .field("insights", &self.insights)
            .field("cpus", &self.cpus)
            .finish()
    }
}

/// Parent → worker.
pub enum Command<Sh, St> {
    /// Run a chunk of tasks.
    Chunk {
        /// The call's function.
        job: Arc<dyn ErasedJob<Sh, St>>,
        /// Which call.
        call: u64,
        /// Index of the chunk's first task.
        first: u64,
        /// How many tasks.
        len: u32,
        /// The inputs.
        input: Data,
        /// The references to shared-heap blocks that handles in `input` carry: a back end
        /// credits them to the worker's ledger as it sends the command (see
        /// [`crate::shared_bytes::HeapRefs`]); empty unless the back end
        /// [shares the heap](Backend::shares_heap).
        refs: crate::shared_bytes::HeapRefs,
        /// How to run them.
        settings: RunSettings,
    },
    /// Send back the timings recorded so far.
    Flush,
    /// Run `worker_exit` and stop.
    Exit,
}

impl<Sh, St> fmt::Debug for Command<Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Chunk {
                call, first, len, ..
            } => {
                write!(f, "Chunk {{ call: {call}, first: {first}, len: {len} }}")
            }
            Command::Flush => f.write_str("Flush"),
            Command::Exit => f.write_str("Exit"),
        }
    }
}

/// A command a back end did not deliver, and why. A back end whose worker is gone (known before
/// the send, or found during it: a link that closed under the frames) gives the command back
/// in `cmd`: the worker never ran it, and it may go to another once the loss is handled.
/// Without it (a command that could not be encoded, a back end that cannot tell), the command
/// counts as lost with its worker.
#[derive(Debug)]
pub struct Unsent<Sh, St> {
    /// Why it was not delivered.
    pub error: PoolError,
    /// The command itself, when it never left (boxed: this is the rare path of `send`).
    pub cmd: Option<Box<Command<Sh, St>>>,
}

impl<Sh, St> Unsent<Sh, St> {
    /// `cmd` given back, undelivered, for `error`.
    pub fn returned(error: PoolError, cmd: Command<Sh, St>) -> Self {
        Unsent {
            error,
            cmd: Some(Box::new(cmd)),
        }
    }
}

impl<Sh, St> From<PoolError> for Unsent<Sh, St> {
    /// A command lost part-way, for this error.
    fn from(error: PoolError) -> Self {
        Unsent { error, cmd: None }
    }
}

impl<Sh, St> From<Unsent<Sh, St>> for PoolError {
    fn from(u: Unsent<Sh, St>) -> Self {
        u.error
    }
}

/// Why a worker stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExitReason {
    /// The parent asked it to.
    Asked,
    /// It reached its lifespan.
    Lifespan,
    /// Its init failed.
    InitFailed,
}

/// Worker → parent.
#[derive(Debug)]
pub enum Event {
    /// The worker finished its init and waits for work.
    Ready {
        /// Slot.
        worker: usize,
        /// Generation.
        generation: u64,
    },
    /// A chunk is done.
    ChunkDone {
        /// Slot.
        worker: usize,
        /// Generation.
        generation: u64,
        /// Which call.
        call: u64,
        /// Index of the chunk's first task.
        first: u64,
        /// The encoded `ChunkOutput`.
        output: Data,
    },
    /// `worker_init` or `worker_exit` failed.
    Failed {
        /// Generation.
        generation: u64,
        /// What happened (boxed: a rare event keeps every event, `ChunkDone` above all, small).
        failure: Box<Failure>,
    },
    /// Timings recorded since the last report.
    Timings {
        /// Generation.
        generation: u64,
        /// The timings (boxed, as `Failed::failure`).
        timings: Box<WorkerTimings>,
    },
    /// The worker stopped.
    Exited {
        /// Slot.
        worker: usize,
        /// Generation.
        generation: u64,
        /// Why.
        reason: ExitReason,
        /// What `worker_exit` returned (postcard bytes), if it ran and succeeded.
        exit_result: Option<Vec<u8>>,
    },
    /// The worker died without saying goodbye (process back ends).
    Died {
        /// Slot.
        worker: usize,
        /// Generation.
        generation: u64,
        /// How: signal, exit code, likely OOM.
        message: String,
    },
}

/// A worker's end of its connection to the parent.
pub trait WorkerLink<Sh, St> {
    /// The next command; `None` when the parent is gone.
    fn recv(&mut self) -> Option<Command<Sh, St>>;
    /// Sends an event; errors (parent gone) are ignored by the worker, which stops at its next
    /// `recv`.
    fn send(&mut self, event: Event);
}

/// How a thread that shares a back end behind a lock waits for the workers' events before it
/// blocks (see [`Backend::waiting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The back end brings events in itself: call [`Backend::poll`] with `spin`, locked.
    Poll,
    /// Events reach [`Backend::events`] by themselves; spin looking at it, no lock held
    /// ([`crate::patience::Patience`]): the workers leave a core.
    Spin,
    /// As `Spin`, but yield a few times instead ([`crate::patience::yield_until`]): one CPU.
    Yield,
    /// Block at once: a spinning thread would take a worker's core.
    Block,
}

/// Runs workers for a pool.
pub trait Backend<Sh, St>: Send {
    /// Which face of [`Data`] this back end's workers use.
    fn wire(&self) -> Wire;
    /// The counters of the worker now in `slot`, as the parent reads them.
    fn counters(&self, slot: usize) -> &WorkerCounters;
    /// The counters a worker about to start in `slot` will write.
    fn counters_for_new_worker(&mut self, slot: usize) -> CounterRef;
    /// Tells the back end the job of a call before workers are started for it or chunks are
    /// sent. Returns whether the workers running now can run it; when they cannot (a forked
    /// worker cannot receive a closure created after the fork), the pool restarts them.
    /// An error means no worker of this back end can run it (e.g. a capturing closure under
    /// Spawn).
    fn announce_job(
        &mut self,
        _call: u64,
        _job: &Arc<dyn ErasedJob<Sh, St>>,
    ) -> Result<bool, PoolError> {
        Ok(true)
    }

    /// A call starts: by default the pool listens for Ctrl-C while calls run
    /// ([`crate::interrupt`]), whatever the back end, so that Ctrl-C ends the call with
    /// `PoolError::Interrupted` after the workers are stopped ([`Backend::kill`]).
    fn begin_call(&mut self) {
        crate::interrupt::begin_call();
    }

    /// The call that began last ended.
    fn end_call(&mut self) {
        crate::interrupt::end_call();
    }

    /// Whether the user interrupted the running call (Ctrl-C) since it began.
    fn interrupted(&mut self) -> bool {
        crate::interrupt::take()
    }

    /// Whether the workers share this process's heap of [`crate::SharedBytes`] (forked after it
    /// was made): their buffers then cross as handles, not bytes. The default: they do not.
    fn shares_heap(&self) -> bool {
        false
    }

    /// Starts a worker in slot `setup.id` (the previous one there is gone).
    fn start_worker(&mut self, setup: WorkerSetup<Sh, St>) -> Result<(), PoolError>;
    /// Sends a command to the worker in `slot`; a command its gone worker never got comes back
    /// in the error ([`Unsent`]).
    fn send(&mut self, slot: usize, cmd: Command<Sh, St>) -> Result<(), Unsent<Sh, St>>;
    /// Events of all workers.
    fn events(&self) -> &Receiver<Event>;

    /// Brings what the workers have reported into [`Backend::events`] from the caller's own
    /// thread, when this back end can (the process back end can when the workers leave the
    /// caller a core: a result then costs no thread hop and no wake-up); `spin` lets it spin
    /// briefly for a first one. Returns whether any event came. The default: events come only
    /// through the channel.
    fn poll(&mut self, _spin: bool) -> bool {
        false
    }

    /// How a thread that shares this back end behind a lock (the `apply_async` collector)
    /// waits for events before it blocks. A back end whose events reach the channel by
    /// themselves says whether to spin on it or yield with no lock held, as [`Backend::poll`]
    /// with `spin` decides for a caller that has it to itself: spinning with the lock held
    /// kept the thread submitting tasks waiting. The default: [`Waiting::Poll`].
    fn waiting(&self) -> Waiting {
        Waiting::Poll
    }

    /// The caller is about to block on [`Backend::events`]: whatever delivers events while it
    /// does not [`Backend::poll`] must take over. Called before every blocking wait and, through
    /// [`Backend::end_call`], when a call ends.
    fn park(&mut self) {}
    /// Stops the worker in `slot` now, without its exit function. A back end that cannot stop
    /// it (threads) abandons it: its later events are ignored by generation.
    fn kill(&mut self, slot: usize);
    /// Stops and reaps every worker; waits at most `grace` for graceful ones.
    fn shutdown(&mut self, grace: Duration);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chunk's result is an `Event` moved through a channel (and a `Command` each way
    /// out): the rare variants with big payloads are boxed so the common ones stay small.
    #[test]
    fn events_and_commands_stay_small() {
        assert!(
            size_of::<Event>() <= 64,
            "Event: {} bytes",
            size_of::<Event>()
        );
        assert!(
            size_of::<Command<(), ()>>() <= 80,
            "Command: {} bytes",
            size_of::<Command<(), ()>>()
        );
    }
}
