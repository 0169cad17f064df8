//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pool_ipc::child::ChildOptions;
use pool_ipc::process::WorkerProcess;

static LOCK: Mutex<()> = Mutex::new(());

/// Aborts the test binary if dropped later than 30 s after creation: a hang in a blocking
/// primitive becomes a loud failure instead of a stuck CI job.
pub struct Watchdog(Arc<AtomicBool>);

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Starts a [`Watchdog`] for the calling test.
pub fn watchdog() -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let d2 = Arc::clone(&done);
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    std::thread::spawn(move || {
        for _ in 0..300 {
            std::thread::sleep(Duration::from_millis(100));
            if d2.load(Ordering::SeqCst) {
                return;
            }
        }
        eprintln!("test {name} hung for 30 s; aborting");
        std::process::abort();
    });
    Watchdog(done)
}

/// Serializes tests that fork or count fds (fd counts and zombies are process-wide), and
/// guards them with a [`Watchdog`].
pub fn serial() -> (MutexGuard<'static, ()>, Watchdog) {
    (LOCK.lock().unwrap_or_else(|e| e.into_inner()), watchdog())
}

/// The fds this process has open, each with what it points at (a pipe's or memfd's link names
/// its inode, so a number reused for a new object reads as new).
pub fn fd_table() -> Vec<(i32, std::path::PathBuf)> {
    // The process's heap of shared buffers keeps one memfd open for its life, made with the
    // first Fork or Spawn back end: make it first, so that it is no test's leak.
    pool_core::shared_bytes::prepare_heap();
    pool_ipc::fds::open_fds()
        .unwrap()
        .into_iter()
        .filter_map(|fd| Some((fd, std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?)))
        .collect()
}

/// What was opened since `before` and is still open: a leak, for a test that closed all it
/// opened. (A count would also move when a thread of an earlier test closes one of its fds.)
pub fn opened_since(before: &[(i32, std::path::PathBuf)]) -> Vec<(i32, std::path::PathBuf)> {
    fd_table()
        .into_iter()
        .filter(|e| !before.contains(e))
        .collect()
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

/// Waits (at most 5 s) until process `pid` is gone or a zombie: a process whose parent died
/// must not outlive it. `what` names it in the failure.
pub fn assert_dies_soon(pid: i32, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        if matches!(state, None | Some("Z") | Some("X")) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} {pid} outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
