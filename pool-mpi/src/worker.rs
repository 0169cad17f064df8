//! A worker rank (rank > 0): its main thread is the MPI loop; each worker it is asked to start
//! runs `pool_core::run_worker` in a thread of its own, linked to the loop by channels.
//!
//! 1. `Hello`: rank 0 says where it runs and which binary; the rank answers `Alive` with its
//!    own whereabouts and digest (and again every [`crate::HEARTBEAT`]). A rank whose binary
//!    differs starts no worker: it cannot trust a function id.
//! 2. `Shared` (once per pool, sent by rank 0 to one rank and relayed rank to rank down a
//!    binary tree): the frame is passed on as it is, and waits in a slot that the pool's
//!    first worker here decodes, replacing it (one copy per rank). `Start` (once per worker life; a rank
//!    may run several workers when ranks have died) starts a worker thread.
//! 3. Commands go to the worker thread; its events go to rank 0 with its counters; between
//!    events, changed counters go as `Progress` at most every [`crate::REPORT_EVERY`].
//! 4. `Kill` abandons a worker (cancel flag, closed link): a thread cannot be killed, so a task
//!    stuck forever keeps its thread, as under `StartMethod::Threading`.
//! 5. A task that calls `process::exit`: the exit hook stops that thread until the loop has told
//!    rank 0 which task each worker held (`Lost`, `rank_ends`), then lets the exit go on.
//! 6. Rank 0 gone (its pidfd on this host, or no `Beat` for the silence limit): the rank
//!    exits at once, without MPI (nothing would answer). `Shutdown`: exit, finalizing MPI
//!    unless a rank died.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, unbounded};
use pool_core::WorkerCounters;
use pool_wire::fnid::ExeDigest;
use pool_wire::msg::{ToWorker, decode_framed, encode_framed, peek_framed};

use crate::link::{Entry, MpiCarrier, SharedSlot, SharedState, snapshot};
use crate::msg::{Down, Snapshot, Up, Whereabouts, WorkerKey};
use crate::pump::{Frame, Idle, Pump};
use crate::watch::{PeerState, PeerWatch};

struct Current {
    key: WorkerKey,
    cmds: Sender<(ToWorker, Vec<u8>)>,
    counters: Arc<Vec<WorkerCounters>>,
    reported: Snapshot,
    reported_at: Instant,
}

static LOOP_THREAD: OnceLock<ThreadId> = OnceLock::new();
static EXIT_ASKED: AtomicBool = AtomicBool::new(false);
static EXIT_REPORTED: AtomicBool = AtomicBool::new(false);

/// Runs when any thread calls `exit`: a worker thread (a task's `process::exit`) waits, bounded,
/// until the loop has reported what it held.
extern "C" fn on_exit() {
    if LOOP_THREAD.get() == Some(&std::thread::current().id()) {
        return;
    }
    EXIT_ASKED.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    while !EXIT_REPORTED.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The life of a worker rank; returns when rank 0 says the program is over, with whether to
/// finalize MPI.
pub(crate) fn serve(mut pump: Pump) -> bool {
    let _ = LOOP_THREAD.set(std::thread::current().id());
    // SAFETY: `on_exit` is an `extern "C" fn()` that never unwinds.
    unsafe { libc::atexit(on_exit) };
    let rank = pump.rank();
    let me = Whereabouts::here();
    let digest = ExeDigest::current().map_err(|e| e.to_string());
    let alive = encode_framed(
        &Up::Alive {
            at: me.clone(),
            digest: digest.clone(),
        },
        &[],
    );
    let (out_tx, out_rx) = unbounded::<Vec<u8>>();
    let shared: SharedSlot = Arc::default();
    let mut workers: HashMap<usize, Current> = HashMap::new();
    let mut trusted = false;
    let mut rank0: Option<(Whereabouts, Option<PeerWatch>)> = None;
    let mut rank0_seen = Instant::now();
    let limit = crate::rank0::silence_limit();
    let mut idle = Idle::for_this_thread();
    let (mut last_alive, mut last_check) = (Instant::now(), Instant::now());
    loop {
        let mut busy = false;
        while let Some((_, bytes)) = pump.poll() {
            busy = true;
            rank0_seen = Instant::now();
            if let Some((Down::Shared { epoch, relay }, offset)) = peek_framed::<Down>(&bytes) {
                let frame = Arc::new(bytes);
                relay_on(&mut pump, rank as usize, &relay, &frame);
                let (state, arrived) = &*shared;
                *state.lock().unwrap_or_else(|e| e.into_inner()) = SharedState::Raw {
                    epoch,
                    frame,
                    offset,
                };
                arrived.notify_all();
                continue;
            }
            let Some((msg, bulk)) = decode_framed::<Down>(bytes) else {
                eprintln!("pool-mpi rank {rank}: garbled message from rank 0");
                continue;
            };
            match msg {
                Down::Hello {
                    rank0: r0,
                    digest: theirs,
                } => {
                    trusted = digest.as_ref().is_ok_and(|d| *d == theirs);
                    if !trusted {
                        eprintln!(
                            "pool-mpi rank {rank} ({}, pid {}): this rank runs another executable \
                             than rank 0 ({:?} here, {theirs} there): it will start no worker",
                            me.host, me.pid, digest
                        );
                    }
                    let watch = PeerWatch::local(&r0, &me);
                    rank0 = Some((r0, watch));
                    pump.send(0, alive.clone());
                    last_alive = Instant::now();
                }
                Down::Beat => {}
                Down::Shared { .. } => {} // taken above, without unframing
                Down::Start { key, entry, boot } => {
                    abandon(workers.remove(&key.slot));
                    if !trusted {
                        continue;
                    }
                    let (cmds, rx) = unbounded();
                    let counters: Arc<Vec<WorkerCounters>> =
                        Arc::new((0..=key.slot).map(|_| WorkerCounters::default()).collect());
                    let carrier = MpiCarrier {
                        rx,
                        tx: out_tx.clone(),
                        key,
                        counters: counters.clone(),
                    };
                    workers.insert(
                        key.slot,
                        Current {
                            key,
                            cmds,
                            counters: counters.clone(),
                            reported: Snapshot::default(),
                            reported_at: Instant::now(),
                        },
                    );
                    // SAFETY: rank 0 made this id from `link::boot::<Sh, St>` (an `Entry`) of
                    // this same binary (`trusted`: the digests match).
                    let entry = unsafe { pool_wire::boot::rebuilt::<Entry>(entry) };
                    let (out, slot) = (out_tx.clone(), shared.clone());
                    let spawned = std::thread::Builder::new()
                        .name(format!("pool-mpi-worker-{}", key.slot))
                        .spawn(move || {
                            let run = || entry(key, boot, slot, carrier, counters.clone());
                            if let Err(p) =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                            {
                                let what = p
                                    .downcast_ref::<&str>()
                                    .map(|s| s.to_string())
                                    .or_else(|| p.downcast_ref::<String>().cloned())
                                    .unwrap_or_default();
                                let msg = Up::Lost {
                                    key,
                                    counters: snapshot(&counters[key.slot]),
                                    message: format!(
                                        "the worker thread on this rank panicked: {what}"
                                    ),
                                    rank_ends: false,
                                };
                                let _ = out.send(encode_framed(&msg, &[]));
                            }
                        });
                    if let Err(e) = spawned {
                        eprintln!("pool-mpi rank {rank}: cannot start a worker thread: {e}");
                    }
                }
                Down::Cmd { key, cmd } => {
                    if let Some(c) = workers.get(&key.slot).filter(|c| c.key == key) {
                        let _ = c.cmds.send((cmd, bulk));
                    }
                }
                Down::Kill { key } => {
                    if workers.get(&key.slot).is_some_and(|c| c.key == key) {
                        abandon(workers.remove(&key.slot));
                    }
                }
                Down::Shutdown { finalize } => {
                    for (_, c) in workers.drain() {
                        abandon(Some(c));
                    }
                    while let Ok(bytes) = out_rx.try_recv() {
                        pump.send(0, bytes);
                    }
                    flush(&mut pump, Duration::from_secs(2));
                    return finalize;
                }
            }
        }
        while let Ok(bytes) = out_rx.try_recv() {
            busy = true;
            pump.send(0, bytes);
        }
        for c in workers.values_mut() {
            report(&mut pump, c);
        }
        if EXIT_ASKED.load(Ordering::SeqCst) && !EXIT_REPORTED.load(Ordering::SeqCst) {
            // A task is exiting the process: say which task each worker held, then let it.
            while let Ok(bytes) = out_rx.try_recv() {
                pump.send(0, bytes);
            }
            for c in workers.values() {
                let msg = Up::Lost {
                    key: c.key,
                    counters: snapshot(&c.counters[c.key.slot]),
                    message: "the process exited (std::process::exit or libc exit) during the task"
                        .into(),
                    rank_ends: true,
                };
                pump.send(0, encode_framed(&msg, &[]));
            }
            flush(&mut pump, Duration::from_millis(500));
            EXIT_REPORTED.store(true, Ordering::SeqCst);
        }
        if last_alive.elapsed() >= crate::HEARTBEAT && rank0.is_some() {
            last_alive = Instant::now();
            pump.send(0, alive.clone());
        }
        if last_check.elapsed() >= Duration::from_millis(10) {
            last_check = Instant::now();
            let gone = match rank0.as_mut() {
                Some((_, Some(w))) => matches!(w.check(), PeerState::Gone),
                _ => false,
            } || rank0_seen.elapsed() > limit.max(Duration::from_secs(1)) * 2;
            if gone {
                let whom = rank0
                    .as_ref()
                    .map_or("?".into(), |(a, _)| format!("{}, pid {}", a.host, a.pid));
                eprintln!(
                    "pool-mpi rank {rank} ({}, pid {}): rank 0 ({whom}) is gone; exiting",
                    me.host, me.pid
                );
                // SAFETY: ends the process at once: no MPI call could complete with rank 0
                // gone, and no destructor or exit hook must wait for it.
                unsafe { libc::_exit(1) };
            }
        }
        pump.progress();
        if busy {
            idle.busy();
            continue;
        }
        if let Some(bytes) = idle.next(&out_rx) {
            pump.send(0, bytes);
        }
    }
}

/// Passes the shared objects' frame on to this rank's children in the relay tree.
fn relay_on(pump: &mut Pump, me: usize, relay: &[usize], frame: &Arc<Vec<u8>>) {
    let Some(i) = relay.iter().position(|&r| r == me) else {
        return;
    };
    for child in [2 * i + 1, 2 * i + 2] {
        if let Some(&r) = relay.get(child) {
            pump.send(r as i32, Frame::Shared(frame.clone()));
        }
    }
}

fn flush(pump: &mut Pump, limit: Duration) {
    let deadline = Instant::now() + limit;
    while pump.in_flight() > 0 && Instant::now() < deadline {
        pump.progress();
        std::thread::sleep(Duration::from_micros(100));
    }
}

fn abandon(current: Option<Current>) {
    if let Some(c) = current {
        c.counters[c.key.slot].cancel.store(1, Ordering::Relaxed);
        // Dropping `c.cmds` closes the link: the worker returns at its next `recv`.
    }
}

/// Sends the worker's counters if they changed, at most every [`crate::REPORT_EVERY`].
fn report(pump: &mut Pump, c: &mut Current) {
    if c.reported_at.elapsed() < crate::REPORT_EVERY {
        return;
    }
    let now = snapshot(&c.counters[c.key.slot]);
    if (now.done, now.current.map(|(t, _)| t))
        == (c.reported.done, c.reported.current.map(|(t, _)| t))
    {
        return;
    }
    c.reported = now;
    c.reported_at = Instant::now();
    pump.send(
        0,
        encode_framed(
            &Up::Progress {
                key: c.key,
                counters: now,
            },
            &[],
        ),
    );
}
