//! The boot record of a worker that cannot inherit the parent's memory (Spawn, MPI): what it
//! needs to rebuild its `pool_core::WorkerSetup`, with every function as an [`FnId`].

use std::sync::Arc;

use pool_core::{
    CounterRef, ErasedJob, ExitFn, Hook, InitFn, JobRebuilder, PoolError, StateFn, WorkerSetup,
};
use serde::{Deserialize, Serialize};

use crate::fnid::FnId;

/// Where functions are rebuilt, for error messages: "StartMethod::Spawn rebuilds the … in a
/// fresh process".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// Re-executed processes of this binary.
    Spawn,
    /// Processes forked from the forkserver (`pool_ipc::forkserver`).
    Forkserver,
    /// Other MPI ranks.
    Mpi,
}

impl Remote {
    fn method(self) -> &'static str {
        match self {
            Remote::Spawn => "StartMethod::Spawn",
            Remote::Forkserver => "StartMethod::Forkserver",
            Remote::Mpi => "StartMethod::Mpi",
        }
    }

    fn place(self) -> &'static str {
        match self {
            Remote::Spawn => "in a fresh process",
            Remote::Forkserver => "in a process forked from the forkserver",
            Remote::Mpi => "on other MPI ranks",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            Remote::Spawn | Remote::Forkserver => {
                "pass the data as shared objects, or use StartMethod::Fork"
            }
            Remote::Mpi => "pass the data as shared objects",
        }
    }

    fn refuse(self, what: &str, name: Option<&str>) -> PoolError {
        let who = name
            .map(|n| format!("; `{n}` captures data"))
            .unwrap_or_default();
        PoolError::InvalidConfig(format!(
            "{} rebuilds the {what} {}, so it must capture nothing (a fn item or a closure \
             without captures){who}: {}",
            self.method(),
            self.place(),
            self.advice()
        ))
    }

    /// The id of a call's rebuild function, or why the job cannot run remotely.
    pub fn job<Sh, St>(self, job: &Arc<dyn ErasedJob<Sh, St>>) -> Result<FnId, PoolError> {
        let rebuild: JobRebuilder<Sh, St> = job
            .rebuilder()
            .ok_or_else(|| self.refuse("task function", Some(job.name())))?;
        Ok(FnId::from_ptr(rebuild as *const ()))
    }

    fn hook<F: ?Sized>(self, hook: &Hook<F>, what: &str) -> Result<FnId, PoolError> {
        let rebuild = hook.rebuilder().ok_or_else(|| self.refuse(what, None))?;
        Ok(FnId::from_ptr(rebuild as *const ()))
    }
}

/// What a remote worker needs besides its slot, the shared objects and its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    /// The worker's life in its slot.
    pub generation: u64,
    /// `StateFn::<St>`'s rebuilder.
    pub make_state: FnId,
    /// `InitFn::<Sh, St>`'s rebuilder.
    pub init: Option<FnId>,
    /// `ExitFn::<Sh, St>`'s rebuilder.
    pub exit: Option<FnId>,
    /// Stop after this many tasks.
    pub lifespan: Option<u64>,
    /// Record timings.
    pub insights: bool,
    /// CPUs to pin to.
    pub cpus: Option<Vec<usize>>,
}

impl BootRecord {
    /// The record of `setup`, or which of its functions cannot be rebuilt `remote`ly.
    pub fn of<Sh, St>(setup: &WorkerSetup<Sh, St>, remote: Remote) -> Result<Self, PoolError> {
        Ok(BootRecord {
            generation: setup.generation,
            make_state: remote.hook(&setup.make_state, "worker_state factory")?,
            init: setup
                .init
                .as_ref()
                .map(|h| remote.hook(h, "worker_init function"))
                .transpose()?,
            exit: setup
                .exit
                .as_ref()
                .map(|h| remote.hook(h, "worker_exit function"))
                .transpose()?,
            lifespan: setup.lifespan,
            insights: setup.insights,
            cpus: setup.cpus.clone(),
        })
    }

    /// The worker's setup, its functions rebuilt.
    ///
    /// # Safety
    /// The record must have been made by [`BootRecord::of`] for these `Sh` and `St` in a process
    /// running this same binary (checked with [`crate::fnid::ExeId`] or
    /// [`crate::fnid::ExeDigest`]).
    pub unsafe fn into_setup<Sh, St>(
        self,
        id: usize,
        shared: Arc<Sh>,
        counters: CounterRef,
        requested_ns: u64,
    ) -> WorkerSetup<Sh, St> {
        // SAFETY: per the contract, each id is the rebuilder of exactly this hook type.
        let (make_state, init, exit) = unsafe {
            (
                StateFn::<St>::from_rebuilder(rebuilt(self.make_state)),
                self.init
                    .map(|id| InitFn::<Sh, St>::from_rebuilder(rebuilt(id))),
                self.exit
                    .map(|id| ExitFn::<Sh, St>::from_rebuilder(rebuilt(id))),
            )
        };
        WorkerSetup {
            id,
            generation: self.generation,
            shared,
            make_state,
            init,
            exit,
            lifespan: self.lifespan,
            insights: self.insights,
            counters,
            cpus: self.cpus,
            requested_ns,
        }
    }
}

/// The `fn` pointer an id stands for.
///
/// # Safety
/// `id` must come from a function of type `T` (a `fn` pointer type) in this same binary.
pub unsafe fn rebuilt<T: Copy>(id: FnId) -> T {
    assert_eq!(size_of::<T>(), size_of::<*const ()>());
    // SAFETY: per the contract, `id` points to a function of type `T`.
    unsafe { std::mem::transmute_copy::<*const (), T>(&id.to_ptr()) }
}
