//! A worker rank (rank > 0): its main thread is the MPI loop; each worker it is asked to start
//! runs `pool_core::run_worker` in a thread of its own, linked to the loop by channels.
//!
//! 1. Wait for `Shared` (once per pool) and `Start` (once per worker life).
//! 2. Forward commands to the worker thread, its events to rank 0, and its counters (tasks
//!    done, task in hand and for how long) as `Progress` messages when they change; say
//!    `Alive` every [`crate::HEARTBEAT`].
//! 3. `Kill` abandons the worker (cancel flag, closed link): a thread cannot be killed, so a
//!    task stuck forever keeps its thread, as under `StartMethod::Threading`; the next worker
//!    starts at once in a new thread.
//! 4. `Shutdown` (rank 0's process exit) finalizes MPI (unless a rank died) and exits the
//!    process.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use pool_core::{
    Cause, Command, CounterRef, Data, ErasedJob, Event, ExitFn, ExitReason, Failure, InitFn,
    JobRebuilder, Phase, SharedObjects, StateFn, WorkerCounters, WorkerLink, WorkerSetup,
    monotonic_ns,
};
use pool_ipc::backend::wire::{JobRef, WireCommand, WireEvent};
use pool_ipc::fnid::FnId;

use crate::msg::{Boot, FromWorker, ToWorker, decode, encode};
use crate::pump::{Backoff, Pump};

/// The untyped entry of a worker thread: `boot::<Sh, St>` as a plain `fn` pointer.
pub(crate) type Entry = fn(Boot, Arc<Vec<u8>>, MpiLink, Arc<Vec<WorkerCounters>>);

/// The worker thread's end: commands in (with their bulk bytes), encoded messages out.
#[derive(Debug)]
pub(crate) struct MpiLink {
    rx: Receiver<(WireCommand, Vec<u8>)>,
    tx: Sender<Vec<u8>>,
    epoch: u64,
}

struct Current {
    epoch: u64,
    slot: usize,
    generation: u64,
    cmds: Sender<(WireCommand, Vec<u8>)>,
    counters: Arc<Vec<WorkerCounters>>,
    reported: (u64, Option<u64>),
    reported_at: Instant,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The life of a worker rank; returns when rank 0 says the program is over, with whether to
/// finalize MPI.
pub(crate) fn serve(mut pump: Pump) -> bool {
    let (out_tx, out_rx) = unbounded::<Vec<u8>>();
    let mut shared: Option<(u64, Arc<Vec<u8>>)> = None;
    let mut current: Option<Current> = None;
    let alive = encode(
        &FromWorker::Alive {
            host: host(),
            pid: std::process::id(),
        },
        &[],
    );
    pump.send(0, alive.clone());
    let mut last_alive = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        let mut busy = false;
        while let Some((_, bytes)) = pump.poll() {
            busy = true;
            let Some((msg, bulk)) = decode::<ToWorker>(bytes) else {
                eprintln!("pool-mpi worker: garbled message from rank 0");
                continue;
            };
            match msg {
                ToWorker::Shared { epoch } => shared = Some((epoch, Arc::new(bulk))),
                ToWorker::Start { epoch, boot } => {
                    abandon(current.take());
                    let Some(bytes) = shared
                        .as_ref()
                        .filter(|s| s.0 == epoch)
                        .map(|s| s.1.clone())
                    else {
                        eprintln!("pool-mpi worker: a worker to start without shared objects");
                        continue;
                    };
                    let (cmds, rx) = unbounded();
                    let counters: Arc<Vec<WorkerCounters>> =
                        Arc::new((0..=boot.slot).map(|_| WorkerCounters::default()).collect());
                    let link = MpiLink {
                        rx,
                        tx: out_tx.clone(),
                        epoch,
                    };
                    current = Some(Current {
                        epoch,
                        slot: boot.slot,
                        generation: boot.generation,
                        cmds,
                        counters: counters.clone(),
                        reported: (0, None),
                        reported_at: Instant::now(),
                    });
                    // SAFETY: rank 0 made this id from `boot::<Sh, St>` (an `Entry`) of this
                    // same binary (every rank runs the program mpirun was given).
                    let entry =
                        unsafe { std::mem::transmute::<*const (), Entry>(boot.entry.to_ptr()) };
                    let name = format!("pool-mpi-worker-{}", boot.slot);
                    let spawned = std::thread::Builder::new()
                        .name(name)
                        .spawn(move || entry(boot, bytes, link, counters));
                    if let Err(e) = spawned {
                        eprintln!("pool-mpi worker: cannot start a worker thread: {e}");
                    }
                }
                ToWorker::Cmd {
                    epoch,
                    generation,
                    cmd,
                } => {
                    if let Some(c) = current
                        .as_ref()
                        .filter(|c| c.epoch == epoch && c.generation == generation)
                    {
                        let _ = c.cmds.send((cmd, bulk));
                    }
                }
                ToWorker::Kill { epoch, generation } => {
                    if current
                        .as_ref()
                        .is_some_and(|c| c.epoch == epoch && c.generation == generation)
                    {
                        abandon(current.take());
                    }
                }
                ToWorker::Shutdown { finalize } => {
                    abandon(current.take());
                    while let Ok(bytes) = out_rx.try_recv() {
                        pump.send(0, bytes);
                    }
                    let deadline = Instant::now() + Duration::from_secs(2);
                    while pump.in_flight() > 0 && Instant::now() < deadline {
                        pump.progress();
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    return finalize;
                }
            }
        }
        if let Some(c) = current.as_mut() {
            // Counters first (forced when events wait), so rank 0 sees a chunk's tasks done no
            // later than its results.
            report(&mut pump, c, !out_rx.is_empty());
        }
        while let Ok(bytes) = out_rx.try_recv() {
            busy = true;
            pump.send(0, bytes);
        }
        if last_alive.elapsed() >= crate::HEARTBEAT {
            last_alive = Instant::now();
            pump.send(0, alive.clone());
        }
        pump.progress();
        if busy {
            backoff.reset();
        } else {
            backoff.idle();
        }
    }
}

fn abandon(current: Option<Current>) {
    if let Some(c) = current {
        c.counters[c.slot].cancel.store(1, Ordering::Relaxed);
        // Dropping `c.cmds` closes the link: the worker returns at its next `recv`.
    }
}

/// Sends the worker's counters if they changed (at most every 500 µs, unless `force`).
fn report(pump: &mut Pump, c: &mut Current, force: bool) {
    let w = &c.counters[c.slot];
    let done = w.tasks_done.load(Ordering::Acquire);
    let now_task = w.current();
    let key = (done, now_task.map(|(t, _)| t));
    if key == c.reported || (!force && c.reported_at.elapsed() < Duration::from_micros(500)) {
        return;
    }
    c.reported = key;
    c.reported_at = Instant::now();
    let current = now_task.map(|(t, started)| {
        let elapsed = if started == 0 {
            0
        } else {
            monotonic_ns().saturating_sub(started)
        };
        (t, elapsed)
    });
    let msg = FromWorker::Progress {
        epoch: c.epoch,
        slot: c.slot,
        generation: c.generation,
        done,
        current,
    };
    pump.send(0, encode(&msg, &[]));
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
        let mut bulk = Vec::new();
        let event = match event {
            Event::ChunkDone {
                worker,
                generation,
                call,
                first,
                output,
            } => {
                bulk = match output {
                    Data::Bytes(b) => b,
                    Data::Local(_) => unreachable!("MPI workers run jobs on bytes"),
                };
                WireEvent::ChunkDone {
                    worker,
                    generation,
                    call,
                    first,
                }
            }
            Event::Ready { worker, generation } => WireEvent::Ready { worker, generation },
            Event::Failed {
                generation,
                failure,
            } => WireEvent::Failed {
                generation,
                failure,
            },
            Event::Timings {
                generation,
                timings,
            } => WireEvent::Timings {
                generation,
                timings,
            },
            Event::Exited {
                worker,
                generation,
                reason,
                exit_result,
            } => WireEvent::Exited {
                worker,
                generation,
                reason,
                exit_result,
            },
            Event::Died { .. } => return,
        };
        let msg = FromWorker::Event {
            epoch: self.link.epoch,
            event,
        };
        let _ = self.link.tx.send(encode(&msg, &bulk));
    }
}
