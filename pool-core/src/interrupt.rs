//! Ctrl-C while a pool call runs: the call returns `PoolError::Interrupted` after its workers
//! are stopped, and the program goes on, whatever the start method or back end (the `Backend`
//! trait's default methods of the same names call [`begin_call`], [`end_call`] and [`take`]).
//!
//! Only while calls run, and only if the program has not set a SIGINT handler of its own, a
//! handler is installed that records the signal; the previous disposition comes back when the
//! last call ends. Process workers ignore SIGINT (`pool-ipc`'s `child`), so the parent decides.
//! A program with its own handler keeps it: its handler sees Ctrl-C, as before.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

struct Installed {
    calls: usize,
    previous: Option<SigAction>,
}

static STATE: Mutex<Installed> = Mutex::new(Installed {
    calls: 0,
    previous: None,
});

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether SIGINT has its default disposition (nix has no read-only `sigaction`): no handler is
/// installed, the pool's (while a call runs) or the program's.
pub fn sigint_is_default() -> bool {
    // SAFETY: `sigaction` is plain old data, for which all zeroes is a valid value.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action makes `sigaction` only write the current one into `current`.
    let r = unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current) };
    r == 0 && current.sa_sigaction == libc::SIG_DFL
}

/// Installs `action` for SIGINT, returning the one it replaced.
fn set_sigint(action: &SigAction) -> Option<SigAction> {
    // SAFETY: the handlers installed here are `on_sigint` (async-signal-safe: one atomic store)
    // or a disposition read back from the kernel, restored unchanged.
    unsafe { sigaction(Signal::SIGINT, action) }.ok()
}

/// Marks the start of a call: installs the handler if SIGINT has its default disposition.
pub fn begin_call() {
    let mut s = STATE.lock().unwrap_or_else(|e| e.into_inner());
    s.calls += 1;
    if s.calls > 1 {
        return;
    }
    INTERRUPTED.store(false, Ordering::SeqCst);
    if !sigint_is_default() {
        return;
    }
    let ours = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::empty(),
        SigSet::empty(),
    );
    s.previous = set_sigint(&ours);
}

/// Marks the end of a call: restores the previous disposition after the last one.
pub fn end_call() {
    let mut s = STATE.lock().unwrap_or_else(|e| e.into_inner());
    s.calls = s.calls.saturating_sub(1);
    if s.calls == 0
        && let Some(previous) = s.previous.take()
    {
        set_sigint(&previous);
    }
}

/// Whether Ctrl-C arrived since the first running call began (and clears it).
pub fn take() -> bool {
    INTERRUPTED.swap(false, Ordering::SeqCst)
}
