//! `MpiBackend`: the `pool_core::Backend` of rank 0. Worker slot `i` is MPI rank `i + 1`.
//! Everything it sends goes through rank 0's MPI thread ([`crate::rank0`]); events come back
//! on a channel that thread fills.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use pool_core::{
    Backend, Command, CounterBlock, Data, ErasedJob, Event, Hook, PoolError, SharedObjects, Wire,
    WorkerCounters, WorkerSetup,
};
use pool_ipc::backend::wire::{JobRef, WireCommand};
use pool_ipc::fnid::FnId;

use crate::link::{Entry, boot};
use crate::msg::{Boot, ToWorker, encode};
use crate::rank0::{Out, Rank0, Route, rank0};

/// Workers on MPI ranks 1..=n_jobs, driven from rank 0.
pub struct MpiBackend<Sh, St> {
    r0: &'static Rank0,
    epoch: u64,
    counters: Arc<Vec<WorkerCounters>>,
    events: Receiver<Event>,
    /// Generation of the live worker of each slot.
    live: Vec<Option<u64>>,
    /// Job keys each slot's worker has been given a rebuild function for.
    known: Vec<HashSet<u64>>,
    shared_sent: Vec<bool>,
    shared_bytes: Option<Vec<u8>>,
    _types: PhantomData<fn() -> (Sh, St)>,
}

impl<Sh, St> fmt::Debug for MpiBackend<Sh, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiBackend")
            .field("epoch", &self.epoch)
            .field("slots", &self.live.len())
            .finish()
    }
}

fn backend_err(message: String) -> PoolError {
    PoolError::backend(message, std::io::ErrorKind::NotConnected.into())
}

fn rebuildable<F: ?Sized>(hook: &Hook<F>, what: &str) -> Result<FnId, PoolError> {
    hook.rebuilder().map(|r| FnId::from_ptr(r as *const ())).ok_or_else(|| {
        PoolError::InvalidConfig(format!(
            "StartMethod::Mpi rebuilds the {what} on other MPI ranks, so it must capture nothing \
             (a fn item or a closure without captures)"
        ))
    })
}

impl<Sh: SharedObjects, St: 'static> MpiBackend<Sh, St> {
    /// A back end with `n_jobs` slots, on ranks `1..=n_jobs`. Fails when not run under
    /// `mpirun`, on a rank other than 0, with more slots than worker ranks, or while another
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
            live: vec![None; n_jobs],
            known: vec![HashSet::new(); n_jobs],
            shared_sent: vec![false; n_jobs],
            shared_bytes: None,
            _types: PhantomData,
        })
    }

    fn post(&self, slot: usize, msg: &ToWorker, bulk: &[u8]) -> Result<(), PoolError> {
        self.r0
            .tx
            .send(Out::Send {
                rank: slot as i32 + 1,
                bytes: encode(msg, bulk),
            })
            .map_err(|_| backend_err("the MPI thread has stopped (pool::finalize ran)".into()))
    }
}

impl<Sh: SharedObjects, St: 'static> Backend<Sh, St> for MpiBackend<Sh, St> {
    fn wire(&self) -> Wire {
        Wire::Bytes
    }

    fn counters(&self) -> Arc<dyn CounterBlock> {
        self.counters.clone()
    }

    fn announce_job(
        &mut self,
        _call: u64,
        job: &Arc<dyn ErasedJob<Sh, St>>,
    ) -> Result<bool, PoolError> {
        if job.rebuilder().is_none() {
            return Err(PoolError::InvalidConfig(format!(
                "StartMethod::Mpi runs tasks on other MPI ranks, so the task function must capture nothing \
                 (a fn item or a closure without captures); `{}` captures data. Pass the data as shared objects",
                job.name()
            )));
        }
        Ok(true)
    }

    fn start_worker(&mut self, setup: WorkerSetup<Sh, St>) -> Result<(), PoolError> {
        let slot = setup.id;
        let rank = slot + 1;
        self.kill(slot);
        if self.r0.dead[rank].load(Ordering::Relaxed) {
            return Err(backend_err(format!(
                "MPI rank {rank} (worker {slot}) is dead: an MPI job cannot replace a rank, so the pool \
                 cannot start a worker there"
            )));
        }
        let boot = Boot {
            slot,
            generation: setup.generation,
            entry: FnId::from_ptr(boot::<Sh, St> as Entry as *const ()),
            make_state: rebuildable(&setup.make_state, "worker_state factory")?,
            init: setup
                .init
                .as_ref()
                .map(|h| rebuildable(h, "worker_init function"))
                .transpose()?,
            exit: setup
                .exit
                .as_ref()
                .map(|h| rebuildable(h, "worker_exit function"))
                .transpose()?,
            lifespan: setup.lifespan,
            insights: setup.insights,
            cpus: setup.cpus.clone(),
        };
        if !self.shared_sent[slot] {
            if self.shared_bytes.is_none() {
                let bytes =
                    postcard::to_stdvec(&*setup.shared).map_err(|e| PoolError::Serialization {
                        context: "the shared objects, for MPI workers".into(),
                        message: pool_core::refusal::message(&*setup.shared, e),
                    })?;
                self.shared_bytes = Some(bytes);
            }
            let bytes = self.shared_bytes.as_deref().unwrap_or_default();
            self.post(slot, &ToWorker::Shared { epoch: self.epoch }, bytes)?;
            self.shared_sent[slot] = true;
        }
        let base = self.counters[slot].tasks_done.load(Ordering::Relaxed);
        let _ = self.r0.tx.send(Out::Started {
            slot,
            generation: setup.generation,
            base,
        });
        self.post(
            slot,
            &ToWorker::Start {
                epoch: self.epoch,
                boot,
            },
            &[],
        )?;
        self.live[slot] = Some(setup.generation);
        self.known[slot].clear();
        Ok(())
    }

    fn send(&mut self, slot: usize, cmd: Command<Sh, St>) -> Result<(), PoolError> {
        let generation =
            self.live[slot].ok_or_else(|| backend_err(format!("worker {slot} is not running")))?;
        let (cmd, bulk) = match cmd {
            Command::Chunk {
                job,
                call,
                first,
                len,
                input,
                settings,
            } => {
                let rebuild = if self.known[slot].contains(&call) {
                    None
                } else {
                    let r = job.rebuilder().ok_or_else(|| {
                        PoolError::InvalidConfig(format!(
                            "`{}` captures data and cannot run on an MPI rank",
                            job.name()
                        ))
                    })?;
                    self.known[slot].insert(call);
                    Some(FnId::from_ptr(r as *const ()))
                };
                let bytes = match input {
                    Data::Bytes(b) => b,
                    Data::Local(_) => unreachable!("the pool encodes inputs for Wire::Bytes"),
                };
                let header = WireCommand::Chunk {
                    job: JobRef { key: call, rebuild },
                    call,
                    first,
                    len,
                    settings,
                };
                (header, bytes)
            }
            Command::Flush => (WireCommand::Flush, Vec::new()),
            Command::Exit => (WireCommand::Exit, Vec::new()),
        };
        let msg = ToWorker::Cmd {
            epoch: self.epoch,
            generation,
            cmd,
        };
        self.post(slot, &msg, &bulk)
    }

    fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    fn kill(&mut self, slot: usize) {
        if let Some(generation) = self.live[slot].take() {
            let _ = self.r0.tx.send(Out::Stopped { slot });
            let _ = self.post(
                slot,
                &ToWorker::Kill {
                    epoch: self.epoch,
                    generation,
                },
                &[],
            );
        }
    }

    fn shutdown(&mut self, _grace: Duration) {
        // Workers told to exit have done so or will by themselves; the others are abandoned.
        for slot in 0..self.live.len() {
            self.kill(slot);
        }
    }
}

impl<Sh, St> Drop for MpiBackend<Sh, St> {
    fn drop(&mut self) {
        for (slot, g) in self.live.iter_mut().enumerate() {
            if let Some(generation) = g.take() {
                let _ = self.r0.tx.send(Out::Send {
                    rank: slot as i32 + 1,
                    bytes: encode(
                        &ToWorker::Kill {
                            epoch: self.epoch,
                            generation,
                        },
                        &[],
                    ),
                });
            }
        }
        let _ = self.r0.tx.send(Out::Detach);
        self.r0.busy.store(false, Ordering::Release);
    }
}
