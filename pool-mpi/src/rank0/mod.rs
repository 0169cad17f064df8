//! Rank 0's MPI thread: the one thread of the program that talks MPI.
//!
//! 1. Start: initialize MPI, send `Hello` (rank 0's host, pid and executable digest) to every
//!    worker rank; each answers `Alive` with its own. A rank whose digest differs is refused
//!    ([`Rank0::check_ranks`] makes pool creation fail once every rank has answered, naming the
//!    lowest refused rank in full and the others by number).
//! 2. Loop (`serve`): send what the back end queues (woken at once by its channel); probe incoming
//!    messages (see [`crate::pump::Idle`]); believe a worker message only if its epoch, slot,
//!    generation and rank match where the back end placed that worker, and a chunk result only
//!    for a chunk that worker owes; update the slot's counters from the snapshot that rides on
//!    every message, then forward the event.
//! 3. Liveness (`liveness`), every [`CHECK_EVERY`]: a rank on this host is watched through a pidfd (its end
//!    is seen at once) and `/proc` (stopped for [`STOPPED_LIMIT`] means dead); any rank silent
//!    for the silence limit (`POOL_MPI_DEAD_AFTER_MS`, default 1500 ms; ranks say `Alive`
//!    every [`crate::HEARTBEAT`]) is dead. A dead rank is killed when it is on this host (so
//!    a stopped one cannot come back, and mpirun can end), and every worker placed on it is
//!    reported `Died` with its rank, host, pid and the task it held. Rank 0 says `Beat`
//!    every heartbeat, so worker ranks can tell when it is gone.
//! 4. `Finish` (process exit, or [`finalize`]): `Shutdown` to every live rank, wait for the
//!    sends (bounded), finalize MPI unless a rank died (Open MPI's finalize would wait for it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded, unbounded};
use mpi::Threading;
use pool_core::{Event, WorkerCounters};
use pool_wire::parent::Outstanding;

use crate::msg::Whereabouts;
use crate::pump::{Frame, Pump};

use self::serve::Loop;

mod liveness;
mod serve;

/// How often liveness is checked.
const CHECK_EVERY: Duration = Duration::from_millis(10);

/// What the back end asks of the MPI thread.
pub(crate) enum Out {
    /// A pool starts using the worker ranks.
    Attach(Route),
    /// It stops.
    Detach,
    /// A worker was placed on `rank` for `slot`.
    Started {
        slot: usize,
        rank: usize,
        generation: u64,
        base: u64,
        outstanding: Outstanding,
    },
    /// The worker of `slot` was stopped or abandoned.
    Stopped { slot: usize },
    /// Bytes for a rank.
    Send { rank: usize, bytes: Frame },
    /// The program ends: release the worker ranks, finalize MPI, then say so on the sender.
    Finish(Sender<()>),
}

/// Where the events and counters of the attached pool go.
pub(crate) struct Route {
    pub(crate) epoch: u64,
    pub(crate) events: Sender<Event>,
    pub(crate) counters: Arc<Vec<WorkerCounters>>,
}

/// What rank 0 knows of a worker rank, for the back end.
#[derive(Debug, Clone, Default)]
pub(crate) struct RankInfo {
    pub(crate) at: Option<Whereabouts>,
    /// Why the rank cannot serve (another binary), if so.
    pub(crate) refused: Option<String>,
}

/// Rank 0's handle on its MPI thread.
pub(crate) struct Rank0 {
    pub(crate) tx: Sender<Out>,
    /// The world size.
    pub(crate) size: usize,
    /// Ranks judged dead, by rank.
    pub(crate) dead: Arc<Vec<AtomicBool>>,
    /// What each rank said of itself, by rank.
    pub(crate) info: Arc<Mutex<Vec<RankInfo>>>,
    /// Whether a pool holds the worker ranks.
    pub(crate) busy: AtomicBool,
    /// Pool ids.
    pub(crate) epochs: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    pid: u32,
}

impl Rank0 {
    /// Waits (bounded) until every worker rank has answered or is dead; fails naming a rank
    /// that runs another binary.
    pub(crate) fn check_ranks(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = lock(&self.info).clone();
            let waiting: Vec<usize> = (1..self.size)
                .filter(|&r| info[r].at.is_none() && !self.dead[r].load(Ordering::Relaxed))
                .collect();
            let refused: Vec<(usize, &String)> = (info.iter().enumerate())
                .filter_map(|(rank, i)| Some((rank, i.refused.as_ref()?)))
                .collect();
            // Every rank's answer is in before one is named, so the error is the same
            // whichever rank answered first: the lowest refused rank in full, then the others.
            if let Some((_, first)) = refused.first()
                && (waiting.is_empty() || Instant::now() > deadline)
            {
                let others: Vec<String> = refused[1..].iter().map(|(r, _)| r.to_string()).collect();
                return Err(match others.len() {
                    0 => first.to_string(),
                    _ => format!("{first}; likewise MPI rank(s) {}", others.join(", ")),
                });
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "MPI ranks {waiting:?} never answered rank 0: are they running this program \
                     with `pool::entry()` first in main?"
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn describe(rank: usize, at: Option<&Whereabouts>) -> String {
    match at {
        Some(a) => format!("MPI rank {rank} (host {}, pid {})", a.host, a.pid),
        None => format!("MPI rank {rank}"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            let info = Arc::new(Mutex::new(vec![RankInfo::default(); size]));
            let _ = ready_tx.send(Ok((size, dead.clone(), info.clone())));
            let (finalize, done) = Loop::new(pump, dead, info).serve(rx);
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
    let (size, dead, info) = ready_rx
        .recv()
        .map_err(|_| "the MPI thread died while initializing MPI".to_string())??;
    // SAFETY: `at_exit` is an `extern "C" fn()` that never unwinds.
    unsafe { libc::atexit(at_exit) };
    Ok(Rank0 {
        tx,
        size,
        dead,
        info,
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
    let Some(thread) = lock(&r.thread).take() else {
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
pub(crate) fn silence_limit() -> Duration {
    std::env::var("POOL_MPI_DEAD_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_millis(1500), Duration::from_millis)
}
