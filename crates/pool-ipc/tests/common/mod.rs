//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Mutex, MutexGuard};

use pool_ipc::child::ChildOptions;
use pool_ipc::process::WorkerProcess;

static LOCK: Mutex<()> = Mutex::new(());

/// Serializes tests that fork or count fds: fd counts and zombies are process-wide.
pub fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forks a worker running `f`.
pub fn fork(f: impl FnOnce() -> i32) -> WorkerProcess {
    // SAFETY: tests hold `serial()` so no other test forks concurrently; the closures used in
    // tests only touch shared regions, allocate (glibc malloc is fork-safe) and call libc.
    unsafe { pool_ipc::fork::fork_worker(ChildOptions::default(), f) }.expect("fork")
}

/// Disables core dumps in the calling (child) process, so crash tests write no core files.
pub fn no_core() {
    let lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid rlimit pointer.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) };
}
