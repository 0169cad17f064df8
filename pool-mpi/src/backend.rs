//! `MpiBackend`: the `pool_core::Backend` of rank 0. Worker slot `i` lives on MPI rank `i + 1`
//! while that rank is alive; once it is dead, the slot's next worker is placed on the live rank
//! with the fewest workers (a rank runs its workers as threads), so a pool survives the loss
//! of ranks, and under `keep_going` the chunks of a dead rank are re-run on the others.
//! Everything it sends goes through rank 0's MPI thread ([`crate::rank0`]); events come back
//! on a channel that thread fills.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use pool_core::{
    Backend, Command, CounterRef, Data, ErasedJob, Event, PoolError, SharedObjects, Unsent, Wire,
    WorkerCounters, WorkerSetup,
};
use pool_wire::boot::{BootRecord, Remote};
use pool_wire::fnid::FnId;
use pool_wire::msg::{encode_framed, encode_framed_value};
use pool_wire::parent::Dispatch;

use crate::link::{Entry, boot};
use crate::msg::{Down, WorkerKey};
use crate::pump::Frame;
use crate::rank0::{Out, Rank0, Route, rank0};

struct Slot {
    rank: usize,
    generation: u64,
    dispatch: Dispatch,
}

/// Workers on MPI ranks 1.., driven from rank 0.
pub struct MpiBackend<Sh, St> {
    r0: &'static Rank0,
    epoch: u64,
    counters: Arc<Vec<WorkerCounters>>,
    events: Receiver<Event>,
    slots: Vec<Option<Slot>>,
    /// Ranks that have been sent the shared objects of this pool.
    shared_sent: Vec<bool>,
    _types: PhantomData<fn() -> (Sh, St)>,
}

impl<Sh, St> fmt::Debug for MpiBackend<Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiBackend")
            .field("epoch", &self.epoch)
            .field("slots", &self.slots.len())
            .finish()
    }
}

fn backend_err(message: String) -> PoolError {
    PoolError::backend(message, std::io::ErrorKind::NotConnected.into())
}

impl<Sh: SharedObjects, St: 'static> MpiBackend<Sh, St> {
    /// A back end with `n_jobs` slots. Fails when not run under `mpirun`, on a rank other than
    /// 0, with more slots than worker ranks, when a rank runs another binary, or while another
    /// MPI pool is alive.
    pub fn new(n_jobs: usize) -> Result<Self, PoolError> {
        if !crate::under_mpirun() {
            return Err(PoolError::InvalidConfig(
                "StartMethod::Mpi needs mpirun: launch the program with `mpirun -n <1 + workers> ...`"
                    .into(),
            ));
        }
        let r0 = rank0().map_err(|e| backend_err(format!("cannot start MPI: {e}")))?;
        let workers = r0.size - 1;
        if workers == 0 {
            return Err(PoolError::InvalidConfig(
                "StartMethod::Mpi needs worker ranks: run with `mpirun -n 2` or more (rank 0 runs the pool)"
                    .into(),
            ));
        }
        if n_jobs > workers {
            return Err(PoolError::InvalidConfig(format!(
                "n_jobs = {n_jobs}, but mpirun started {workers} worker ranks (world size {} minus \
                 rank 0); ask for at most {workers}, or start more ranks",
                r0.size
            )));
        }
        r0.check_ranks().map_err(PoolError::InvalidConfig)?;
        if r0.busy.swap(true, Ordering::AcqRel) {
            return Err(PoolError::InvalidConfig(
                "another StartMethod::Mpi pool is alive: the worker ranks serve one pool at a time"
                    .into(),
            ));
        }
        let epoch = r0.epochs.fetch_add(1, Ordering::Relaxed);
        let counters: Arc<Vec<WorkerCounters>> =
            Arc::new((0..n_jobs).map(|_| WorkerCounters::default()).collect());
        let (events_tx, events) = unbounded();
        let _ = r0.tx.send(Out::Attach(Route {
            epoch,
            events: events_tx,
            counters: counters.clone(),
        }));
        Ok(MpiBackend {
            r0,
            epoch,
            counters,
            events,
            slots: (0..n_jobs).map(|_| None).collect(),
            shared_sent: vec![false; r0.size],
            _types: PhantomData,
        })
    }

    fn post(&self, rank: usize, msg: &Down, bulk: &[u8]) -> Result<(), PoolError> {
        self.r0
            .tx
            .send(Out::Send {
                rank,
                bytes: encode_framed(msg, bulk).into(),
            })
            .map_err(|_| backend_err("the MPI thread has stopped (pool::finalize ran)".into()))
    }

    fn is_dead(&self, rank: usize) -> bool {
        self.r0.dead[rank].load(Ordering::SeqCst)
    }

    /// Where the worker of `slot` goes: its own rank while alive, else the live rank with the
    /// fewest workers of this pool.
    fn place(&self, slot: usize) -> Option<usize> {
        let own = slot + 1;
        if !self.is_dead(own) {
            return Some(own);
        }
        (1..self.r0.size)
            .filter(|&r| !self.is_dead(r))
            .min_by_key(|&r| self.slots.iter().flatten().filter(|s| s.rank == r).count())
    }
}

impl<Sh: SharedObjects, St: 'static> Backend<Sh, St> for MpiBackend<Sh, St> {
    fn wire(&self) -> Wire {
        Wire::Bytes
    }

    fn counters(&self, slot: usize) -> &WorkerCounters {
        &self.counters[slot]
    }

    fn counters_for_new_worker(&mut self, slot: usize) -> CounterRef {
        CounterRef::new(self.counters.clone(), slot)
    }

    fn announce_job(
        &mut self,
        _call: u64,
        job: &Arc<dyn ErasedJob<Sh, St>>,
    ) -> Result<bool, PoolError> {
        Remote::Mpi.job(job)?;
        Ok(true)
    }

    fn start_worker(&mut self, setup: WorkerSetup<Sh, St>) -> Result<(), PoolError> {
        let slot = setup.id;
        self.kill(slot);
        let rank = self.place(slot).ok_or_else(|| {
            backend_err(
                "every worker rank is dead: an MPI job cannot replace a rank, so the pool has \
                 nowhere to start a worker"
                    .into(),
            )
        })?;
        let record = BootRecord::of(&setup, Remote::Mpi)?;
        if !self.shared_sent[rank] {
            // Every live rank that lacks them, this one first: sent once by rank 0 and relayed
            // by the ranks themselves.
            let relay: Vec<usize> = std::iter::once(rank)
                .chain((1..self.r0.size).filter(|&r| r != rank))
                .filter(|&r| !self.shared_sent[r] && !self.is_dead(r))
                .collect();
            let header = Down::Shared {
                epoch: self.epoch,
                relay: relay.clone(),
            };
            let frame = encode_framed_value(&header, &*setup.shared).map_err(|e| {
                PoolError::Serialization {
                    context: "the shared objects, for MPI workers".into(),
                    message: pool_core::refusal::message(&*setup.shared, e),
                }
            })?;
            let sent = Out::Send {
                rank,
                bytes: Frame::Owned(frame),
            };
            self.r0.tx.send(sent).map_err(|_| {
                backend_err("the MPI thread has stopped (pool::finalize ran)".into())
            })?;
            for r in relay {
                self.shared_sent[r] = true;
            }
        }
        let dispatch = Dispatch::default();
        let base = self.counters[slot].tasks_done.load(Ordering::Relaxed);
        let _ = self.r0.tx.send(Out::Started {
            slot,
            rank,
            generation: setup.generation,
            base,
            outstanding: dispatch.outstanding().clone(),
        });
        let key = WorkerKey {
            epoch: self.epoch,
            slot,
            generation: setup.generation,
        };
        let entry = FnId::from_ptr(boot::<Sh, St> as Entry as *const ());
        self.post(
            rank,
            &Down::Start {
                key,
                entry,
                boot: record,
            },
            &[],
        )?;
        self.slots[slot] = Some(Slot {
            rank,
            generation: setup.generation,
            dispatch,
        });
        Ok(())
    }

    fn send(&mut self, slot: usize, cmd: Command<Sh, St>) -> Result<(), Unsent<Sh, St>> {
        let Some(rank) = self.slots[slot].as_ref().map(|s| s.rank) else {
            let e = backend_err(format!("worker {slot} is not running"));
            return Err(Unsent::returned(e, cmd));
        };
        if self.is_dead(rank) {
            let e = backend_err(format!("worker {slot} (rank {rank}) has stopped"));
            return Err(Unsent::returned(e, cmd));
        }
        let s = self.slots[slot].as_mut().expect("looked up above");
        let key = WorkerKey {
            epoch: self.epoch,
            slot,
            generation: s.generation,
        };
        let (header, bulk) = s.dispatch.encode(slot, &cmd)?;
        let sent = self.post(
            rank,
            &Down::Cmd { key, cmd: header },
            bulk.unwrap_or_default(),
        );
        if let Command::Chunk {
            input: Data::Bytes(b),
            ..
        } = cmd
        {
            pool_core::recycle_buffer(b);
        }
        Ok(sent?)
    }

    fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    fn kill(&mut self, slot: usize) {
        if let Some(s) = self.slots[slot].take() {
            let _ = self.r0.tx.send(Out::Stopped { slot });
            let key = WorkerKey {
                epoch: self.epoch,
                slot,
                generation: s.generation,
            };
            if !self.is_dead(s.rank) {
                let _ = self.post(s.rank, &Down::Kill { key }, &[]);
            }
        }
    }

    fn shutdown(&mut self, _grace: Duration) {
        // Workers told to exit have done so or will by themselves; the others are abandoned.
        for slot in 0..self.slots.len() {
            self.kill(slot);
        }
    }
}

impl<Sh, St> Drop for MpiBackend<Sh, St> {
    fn drop(&mut self) {
        for (slot, s) in self.slots.iter_mut().enumerate() {
            if let Some(s) = s.take() {
                let key = WorkerKey {
                    epoch: self.epoch,
                    slot,
                    generation: s.generation,
                };
                let _ = self.r0.tx.send(Out::Send {
                    rank: s.rank,
                    bytes: encode_framed(&Down::Kill { key }, &[]).into(),
                });
            }
        }
        let _ = self.r0.tx.send(Out::Detach);
        self.r0.busy.store(false, Ordering::Release);
    }
}
