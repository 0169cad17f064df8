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

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, unbounded};
use pool_core::{WorkerCounters, monotonic_ns};
use pool_ipc::backend::wire::WireCommand;

use crate::link::{Entry, MpiLink};
use crate::msg::{FromWorker, ToWorker, decode, encode};
use crate::pump::{Backoff, Pump};

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
                    let (slot, generation, out) = (boot.slot, boot.generation, out_tx.clone());
                    let spawned = std::thread::Builder::new().name(name).spawn(move || {
                        let run = || entry(boot, bytes, link, counters);
                        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                        {
                            let what = p
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| p.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            let msg = FromWorker::Lost {
                                epoch,
                                slot,
                                generation,
                                message: format!("the worker thread on this rank panicked: {what}"),
                            };
                            let _ = out.send(encode(&msg, &[]));
                        }
                    });
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
