//! Rank 0's MPI thread: the one thread of the program that talks MPI.
//!
//! 1. Start: initialize MPI, send `Hello` (rank 0's host, pid and executable digest) to every
//!    worker rank; each answers `Alive` with its own. A rank whose digest differs is refused
//!    ([`Rank0::check_ranks`] makes pool creation fail, naming it).
//! 2. Loop: send what the back end queues (woken at once by its channel); probe incoming
//!    messages (see [`crate::pump::Idle`]); believe a worker message only if its epoch, slot,
//!    generation and rank match where the back end placed that worker, and a chunk result only
//!    for a chunk that worker owes; update the slot's counters from the snapshot that rides on
//!    every message, then forward the event.
//! 3. Liveness, every [`CHECK_EVERY`]: a rank on this host is watched through a pidfd (its end
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

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use mpi::Threading;
use pool_core::{Event, WorkerCounters, monotonic_ns};
use pool_wire::fnid::ExeDigest;
use pool_wire::msg::{FromWorker, decode_framed, encode_framed};
use pool_wire::parent::Outstanding;

use crate::msg::{Down, Snapshot, Up, Whereabouts, WorkerKey};
use crate::pump::{Frame, Idle, Pump};
use crate::watch::{PeerState, PeerWatch};

/// How often liveness is checked.
const CHECK_EVERY: Duration = Duration::from_millis(10);
/// A pessimistic transfer rate for big frames: their receivers' silence is excused that long.
const SLOW_BYTES_PER_SEC: f64 = 20e6;

/// How long a rank on this host may stay stopped before it is judged dead.
const STOPPED_LIMIT: Duration = Duration::from_millis(300);

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

/// A worker placed on a rank.
struct Placed {
    rank: usize,
    generation: u64,
    base: u64,
    live: bool,
    outstanding: Outstanding,
}

struct Peer {
    seen: Instant,
    /// Silence is no sign of death until then (a big frame on its way to the rank).
    excused_until: Instant,
    watch: Option<PeerWatch>,
}

struct Loop {
    pump: Pump,
    dead: Arc<Vec<AtomicBool>>,
    info: Arc<Mutex<Vec<RankInfo>>>,
    me: Whereabouts,
    digest: Result<ExeDigest, String>,
    peers: Vec<Peer>,
    route: Option<Route>,
    placed: Vec<Option<Placed>>,
    limit: Duration,
}

impl Loop {
    fn new(pump: Pump, dead: Arc<Vec<AtomicBool>>, info: Arc<Mutex<Vec<RankInfo>>>) -> Self {
        let size = pump.size() as usize;
        Loop {
            pump,
            dead,
            info,
            me: Whereabouts::here(),
            digest: ExeDigest::current().map_err(|e| e.to_string()),
            peers: (0..size)
                .map(|_| Peer {
                    seen: Instant::now(),
                    excused_until: Instant::now(),
                    watch: None,
                })
                .collect(),
            route: None,
            placed: Vec::new(),
            limit: silence_limit(),
        }
    }

    fn size(&self) -> usize {
        self.peers.len()
    }

    fn is_dead(&self, rank: usize) -> bool {
        self.dead[rank].load(Ordering::SeqCst)
    }

    fn send_to_live_ranks(&mut self, bytes: &[u8]) {
        for rank in 1..self.size() {
            if !self.is_dead(rank) {
                self.pump.send(rank as i32, bytes.to_vec());
            }
        }
    }

    fn serve(mut self, rx: Receiver<Out>) -> (bool, Sender<()>) {
        if let Ok(digest) = self.digest {
            let hello = encode_framed(
                &Down::Hello {
                    rank0: self.me.clone(),
                    digest,
                },
                &[],
            );
            for rank in 1..self.size() {
                self.pump.send(rank as i32, hello.clone());
            }
        }
        let beat = encode_framed(&Down::Beat, &[]);
        let mut idle = Idle::for_this_thread();
        let (mut last_check, mut last_beat) = (Instant::now(), Instant::now());
        loop {
            let mut busy = false;
            while let Ok(out) = rx.try_recv() {
                busy = true;
                if let Some(done) = self.local(out) {
                    return self.finish(done);
                }
            }
            self.pump.progress();
            while let Some((src, bytes)) = self.pump.poll() {
                busy = true;
                self.incoming(src as usize, bytes);
            }
            if last_check.elapsed() >= CHECK_EVERY {
                last_check = Instant::now();
                self.check_liveness();
            }
            if last_beat.elapsed() >= crate::HEARTBEAT {
                last_beat = Instant::now();
                self.send_to_live_ranks(&beat);
            }
            if busy {
                idle.busy();
                continue;
            }
            if let Some(out) = idle.next(&rx)
                && let Some(done) = self.local(out)
            {
                return self.finish(done);
            }
        }
    }

    /// A request of the back end; `Some` at `Finish`.
    fn local(&mut self, out: Out) -> Option<Sender<()>> {
        match out {
            Out::Attach(r) => {
                self.placed = (0..r.counters.len()).map(|_| None).collect();
                self.route = Some(r);
            }
            Out::Detach => {
                self.route = None;
                self.placed.clear();
            }
            Out::Started {
                slot,
                rank,
                generation,
                base,
                outstanding,
            } => {
                if let Some(p) = self.placed.get_mut(slot) {
                    *p = Some(Placed {
                        rank,
                        generation,
                        base,
                        live: true,
                        outstanding,
                    });
                }
                if self.is_dead(rank) {
                    // Placed while the rank was dying: it will never answer.
                    let m = format!("{} is dead", self.describe(rank));
                    self.died(slot, m);
                }
            }
            Out::Stopped { slot } => {
                if let Some(Some(p)) = self.placed.get_mut(slot) {
                    p.live = false;
                }
            }
            Out::Send { rank, bytes } => {
                self.excuse_big_frame(&bytes);
                self.pump.send(rank as i32, bytes);
            }
            Out::Finish(done) => return Some(done),
        }
        None
    }

    /// A rank busy receiving a frame of hundreds of MB (the shared objects, relayed down the
    /// tree) cannot say it is alive meanwhile: its silence is excused for as long as the frame
    /// may take to reach it, at a pessimistic [`SLOW_BYTES_PER_SEC`] per hop.
    fn excuse_big_frame(&mut self, frame: &Frame) {
        let bytes = frame.bytes();
        if bytes.len() < 1 << 20 {
            return;
        }
        let Some((Down::Shared { relay, .. }, _)) = pool_wire::msg::peek_framed::<Down>(bytes)
        else {
            return;
        };
        let hop = Duration::from_secs_f64(bytes.len() as f64 / SLOW_BYTES_PER_SEC);
        for (i, &r) in relay.iter().enumerate() {
            let depth = usize::BITS - (i + 1).leading_zeros(); // 1 for the root
            if let Some(p) = self.peers.get_mut(r) {
                p.excused_until = p.excused_until.max(Instant::now() + hop * depth);
            }
        }
    }

    fn finish(mut self, done: Sender<()>) -> (bool, Sender<()>) {
        let finalize = !(1..self.size()).any(|r| self.is_dead(r));
        let bye = encode_framed(&Down::Shutdown { finalize }, &[]);
        self.send_to_live_ranks(&bye);
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.pump.in_flight() > 0 && Instant::now() < deadline {
            self.pump.progress();
            while self.pump.poll().is_some() {}
            std::thread::sleep(Duration::from_micros(100));
        }
        (finalize, done)
    }

    /// The live worker `key` names, if it is the one placed on `src`.
    fn placed_for(&mut self, src: usize, key: &WorkerKey) -> Option<usize> {
        let route = self.route.as_ref()?;
        let p = self.placed.get(key.slot)?.as_ref()?;
        (route.epoch == key.epoch && p.rank == src && p.generation == key.generation && p.live)
            .then_some(key.slot)
    }

    fn apply(&self, slot: usize, s: Snapshot) {
        let (Some(r), Some(Some(p))) = (self.route.as_ref(), self.placed.get(slot)) else {
            return;
        };
        let c = &r.counters[slot];
        c.tasks_done.store(p.base + s.done, Ordering::Release);
        match s.current {
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

    fn died(&mut self, slot: usize, message: String) {
        let Some(Some(p)) = self.placed.get_mut(slot) else {
            return;
        };
        if !p.live {
            return;
        }
        p.live = false;
        let generation = p.generation;
        if let Some(r) = self.route.as_ref() {
            let _ = r.events.send(Event::Died {
                worker: slot,
                generation,
                message,
            });
        }
    }

    fn incoming(&mut self, src: usize, bytes: Vec<u8>) {
        if src == 0 || src >= self.size() {
            return;
        }
        self.peers[src].seen = Instant::now();
        let Some((msg, bulk)) = decode_framed::<Up>(bytes) else {
            eprintln!("pool-mpi: garbled message from {}", self.describe(src));
            return;
        };
        match msg {
            Up::Alive { at, digest } => self.alive(src, at, digest),
            Up::Progress { key, counters } => {
                if let Some(slot) = self.placed_for(src, &key) {
                    self.apply(slot, counters);
                }
            }
            Up::Lost {
                key,
                counters,
                message,
                rank_ends,
            } => {
                // Dead before anyone hears of it: a worker restarted on news of this death
                // must not be placed on this rank again.
                let newly_dead = rank_ends && self.mark_dead(src);
                if let Some(slot) = self.placed_for(src, &key) {
                    self.apply(slot, counters);
                    let m = format!("{}: {message}", self.describe(src));
                    self.died(slot, m);
                }
                if newly_dead {
                    self.report_dead(src, "ended its process");
                }
            }
            Up::Event { key, counters, msg } => {
                let Some(slot) = self.placed_for(src, &key) else {
                    return;
                };
                if let FromWorker::ChunkDone { call, first } = msg {
                    let owed = self.placed[slot]
                        .as_ref()
                        .is_some_and(|p| p.outstanding.returned(call, first));
                    if !owed {
                        let m = format!(
                            "{} broke the protocol: a result for a chunk it was not given \
                             (call {call}, first task {first})",
                            self.describe(src)
                        );
                        return self.died(slot, m);
                    }
                }
                self.apply(slot, counters);
                if let FromWorker::Exited { .. } = msg
                    && let Some(Some(p)) = self.placed.get_mut(slot)
                {
                    p.live = false;
                }
                let mut event = msg.into_event(slot, key.generation, bulk);
                if let Event::Timings { timings, .. } = &mut event {
                    let host = lock(&self.info)[src].at.as_ref().map(|a| a.host.clone());
                    timings.location = Some(match host {
                        Some(h) => format!("MPI rank {src} on {h}"),
                        None => format!("MPI rank {src}"),
                    });
                }
                if let Some(r) = self.route.as_ref() {
                    let _ = r.events.send(event);
                }
            }
        }
    }

    fn describe(&self, rank: usize) -> String {
        describe(rank, lock(&self.info)[rank].at.as_ref())
    }

    fn alive(&mut self, src: usize, at: Whereabouts, digest: Result<ExeDigest, String>) {
        if lock(&self.info)[src].at.is_some() {
            return;
        }
        self.peers[src].watch = PeerWatch::local(&at, &self.me);
        let refused = match (&self.digest, &digest) {
            (Ok(mine), Ok(theirs)) if mine == theirs => None,
            (Ok(mine), Ok(theirs)) => Some(format!(
                "{} runs a different executable than rank 0 (rank 0: {mine}; rank {src}: \
                 {theirs}): functions travel as offsets into the binary, so every rank must run \
                 the same build; copy the same binary to every host",
                describe(src, Some(&at))
            )),
            (Err(e), _) => Some(format!("rank 0 cannot read its own executable: {e}")),
            (_, Err(e)) => Some(format!(
                "{} cannot read its executable to check it: {e}",
                describe(src, Some(&at))
            )),
        };
        let mut info = lock(&self.info);
        info[src].at = Some(at);
        info[src].refused = refused;
    }

    fn check_liveness(&mut self) {
        for rank in 1..self.size() {
            if self.is_dead(rank) {
                continue;
            }
            let state = self.peers[rank].watch.as_mut().map(PeerWatch::check);
            let why = match state {
                Some(PeerState::Gone) => Some("ended (its process is gone)".to_string()),
                Some(PeerState::Stopped(d)) if d >= STOPPED_LIMIT => Some(format!(
                    "is stopped (SIGSTOP or a debugger) for {:.1} s; it was judged dead and killed",
                    d.as_secs_f64()
                )),
                _ => {
                    let silent = self.peers[rank].seen.elapsed();
                    let excused = Instant::now() < self.peers[rank].excused_until;
                    (silent > self.limit && !excused).then(|| {
                        format!(
                            "stopped answering (silent for {:.1} s): it died, is stopped, or its \
                             host is unreachable",
                            silent.as_secs_f64()
                        )
                    })
                }
            };
            if let Some(why) = why {
                self.judge_dead(rank, why);
            }
        }
    }

    /// Declares `rank` dead: kills it if it is on this host, reports the workers placed there.
    fn judge_dead(&mut self, rank: usize, why: String) {
        if self.mark_dead(rank) {
            self.report_dead(rank, &why);
        }
    }

    /// Marks `rank` dead (and kills it when it is on this host); false if it already was.
    fn mark_dead(&mut self, rank: usize) -> bool {
        if self.dead[rank].swap(true, Ordering::SeqCst) {
            return false;
        }
        if let Some(w) = self.peers[rank].watch.as_ref() {
            w.kill();
        }
        true
    }

    /// Reports every live worker placed on the dead `rank`.
    fn report_dead(&mut self, rank: usize, why: &str) {
        let message = format!("{} {why}", self.describe(rank));
        eprintln!("pool-mpi: {message}");
        let on_it: Vec<usize> = (0..self.placed.len())
            .filter(|&s| {
                self.placed[s]
                    .as_ref()
                    .is_some_and(|p| p.rank == rank && p.live)
            })
            .collect();
        for slot in on_it {
            self.died(slot, message.clone());
        }
    }
}
