//! Ctrl-C while a pool call runs: the call returns `PoolError::Interrupted` after its workers
//! are stopped, and the program goes on, whatever the start method (back ends call
//! [`begin_call`], [`end_call`] and [`take`] from their `Backend` methods of the same names).
//!
//! Only while calls run, and only if the program has not set a SIGINT handler of its own, a
//! handler is installed that records the signal; the previous disposition comes back when the
//! last call ends. Process workers ignore SIGINT (`pool-ipc`'s `child`), so the parent decides.
//! A program with its own handler keeps it: its handler sees Ctrl-C, as before.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

struct Installed {
    calls: usize,
    previous: Option<libc::sigaction>,
}

static STATE: Mutex<Installed> = Mutex::new(Installed {
    calls: 0,
    previous: None,
});

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Marks the start of a call: installs the handler if SIGINT has its default disposition.
pub fn begin_call() {
    let mut s = STATE.lock().unwrap_or_else(|e| e.into_inner());
    s.calls += 1;
    if s.calls > 1 {
        return;
    }
    INTERRUPTED.store(false, Ordering::SeqCst);
    // SAFETY: sigaction with a zeroed struct and a null new action only reads the current one.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current) };
    if current.sa_sigaction != libc::SIG_DFL {
        return;
    }
    // SAFETY: `on_sigint` is async-signal-safe (one atomic store); the struct is fully set.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as usize;
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: installs a valid action; the previous one is kept to be restored.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    if unsafe { libc::sigaction(libc::SIGINT, &action, &mut previous) } == 0 {
        s.previous = Some(previous);
    }
}

/// Marks the end of a call: restores the previous disposition after the last one.
pub fn end_call() {
    let mut s = STATE.lock().unwrap_or_else(|e| e.into_inner());
    s.calls = s.calls.saturating_sub(1);
    if s.calls == 0
        && let Some(previous) = s.previous.take()
    {
        // SAFETY: restores the action saved by `begin_call`.
        unsafe { libc::sigaction(libc::SIGINT, &previous, std::ptr::null_mut()) };
    }
}

/// Whether Ctrl-C arrived since the first running call began (and clears it).
pub fn take() -> bool {
    INTERRUPTED.swap(false, Ordering::SeqCst)
}
