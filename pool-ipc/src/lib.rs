//! Process workers for pool: fork and spawn start methods, shared-memory transport, fault
//! detection.
//!
//! Low-level, self-contained primitives (Linux only), each in its own module:
//! - [`shm`]: anonymous shared memory (memfd), inherited by fork or passed by fd to a spawned
//!   child; [`futex`]: cross-process sleep/wake on a word of it;
//! - [`ring`]: an SPSC ring of byte frames in shared memory, spin-then-futex wake-ups, its
//!   protocol written up in the module docs;
//! - [`channel`]: a duplex parent⇄worker link of two rings, serde/postcard messages and raw bytes;
//!   [`bulk`]: the arena beside the rings that big payloads cross in one copy each way;
//! - [`fork`] and [`spawn`]: the two process start methods; [`child`]: what every worker does
//!   first (death signal, signal reset); [`entry`] and [`fnid`]: the hook a spawned worker runs
//!   and how a `fn` crosses the exec;
//! - [`process`]: a worker handle (pidfd, kill, reap, decoded [`process::ExitReason`]);
//!   [`watcher`]: one thread that reports the death of many workers;
//! - [`oom`]: resident-memory sampling and a "was it the OOM killer?" verdict;
//! - [`affinity`]: CPU pinning; [`fds`]: fd and zombie counting for leak tests;
//! - [`Processes`]: all of it as the workers piece of a `pool_core::Layers`.
//!
//! Which guarantees each start method gives: [`fork`] shares memory copy-on-write and starts in
//! microseconds, but is only sound when no other thread can hold a lock the child needs (see
//! its `# Safety`); [`spawn`] starts a fresh process (no inherited threads or locks) and needs the
//! [`entry::run_if_worker`] hook at the top of `main`; [`forkserver`] forks workers from a
//! small server started by that hook (no inherited threads or locks, start-up independent of
//! the parent's size).
#![cfg(target_os = "linux")]
#![deny(missing_docs)]

pub mod affinity;
pub mod backend;
pub mod bulk;
pub mod channel;
pub mod child;
pub mod entry;
pub mod fds;
pub use pool_wire::fnid;
pub mod fork;
pub mod forkserver;
pub mod futex;
pub use pool_core::interrupt;
mod malloc;
pub mod oom;
pub mod process;
pub mod ring;
pub mod shm;
pub mod spawn;
mod stderr;
mod stdout_flush;
mod sync;
pub mod watcher;
mod workers;

pub use workers::{Processes, refuse_in_daemon_worker};
