//! A worker thread of a worker rank: its setup rebuilt from `fn` ids, and its end of the link
//! to the rank's MPI loop (commands in, encoded events out).

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use pool_core::{
    Cause, Command, CounterRef, Data, ErasedJob, Event, ExitFn, ExitReason, Failure, InitFn,
    JobRebuilder, Phase, SharedObjects, StateFn, WorkerCounters, WorkerLink, WorkerSetup,
    monotonic_ns,
};
use pool_ipc::backend::wire::{JobRef, WireCommand, WireEvent};
use pool_ipc::fnid::FnId;

use crate::msg::{Boot, FromWorker, encode};

/// The untyped entry of a worker thread: `boot::<Sh, St>` as a plain `fn` pointer.
pub(crate) type Entry = fn(Boot, Arc<Vec<u8>>, MpiLink, Arc<Vec<WorkerCounters>>);

/// The worker thread's end: commands in (with their bulk bytes), encoded messages out.
#[derive(Debug)]
pub(crate) struct MpiLink {
    pub(crate) rx: Receiver<(WireCommand, Vec<u8>)>,
    pub(crate) tx: Sender<Vec<u8>>,
    pub(crate) epoch: u64,
}

/// # Safety
/// `id` must come from a function of type `T` in this binary.
unsafe fn rebuilt<T: Copy>(id: FnId) -> T {
    assert_eq!(size_of::<T>(), size_of::<*const ()>());
    // SAFETY: per the contract, `id` points to a function of type `T` (a fn pointer type).
    unsafe { std::mem::transmute_copy::<*const (), T>(&id.to_ptr()) }
}

/// A worker thread of a worker rank: rebuilds the setup and runs the worker.
pub(crate) fn boot<Sh: SharedObjects, St: 'static>(
    boot: Boot,
    shared: Arc<Vec<u8>>,
    link: MpiLink,
    counters: Arc<Vec<WorkerCounters>>,
) {
    let mut link = TypedLink::<Sh, St> {
        link,
        jobs: HashMap::new(),
    };
    let shared = match postcard::from_bytes::<Sh>(&shared) {
        Ok(s) => s,
        Err(e) => {
            link.send(Event::Failed {
                generation: boot.generation,
                failure: Failure {
                    phase: Phase::Init,
                    cause: Cause::Serialization,
                    worker: boot.slot,
                    task: None,
                    args: None,
                    message: format!("cannot decode the shared objects on this MPI rank: {e}"),
                    backtrace: None,
                    attempts: 1,
                    earlier: Vec::new(),
                },
            });
            link.send(Event::Exited {
                worker: boot.slot,
                generation: boot.generation,
                reason: ExitReason::InitFailed,
                exit_result: None,
            });
            return;
        }
    };
    // SAFETY: rank 0 made these ids from rebuild functions of exactly these types
    // (`MpiBackend::start_worker`, same binary).
    let (make_state, init, exit) = unsafe {
        (
            StateFn::<St>::from_rebuilder(rebuilt(boot.make_state)),
            boot.init
                .map(|id| InitFn::<Sh, St>::from_rebuilder(rebuilt(id))),
            boot.exit
                .map(|id| ExitFn::<Sh, St>::from_rebuilder(rebuilt(id))),
        )
    };
    let setup = WorkerSetup {
        id: boot.slot,
        generation: boot.generation,
        shared: Arc::new(shared),
        make_state,
        init,
        exit,
        lifespan: boot.lifespan,
        insights: boot.insights,
        counters: CounterRef::new(counters, boot.slot),
        cpus: boot.cpus,
        requested_ns: monotonic_ns(),
    };
    pool_core::run_worker(setup, &mut link);
}

struct TypedLink<Sh, St> {
    link: MpiLink,
    jobs: HashMap<u64, Arc<dyn ErasedJob<Sh, St>>>,
}

impl<Sh, St> TypedLink<Sh, St> {
    fn resolve(&mut self, job: JobRef) -> Option<Arc<dyn ErasedJob<Sh, St>>> {
        if let Some(j) = self.jobs.get(&job.key) {
            return Some(j.clone());
        }
        let id = job.rebuild?;
        // SAFETY: rank 0 made this id from a `JobRebuilder<Sh, St>` of this same binary.
        let rebuild =
            unsafe { std::mem::transmute::<*const (), JobRebuilder<Sh, St>>(id.to_ptr()) };
        let j = rebuild();
        self.jobs.insert(job.key, j.clone());
        Some(j)
    }
}

impl<Sh, St> WorkerLink<Sh, St> for TypedLink<Sh, St> {
    fn recv(&mut self) -> Option<Command<Sh, St>> {
        let (cmd, bulk) = self.link.rx.recv().ok()?;
        match cmd {
            WireCommand::Chunk {
                job,
                call,
                first,
                len,
                settings,
            } => {
                let Some(job) = self.resolve(job) else {
                    eprintln!("pool-mpi worker: task function of call {call} is unknown here");
                    return None;
                };
                Some(Command::Chunk {
                    job,
                    call,
                    first,
                    len,
                    input: Data::Bytes(bulk),
                    settings,
                })
            }
            WireCommand::Flush => Some(Command::Flush),
            WireCommand::Exit => Some(Command::Exit),
        }
    }

    fn send(&mut self, event: Event) {
        let Some((event, bulk)) = WireEvent::from_event(event) else {
            return;
        };
        let bulk = bulk.unwrap_or_default();
        let msg = FromWorker::Event {
            epoch: self.link.epoch,
            event,
        };
        let _ = self.link.tx.send(encode(&msg, &bulk));
    }
}
