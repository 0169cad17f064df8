//! Rank 0's MPI thread: the one thread of the program that talks MPI. It initializes MPI, sends
//! what the back end queues, turns worker ranks' messages into `pool_core` events and counter
//! updates, judges ranks dead when they stop answering, and at process exit tells every worker
//! rank to finish and finalizes MPI.
//!
//! Why one thread and not `MPI_THREAD_MULTIPLE`: Open MPI 4.1 supports it, but a blocking
//! receive in one thread beside sends from others still needs a poll loop to notice local
//! commands, and funnelling everything through one thread works with any MPI build
//! (`MPI_THREAD_FUNNELED` suffices, since this thread is the one that initializes MPI).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use mpi::Threading;
use pool_core::{Event, WorkerCounters, monotonic_ns};
use pool_ipc::backend::wire::WireEvent;

use crate::msg::{FromWorker, ToWorker, decode, encode};
use crate::pump::{Backoff, Pump};

/// What the back end asks of the MPI thread.
pub(crate) enum Out {
    /// A pool starts using the worker ranks.
    Attach(Route),
    /// It stops.
    Detach,
    /// A worker was started in `slot` (so liveness is checked and counters are its).
    Started {
        slot: usize,
        generation: u64,
        base: u64,
    },
    /// The worker of `slot` was stopped or abandoned.
    Stopped { slot: usize },
    /// Bytes for a rank.
    Send { rank: i32, bytes: Vec<u8> },
    /// The program ends: release the worker ranks, finalize MPI, then say so on the sender.
    Finish(Sender<()>),
}

/// Where the events and counters of the attached pool go.
pub(crate) struct Route {
    pub(crate) epoch: u64,
    pub(crate) events: Sender<Event>,
    pub(crate) counters: Arc<Vec<WorkerCounters>>,
}

/// Rank 0's handle on its MPI thread.
pub(crate) struct Rank0 {
    pub(crate) tx: Sender<Out>,
    /// The world size.
    pub(crate) size: usize,
    /// Ranks judged dead, by rank.
    pub(crate) dead: Arc<Vec<AtomicBool>>,
    /// Whether a pool holds the worker ranks.
    pub(crate) busy: AtomicBool,
    /// Pool ids.
    pub(crate) epochs: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    pid: u32,
}

static RANK0: OnceLock<Result<Rank0, String>> = OnceLock::new();

/// The MPI thread of rank 0, started (and MPI initialized) on first use.
pub(crate) fn rank0() -> Result<&'static Rank0, String> {
    RANK0.get_or_init(start).as_ref().map_err(Clone::clone)
}

fn start() -> Result<Rank0, String> {
    let (tx, rx) = unbounded();
    let (ready_tx, ready_rx) = bounded(1);
    let thread = std::thread::Builder::new()
        .name("pool-mpi".into())
        .spawn(move || {
            let Some((universe, _level)) = mpi::initialize_with_threading(Threading::Funneled)
            else {
                let _ = ready_tx.send(Err("MPI is already initialized by someone else".into()));
                return;
            };
            let pump = Pump::new(universe.world());
            if pump.rank() != 0 {
                let _ = ready_tx.send(Err(format!(
                    "the pool runs on MPI rank 0, this is rank {}",
                    pump.rank()
                )));
                return;
            }
            let size = pump.size() as usize;
            let dead: Arc<Vec<AtomicBool>> =
                Arc::new((0..size).map(|_| AtomicBool::new(false)).collect());
            let _ = ready_tx.send(Ok((size, dead.clone())));
            let (finalize, done) = serve(pump, rx, dead);
            if finalize {
                drop(universe); // MPI_Finalize
            } else {
                // Open MPI's finalize waits for every rank, the dead one too.
                eprintln!("pool-mpi: a worker rank died, so MPI is not finalized");
                std::mem::forget(universe);
            }
            let _ = done.send(());
        })
        .map_err(|e| format!("cannot start the MPI thread: {e}"))?;
    let (size, dead) = ready_rx
        .recv()
        .map_err(|_| "the MPI thread died while initializing MPI".to_string())??;
    // SAFETY: `at_exit` is an `extern "C" fn()` that never unwinds.
    unsafe { libc::atexit(at_exit) };
    Ok(Rank0 {
        tx,
        size,
        dead,
        busy: AtomicBool::new(false),
        epochs: AtomicU64::new(1),
        thread: Mutex::new(Some(thread)),
        pid: std::process::id(),
    })
}

extern "C" fn at_exit() {
    finalize();
}

/// Ends the MPI session of rank 0: worker ranks are told to exit, MPI is finalized. Runs by
/// itself at process exit; call it earlier to end MPI sooner. Idempotent; pools made after it
/// fail.
pub fn finalize() {
    let Some(Ok(r)) = RANK0.get() else { return };
    if r.pid != std::process::id() {
        return; // a forked child of rank 0: the MPI thread is not here
    }
    let Some(thread) = r.thread.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    let (done_tx, done_rx) = bounded(1);
    if r.tx.send(Out::Finish(done_tx)).is_ok()
        && done_rx.recv_timeout(Duration::from_secs(20)).is_ok()
    {
        let _ = thread.join();
    } else {
        // Never hang the program's exit on MPI: leave the thread behind.
        eprintln!("pool-mpi: MPI did not finalize within 20 s; exiting without it");
    }
}

/// How long a worker rank may stay silent before it is judged dead.
fn silence_limit() -> Duration {
    std::env::var("POOL_MPI_DEAD_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

struct Live {
    generation: u64,
    base: u64,
    live: bool,
}

/// The MPI thread's loop; returns at `Finish` with whether MPI may be finalized (no rank died)
/// and whom to tell when it is done.
fn serve(mut pump: Pump, rx: Receiver<Out>, dead: Arc<Vec<AtomicBool>>) -> (bool, Sender<()>) {
    let size = pump.size() as usize;
    let limit = silence_limit();
    let mut route: Option<Route> = None;
    let mut slots: Vec<Live> = (1..size)
        .map(|_| Live {
            generation: 0,
            base: 0,
            live: false,
        })
        .collect();
    let mut seen: Vec<Instant> = vec![Instant::now(); size];
    let mut who: Vec<String> = vec![String::new(); size];
    let mut backoff = Backoff::default();
    let mut last_check = Instant::now();
    loop {
        let mut busy = false;
        while let Ok(out) = rx.try_recv() {
            busy = true;
            match out {
                Out::Attach(r) => route = Some(r),
                Out::Detach => {
                    route = None;
                    slots.iter_mut().for_each(|s| s.live = false);
                }
                Out::Started {
                    slot,
                    generation,
                    base,
                } => {
                    slots[slot] = Live {
                        generation,
                        base,
                        live: true,
                    };
                    seen[slot + 1] = seen[slot + 1].max(Instant::now() - limit / 2);
                }
                Out::Stopped { slot } => slots[slot].live = false,
                Out::Send { rank, bytes } => {
                    pump.send(rank, bytes);
                }
                Out::Finish(done) => {
                    let finalize = !dead.iter().any(|d| d.load(Ordering::Relaxed));
                    let bye = encode(&ToWorker::Shutdown { finalize }, &[]);
                    for rank in 1..size {
                        if !dead[rank].load(Ordering::Relaxed) {
                            pump.send(rank as i32, bye.clone());
                        }
                    }
                    let deadline = Instant::now() + Duration::from_secs(2);
                    while pump.in_flight() > 0 && Instant::now() < deadline {
                        pump.progress();
                        while pump.poll().is_some() {}
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    return (finalize, done);
                }
            }
        }
        pump.progress();
        while let Some((src, bytes)) = pump.poll() {
            busy = true;
            let src = src as usize;
            seen[src] = Instant::now();
            let Some((msg, bulk)) = decode::<FromWorker>(bytes) else {
                eprintln!("pool-mpi: garbled message from rank {src}");
                continue;
            };
            let slot = src - 1;
            match msg {
                FromWorker::Alive { host, pid } => {
                    if who[src].is_empty() {
                        who[src] = format!("{host}, pid {pid}");
                    }
                }
                FromWorker::Progress {
                    epoch,
                    slot: s,
                    generation,
                    done,
                    current,
                } => {
                    let Some(r) = route.as_ref().filter(|r| r.epoch == epoch) else {
                        continue;
                    };
                    if s != slot || slots[slot].generation != generation || !slots[slot].live {
                        continue;
                    }
                    let c = &r.counters[slot];
                    c.tasks_done
                        .store(slots[slot].base + done, Ordering::Release);
                    match current {
                        Some((task, elapsed)) => {
                            c.started_ns.store(
                                monotonic_ns().saturating_sub(elapsed).max(1),
                                Ordering::Relaxed,
                            );
                            c.current_task
                                .store(task.wrapping_add(1), Ordering::Relaxed);
                        }
                        None => {
                            c.current_task.store(0, Ordering::Relaxed);
                            c.started_ns.store(0, Ordering::Relaxed);
                        }
                    }
                }
                FromWorker::Lost {
                    epoch,
                    slot: s,
                    generation,
                    message,
                } => {
                    let Some(r) = route.as_ref().filter(|r| r.epoch == epoch) else {
                        continue;
                    };
                    if s == slot && slots[slot].generation == generation && slots[slot].live {
                        slots[slot].live = false;
                        let _ = r.events.send(Event::Died {
                            worker: slot,
                            generation,
                            message: format!("MPI rank {src}: {message}"),
                        });
                    }
                }
                FromWorker::Event { epoch, event } => {
                    let Some(r) = route.as_ref().filter(|r| r.epoch == epoch) else {
                        continue;
                    };
                    if let WireEvent::Exited { generation, .. } = &event
                        && slots[slot].generation == *generation
                    {
                        slots[slot].live = false;
                    }
                    let _ = r.events.send(event.into_event(bulk));
                }
            }
        }
        if last_check.elapsed() > Duration::from_millis(100) {
            last_check = Instant::now();
            for rank in 1..size {
                if dead[rank].load(Ordering::Relaxed) || seen[rank].elapsed() <= limit {
                    continue;
                }
                dead[rank].store(true, Ordering::Relaxed);
                let slot = rank - 1;
                let whom = if who[rank].is_empty() {
                    String::new()
                } else {
                    format!(" ({})", who[rank])
                };
                let message = format!(
                    "MPI rank {rank}{whom} stopped answering (silent for {:.1} s): it died or \
                     its host is unreachable",
                    seen[rank].elapsed().as_secs_f64()
                );
                eprintln!("pool-mpi: {message}");
                if slots[slot].live
                    && let Some(r) = route.as_ref()
                {
                    slots[slot].live = false;
                    let _ = r.events.send(Event::Died {
                        worker: slot,
                        generation: slots[slot].generation,
                        message,
                    });
                }
            }
        }
        if busy {
            backoff.reset();
        } else {
            backoff.idle();
        }
    }
}
