//! The entry hook of a re-executed (spawned) worker: finding its boot info and running its `fn`.
//!
//! A spawned worker is this same program started again, with an environment variable
//! ([`ENV_BOOT`]) that carries its boot info: worker id, inherited fd numbers, a small payload,
//! the [`FnId`] of its entry function, the parent's pid and [`ExeId`]. The program's `main` must
//! call the hook first:
//!
//! ```no_run
//! fn main() {
//!     pool_ipc::entry::run_if_worker(); // never returns in a worker
//!     // ... the normal program ...
//! }
//! ```
//!
//! **Everything `main` does before the hook runs again in every worker** (and so do static
//! initializers and anything a `#[ctor]` does): keep the hook first. For finer control,
//! [`is_worker`] and [`take_worker_boot`] give the boot info without running anything.
//!
//! The worker removes the variable from its environment as it reads it, so programs it starts
//! never see it. A process that finds the variable with another parent than the recorded one
//! is a worker whose parent died before it could arm its death signal: it exits (with
//! [`EXIT_BAD_BOOT`]) rather than run the program's `main` as if it were the user's program.

// The example must show `main`: where the hook goes is the point.
#![allow(clippy::needless_doctest_main)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::fnid::{DifferentBinary, ExeId, FnId};

/// The environment variable that marks a spawned worker and carries its boot info (hex postcard).
pub const ENV_BOOT: &str = "POOL_IPC_WORKER_BOOT";
/// Exit code of a worker whose boot info is unusable (different binary, bad fds, garbage).
pub const EXIT_BAD_BOOT: i32 = 125;

/// Exit code of a spawned worker whose program built a pool without calling the hook first.
pub const EXIT_NO_ENTRY: i32 = 123;

/// What to do about a program without the hook, for error messages.
pub const ADD_THE_HOOK: &str = "StartMethod::Spawn re-executes this program for each worker, so \
     its `main` must call `pool::entry()` first thing (without the `pool` facade: \
     `pool_ipc::entry::run_if_worker()`; in a test binary, from a `#[ctor::ctor]` function)";

/// The function a spawned worker runs; its return value is the exit code.
pub type WorkerMain = fn(WorkerBoot) -> i32;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BootWire {
    pub(crate) worker_id: u64,
    pub(crate) fds: Vec<RawFd>,
    pub(crate) payload: Vec<u8>,
    pub(crate) entry: Option<FnId>,
    pub(crate) parent: i32,
    pub(crate) exe: ExeId,
    /// The worker ignores `SIGINT` ([`crate::child::ChildOptions::ignore_sigint`]).
    pub(crate) ignore_sigint: bool,
}

impl BootWire {
    pub(crate) fn encode(&self) -> String {
        let bytes = postcard::to_stdvec(self).expect("boot info encodes");
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(s: &str) -> Option<Self> {
        if !s.len().is_multiple_of(2) {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect();
        postcard::from_bytes(&bytes?).ok()
    }
}

/// Why a worker could not use its boot info.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The variable is set but does not decode.
    #[error("{ENV_BOOT} is set but malformed")]
    Malformed,
    /// The parent that started this worker died before the worker armed its death signal.
    #[error("the parent (pid {parent}) that started this worker is gone")]
    ParentGone {
        /// The parent's pid, as recorded in the boot info.
        parent: i32,
    },
    /// The worker runs another binary than the parent.
    #[error(transparent)]
    DifferentBinary(#[from] DifferentBinary),
    /// An inherited fd is not open in this process.
    #[error("inherited fd {fd} is not open: {source}")]
    BadFd {
        /// The fd number the parent announced.
        fd: RawFd,
        /// What `fcntl` said.
        #[source]
        source: io::Error,
    },
}

/// What a spawned worker receives from its parent.
#[derive(Debug)]
pub struct WorkerBoot {
    /// The id the parent gave this worker.
    pub worker_id: u64,
    /// The parent's bytes (keep it small: it travels in the environment).
    pub payload: Vec<u8>,
    fds: Vec<Option<OwnedFd>>,
    entry: Option<FnId>,
}

impl WorkerBoot {
    /// The boot info of a worker that gets its fds by inheritance, not through the environment
    /// (a forkserver's worker).
    pub(crate) fn inherited(worker_id: u64, payload: Vec<u8>, fds: Vec<OwnedFd>) -> Self {
        WorkerBoot {
            worker_id,
            payload,
            fds: fds.into_iter().map(Some).collect(),
            entry: None,
        }
    }

    /// Takes the `i`-th inherited fd (in the order the parent passed them), once.
    pub fn take_fd(&mut self, i: usize) -> Option<OwnedFd> {
        self.fds.get_mut(i)?.take()
    }

    /// How many fds were inherited.
    pub fn fd_count(&self) -> usize {
        self.fds.len()
    }
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Set once this process asked for its boot info (the hook does, first thing): proof that its
/// `main` has the hook, so the workers spawned from it will run it too.
static HOOK_CALLED: AtomicBool = AtomicBool::new(false);

/// Whether this process called the hook ([`run_if_worker`], [`take_worker_boot`] or
/// [`is_worker`]). Spawning workers from a program that did not would re-run its `main` in
/// every worker, which would spawn workers of its own, and so on: the process back end refuses
/// instead, with [`ADD_THE_HOOK`].
pub fn hook_called() -> bool {
    HOOK_CALLED.load(Ordering::Relaxed)
}

/// The safety net in the worker, for a hook that the parent called but the worker skipped
/// (say, behind a condition): in a spawned worker that has not taken its boot info, says so
/// on stderr and exits with [`EXIT_NO_ENTRY`] (so the worker's `main` goes no further than
/// its first pool); anywhere else, returns at once. Process back ends call it before starting
/// workers.
pub fn exit_if_hook_skipped() {
    if TAKEN.load(Ordering::SeqCst) || read_wire().is_none() {
        return;
    }
    eprintln!(
        "pool worker (pid {}): this process was started as a worker but its program built a \
         pool without running the entry hook: {ADD_THE_HOOK}",
        std::process::id()
    );
    std::process::exit(EXIT_NO_ENTRY);
}

/// `None`: not a worker (no variable, or it was meant for another process);
/// `Some(None)`: a worker whose variable does not decode.
fn read_wire() -> Option<Option<BootWire>> {
    let s = std::env::var(ENV_BOOT).ok()?;
    let Some(wire) = BootWire::decode(&s) else {
        return Some(None);
    };
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    (wire.parent == ppid).then_some(Some(wire))
}

/// Whether this process was started as a worker by its parent (does not consume the boot info).
pub fn is_worker() -> bool {
    HOOK_CALLED.store(true, Ordering::Relaxed);
    read_wire().is_some()
}

/// The boot info, the first time it is asked for in a worker; `None` in any other process or
/// on later calls. The exe identity is checked and the fds are validated and owned from here on.
pub fn take_worker_boot() -> Option<Result<WorkerBoot, BootError>> {
    HOOK_CALLED.store(true, Ordering::Relaxed);
    let s = std::env::var_os(ENV_BOOT)?;
    if TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    // SAFETY: the hook runs first in `main` (its documented place), before the program starts
    // a thread that could read the environment at the same time.
    unsafe { std::env::remove_var(ENV_BOOT) };
    let Some(wire) = s.to_str().and_then(BootWire::decode) else {
        return Some(Err(BootError::Malformed));
    };
    if !crate::child::setup_after_exec(wire.parent, wire.ignore_sigint) {
        return Some(Err(BootError::ParentGone {
            parent: wire.parent,
        }));
    }
    Some(boot_from_wire(wire))
}

fn boot_from_wire(wire: BootWire) -> Result<WorkerBoot, BootError> {
    wire.exe.check_current()?;
    let mut fds = Vec::with_capacity(wire.fds.len());
    for &fd in &wire.fds {
        // Re-arm close-on-exec so the fd does not leak into programs the worker starts.
        crate::shm::set_cloexec(fd, true).map_err(|source| BootError::BadFd { fd, source })?;
        // SAFETY: the parent passed this fd to us alone, it is open (fcntl succeeded), and this
        // is the only place that takes ownership of it (guarded by TAKEN).
        fds.push(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    Ok(WorkerBoot {
        worker_id: wire.worker_id,
        payload: wire.payload,
        fds,
        entry: wire.entry,
    })
}

/// The hook for `main`: in a spawned worker, runs its entry function and exits with its return
/// value (never returns); in any other process, returns at once. A worker with unusable boot
/// info prints why on stderr and exits with [`EXIT_BAD_BOOT`].
pub fn run_if_worker() {
    let Some(boot) = take_worker_boot() else {
        return;
    };
    let code = match boot {
        Err(e) => {
            eprintln!("pool-ipc worker: {e}");
            EXIT_BAD_BOOT
        }
        Ok(boot) => match boot.entry {
            None => {
                eprintln!("pool-ipc worker: no entry function in boot info");
                EXIT_BAD_BOOT
            }
            Some(id) => {
                // SAFETY: `boot_from_wire` checked that this is the parent's binary, and the
                // parent made `id` from a `WorkerMain` (the only type `SpawnCommand` accepts).
                let f = unsafe { std::mem::transmute::<*const (), WorkerMain>(id.to_ptr()) };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(boot)));
                r.unwrap_or(crate::process::EXIT_PANICKED)
            }
        },
    };
    std::process::exit(code)
}
