//! The remote-worker protocol of `pool`: what the parent and a worker in another process (Fork,
//! Spawn) or on another MPI rank say to each other. Each back end brings only its way to launch
//! a worker and to carry bytes; the messages, the ids and the checks are here, once.
//!
//! 1. **Launch.** A worker that cannot inherit the parent's memory (Spawn, MPI) gets a
//!    [`boot::BootRecord`]: its generation, the state factory and hooks as [`fnid::FnId`]s, its
//!    settings. [`boot::BootRecord::of`] refuses closures that capture data (they cannot be
//!    rebuilt elsewhere) with an error that says which hook and what to do instead. The
//!    binary's identity is checked before any id is resolved ([`fnid::ExeId`] on this host,
//!    [`fnid::ExeDigest`] across hosts).
//! 2. **Commands** ([`msg::ToWorker`]): `Chunk` names its job by a [`msg::JobRef`] (the call id,
//!    plus the job's rebuild function the first time this worker sees the call) and is followed
//!    by one bulk frame, the encoded inputs; `Flush` asks for timings; `Exit` asks the worker
//!    to run its exit hook and stop. [`parent::Dispatch`] turns `pool_core` commands into these.
//! 3. **Events** ([`msg::FromWorker`]): `Ready`, `ChunkDone` (followed by one bulk frame, the
//!    encoded outputs), `Failed`, `Timings`, `Exited`. No event carries the worker's id or
//!    generation: the parent's end of a link knows which worker it serves and stamps both
//!    ([`msg::FromWorker::into_event`]), so a worker cannot speak for another. `Died` never
//!    crosses: only the parent can observe a death.
//! 4. **Validation.** The parent accepts a `ChunkDone` only for a chunk it sent that worker
//!    and has not had back ([`parent::Outstanding`]); anything else is a protocol violation
//!    that ends the worker, never an index into the parent's tables.
//! 5. **The worker's end** ([`worker::WorkerEnd`]) resolves job references (cache, else
//!    rebuild), and is `pool_core`'s `WorkerLink` over any [`worker::Carrier`]. Its cache and
//!    the parent's record of it stay the same bounded set ([`recent`]).
//!
//! Frames are postcard headers; bulk bytes never go through serde's element-by-element path.
#![deny(missing_docs)]

pub mod boot;
pub mod fnid;
pub mod msg;
pub mod parent;
pub mod recent;
pub mod worker;
