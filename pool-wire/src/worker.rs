//! The worker's end of a remote link (crate docs, step 5): `pool_core`'s [`WorkerLink`] over
//! any [`Carrier`] of frames, resolving job references on the way in.

use std::collections::HashMap;
use std::sync::Arc;

use pool_core::{Command, Data, ErasedJob, Event, JobRebuilder, WorkerLink};

use crate::boot::rebuilt;
use crate::msg::{FromWorker, JobRef, ToWorker};
use crate::recent::RecentCalls;

/// Carries frames between a worker and its parent: a shared-memory ring, an MPI rank's loop.
pub trait Carrier {
    /// The next command with its bulk frame (empty when it has none); `None` when the parent
    /// is gone or the bytes are not a command.
    fn recv(&mut self) -> Option<(ToWorker, Vec<u8>)>;
    /// [`Carrier::recv`] with the bulk frame as the carrier holds it: a carrier over shared
    /// memory may lend it in place ([`Data::Lent`]) instead of copying it out.
    fn recv_data(&mut self) -> Option<(ToWorker, Data)> {
        self.recv().map(|(msg, bulk)| (msg, Data::Bytes(bulk)))
    }
    /// Sends an event with its bulk frame; a parent that is gone is noticed at the next `recv`.
    fn send(&mut self, msg: &FromWorker, bulk: Option<&[u8]>);
}

/// A remote worker's link: commands in, events out, jobs cached by call.
pub struct WorkerEnd<Sh, St, C> {
    carrier: C,
    jobs: RecentCalls<Arc<dyn ErasedJob<Sh, St>>>,
}

impl<Sh, St, C: std::fmt::Debug> std::fmt::Debug for WorkerEnd<Sh, St, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerEnd")
            .field("carrier", &self.carrier)
            .field("jobs", &self.jobs.len())
            .finish()
    }
}

impl<Sh, St, C: Carrier> WorkerEnd<Sh, St, C> {
    /// A link over `carrier`; `jobs` are those the worker already has (inherited at a fork).
    ///
    /// # Safety
    /// The parent runs this same binary (checked with [`crate::fnid::ExeId`] or
    /// [`crate::fnid::ExeDigest`], or inherited by fork) and made every [`JobRef::rebuild`] it
    /// sends with [`crate::boot::Remote::job`] for these `Sh` and `St`.
    pub unsafe fn new(carrier: C, jobs: HashMap<u64, Arc<dyn ErasedJob<Sh, St>>>) -> Self {
        WorkerEnd {
            carrier,
            jobs: RecentCalls::new(jobs),
        }
    }

    fn resolve(&mut self, job: JobRef) -> Option<Arc<dyn ErasedJob<Sh, St>>> {
        self.jobs
            .note(job.call, || {
                // SAFETY: per `new`'s contract, this id is a `JobRebuilder<Sh, St>` of this
                // binary.
                let rebuild: JobRebuilder<Sh, St> = unsafe { rebuilt(job.rebuild?) };
                Some(rebuild())
            })
            .cloned()
    }
}

impl<Sh, St, C: Carrier> WorkerLink<Sh, St> for WorkerEnd<Sh, St, C> {
    fn recv(&mut self) -> Option<Command<Sh, St>> {
        match self.carrier.recv_data()? {
            (
                ToWorker::Chunk {
                    job,
                    first,
                    len,
                    settings,
                },
                input,
            ) => {
                let Some(resolved) = self.resolve(job) else {
                    // The parent sends a rebuild id with every call a worker has not seen;
                    // reaching this is a protocol bug. Stopping makes the parent report it
                    // with the task in hand.
                    eprintln!(
                        "pool worker: task function of call {} is unknown here",
                        job.call
                    );
                    return None;
                };
                Some(Command::Chunk {
                    job: resolved,
                    call: job.call,
                    first,
                    len,
                    input,
                    // Its parent credited them to this worker's ledger as it sent them.
                    refs: Default::default(),
                    settings,
                })
            }
            (ToWorker::Flush, _) => Some(Command::Flush),
            (ToWorker::Exit, _) => Some(Command::Exit),
        }
    }

    fn send(&mut self, event: Event) {
        let Some((msg, bulk)) = FromWorker::from_event(event) else {
            return;
        };
        self.carrier.send(&msg, bulk.as_deref());
        if let Some(bytes) = bulk {
            pool_core::recycle_buffer(bytes);
        }
    }
}
