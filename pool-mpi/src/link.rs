//! A worker thread of a worker rank: its setup rebuilt from its boot record, the pool's shared
//! objects decoded once per rank and pool, and its carrier of frames to the rank's MPI loop.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use pool_core::{
    Cause, CounterRef, Event, ExitReason, Failure, Phase, SharedObjects, WorkerCounters,
    WorkerLink, monotonic_ns,
};
use pool_wire::boot::BootRecord;
use pool_wire::msg::{FromWorker, ToWorker, encode_framed};
use pool_wire::worker::{Carrier, WorkerEnd};

use crate::msg::{Snapshot, Up, WorkerKey};

/// The pool's shared objects on this rank: the frame as it arrived (bulk from `offset`), until
/// the first worker of the pool decodes them; from then on only the decoded value (one copy
/// per rank, once the relayed sends of the frame are done).
#[derive(Default)]
pub(crate) enum SharedState {
    #[default]
    Empty,
    Raw {
        epoch: u64,
        frame: Arc<Vec<u8>>,
        offset: usize,
    },
    Decoded {
        epoch: u64,
        value: Arc<dyn Any + Send + Sync>,
    },
}

/// The state, and a condition a worker waits on when its `Start` came before the relayed
/// shared objects.
pub(crate) type SharedSlot = Arc<(Mutex<SharedState>, Condvar)>;

/// How long a worker waits for relayed shared objects.
const SHARED_PATIENCE: Duration = Duration::from_secs(20);

/// The untyped entry of a worker thread: `boot::<Sh, St>` as a plain `fn` pointer.
pub(crate) type Entry = fn(WorkerKey, BootRecord, SharedSlot, MpiCarrier, Arc<Vec<WorkerCounters>>);

/// The worker thread's end: commands in (with their bulk), framed messages out.
#[derive(Debug)]
pub(crate) struct MpiCarrier {
    pub(crate) rx: Receiver<(ToWorker, Vec<u8>)>,
    pub(crate) tx: Sender<Vec<u8>>,
    pub(crate) key: WorkerKey,
    pub(crate) counters: Arc<Vec<WorkerCounters>>,
}

/// The counters of `slot` as rank 0 wants them.
pub(crate) fn snapshot(c: &WorkerCounters) -> Snapshot {
    let current = c.current().map(|(t, started)| {
        let elapsed = if started == 0 {
            0
        } else {
            monotonic_ns().saturating_sub(started)
        };
        (t, elapsed)
    });
    Snapshot {
        done: c.tasks_done.load(std::sync::atomic::Ordering::Acquire),
        current,
    }
}

impl Carrier for MpiCarrier {
    fn recv(&mut self) -> Option<(ToWorker, Vec<u8>)> {
        self.rx.recv().ok()
    }

    fn send(&mut self, msg: &FromWorker, bulk: Option<&[u8]>) {
        // The counters ride along: one message per chunk, not one per task.
        let up = Up::Event {
            key: self.key,
            counters: snapshot(&self.counters[self.key.slot]),
            msg: msg.clone(),
        };
        let _ = self.tx.send(encode_framed(&up, bulk.unwrap_or_default()));
    }
}

fn shared_objects<Sh: SharedObjects>(slot: &SharedSlot, epoch: u64) -> Result<Arc<Sh>, String> {
    let (lock, arrived) = &**slot;
    let deadline = Instant::now() + SHARED_PATIENCE;
    let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        match &*state {
            SharedState::Decoded { epoch: e, value } if *e == epoch => {
                return value
                    .clone()
                    .downcast::<Sh>()
                    .map_err(|_| "the shared objects have another type".to_string());
            }
            SharedState::Raw {
                epoch: e,
                frame,
                offset,
            } if *e == epoch => {
                let bytes = frame.get(*offset..).unwrap_or_default();
                let value: Arc<Sh> =
                    Arc::new(postcard::from_bytes(bytes).map_err(|e| e.to_string())?);
                *state = SharedState::Decoded {
                    epoch,
                    value: value.clone(),
                };
                return Ok(value);
            }
            _ => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(format!(
                        "they did not arrive within {SHARED_PATIENCE:?} (did the rank that \
                         relays them die?)"
                    ));
                }
                state = arrived
                    .wait_timeout(state, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

/// A worker thread of a worker rank: rebuilds the setup and runs the worker.
pub(crate) fn boot<Sh: SharedObjects, St: 'static>(
    key: WorkerKey,
    record: BootRecord,
    shared: SharedSlot,
    carrier: MpiCarrier,
    counters: Arc<Vec<WorkerCounters>>,
) {
    // SAFETY: rank 0 makes rebuild ids with `Remote::job` for these types, and this rank
    // checked that it runs rank 0's binary (its digest) before starting any worker.
    let mut link = unsafe { WorkerEnd::<Sh, St, _>::new(carrier, HashMap::new()) };
    let shared = match shared_objects::<Sh>(&shared, key.epoch) {
        Ok(s) => s,
        Err(e) => {
            link.send(Event::Failed {
                generation: key.generation,
                failure: Box::new(Failure {
                    phase: Phase::Init,
                    cause: Cause::Serialization,
                    worker: key.slot,
                    task: None,
                    args: None,
                    message: format!("cannot decode the shared objects on this MPI rank: {e}"),
                    backtrace: None,
                    attempts: 1,
                    earlier: Vec::new(),
                }),
            });
            link.send(Event::Exited {
                worker: key.slot,
                generation: key.generation,
                reason: ExitReason::InitFailed,
                exit_result: None,
            });
            return;
        }
    };
    // SAFETY: as above: the record was made by `BootRecord::of` for `Sh`, `St` in this binary.
    let setup = unsafe {
        record.into_setup::<Sh, St>(
            key.slot,
            shared,
            CounterRef::new(counters, key.slot),
            monotonic_ns(),
        )
    };
    pool_core::run_worker(setup, &mut link);
}
