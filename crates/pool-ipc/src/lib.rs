//! Process workers for pool: fork and spawn start methods, shared-memory transport, fault
//! detection.
//!
//! Low-level, self-contained primitives (Linux only):
//! - [`shm`]: anonymous shared memory (memfd), inherited by fork or passed by fd to a re-exec'd child;
//! - [`ring`]: an SPSC ring of byte frames in shared memory, spin-then-futex wake-ups;
//! - [`channel`]: a duplex parent⇄worker link of two rings, serde/postcard messages and raw bytes;
//! - [`process`]: fork and spawn workers, pidfd death detection, exit reasons, [`process::DeathWatcher`];
//! - [`oom`]: resident-memory sampling and an "was it the OOM killer?" verdict;
//! - [`entry`] and [`fnid`]: what a re-executed worker runs, and how a `fn` crosses the exec;
//! - [`affinity`]: CPU pinning; [`fds`]: fd and zombie counting for leak tests.

pub mod affinity;
pub mod channel;
pub mod child;
pub mod entry;
pub mod fds;
pub mod fnid;
pub mod fork;
pub mod futex;
pub mod oom;
pub mod process;
pub mod ring;
pub mod shm;
pub mod spawn;
pub mod watcher;
