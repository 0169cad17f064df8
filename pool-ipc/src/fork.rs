//! The `fork` start method: run a closure in a forked child, then `_exit`.
//!
//! Why `_exit`: the child is a copy of the parent's whole stack; returning would unwind into the
//! parent's frames (running the parent's destructors, its test harness, its `main`), and `exit`
//! would run atexit handlers and flush stdio buffers that belong to the parent. So the closure's
//! result (or a caught panic, [`EXIT_PANICKED`]) becomes the exit code of `_exit`.
//!
//! Guarantees: the child sees the parent's memory copy-on-write (shared regions created before the
//! fork are truly shared), has only the forking thread, and dies with its parent
//! ([`crate::child`]). What it does *not* guarantee: that locks held by other parent threads at the
//! fork are usable in the child. See the `# Safety` section of [`fork_worker`].

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::child::{ChildOptions, setup_in_child};
use crate::process::{EXIT_ORPHANED, EXIT_PANICKED, WorkerProcess, check_sigchld};

/// Forks a worker that runs `work` and exits with its return value.
///
/// # Safety
/// After `fork` in a multi-threaded process, the child has one thread, and any lock another
/// thread held at the moment of the fork stays locked forever in the child. The caller must make
/// sure `work` does not touch such a lock: either the process has no other threads (fork first,
/// start helper threads later, or fork from a single-threaded fork server), or `work` only uses
/// state no other thread can hold (glibc's `malloc` is safe: it resets its locks at fork; `stdout`
/// and other `Mutex`es are not).
pub unsafe fn fork_worker<F>(opts: ChildOptions, work: F) -> io::Result<WorkerProcess>
where
    F: FnOnce() -> i32,
{
    check_sigchld()?;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the caller upholds the fork contract above; the child only runs async-signal-safe
    // set-up, then `work`, then `_exit`, and never returns into the parent's frames. No other
    // thread is reporting a panic meanwhile, so the child's panics do not find a lock of
    // theirs taken.
    match pool_core::panic::fork_between_panics(|| unsafe { libc::fork() }) {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            if !setup_in_child(parent, opts) {
                // SAFETY: _exit is always safe to call; it does not return.
                unsafe { libc::_exit(EXIT_ORPHANED) };
            }
            let code = catch_unwind(AssertUnwindSafe(work)).unwrap_or(EXIT_PANICKED);
            // SAFETY: as above; no atexit handlers, no unwinding into the parent's frames.
            unsafe { libc::_exit(code) }
        }
        pid => WorkerProcess::from_child_pid(pid),
    }
}
