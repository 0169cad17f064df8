//! Turning panics into messages: all of the pool's unwinding handling lives here.
//!
//! A worker's panic is reported far from where it happened, so its backtrace is always
//! recorded, as bare frames that cost microseconds ([`WorkerBacktrace`]); they are symbolized
//! only if the error is shown with them. (Symbolizing at once cost every worker process
//! 70-160 ms on its first panic, before the error could leave.)

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, RwLock};

use crate::worker_trace::WorkerBacktrace;

thread_local! {
    static LAST_BACKTRACE: RefCell<Option<WorkerBacktrace>> = const { RefCell::new(None) };
    static IN_WORKER: RefCell<bool> = const { RefCell::new(false) };
}

/// A caught panic: its message and the frames where it happened.
#[derive(Debug)]
pub(crate) struct Caught {
    pub(crate) message: String,
    pub(crate) backtrace: Option<WorkerBacktrace>,
}

/// Held (shared) by every panic report in progress, and exclusively around a `fork`: see
/// [`fork_between_panics`].
static REPORTING: RwLock<()> = RwLock::new(());

/// Runs `report` as part of a panic report: no fork happens meanwhile (symbolizing a backtrace
/// takes the symbolizer's lock, which a child forked meanwhile would inherit taken).
pub(crate) fn while_reporting<R>(report: impl FnOnce() -> R) -> R {
    let _reporting = REPORTING.read().unwrap_or_else(|e| e.into_inner());
    report()
}

/// Runs `fork` (a closure that calls `fork(2)`) while no thread of this process is reporting a
/// panic or writing to stderr.
///
/// Why: a panic report takes locks (std's backtrace lock while capturing and resolving a
/// backtrace, stderr's while printing), and a child forked while another thread holds one of
/// them inherits it locked forever: the child's first panic then hangs, and its parent waits
/// for a result that never comes. Tests run in parallel and panic on purpose, so this happened
/// about once in ten runs of the suite. Panic reports go through the pool's hook, which holds
/// `REPORTING` shared; the fork holds it exclusively, so it falls between two reports.
///
/// Any `eprintln!` of another thread holds stderr's lock while it writes: a worker forked then
/// hung at its own first line (a program that logs from a thread while it maps). The fork holds
/// that lock too, taken after `REPORTING` as the hook and [`hold_off_forks`] callers take them;
/// in the child the forking thread owns it and lets it go. A thread that keeps stderr locked
/// (a `StderrLock` held across a wait) delays the fork until it lets go.
pub fn fork_between_panics<R>(fork: impl FnOnce() -> R) -> R {
    install_hook();
    let _no_report = REPORTING.write().unwrap_or_else(|e| e.into_inner());
    let _no_line = std::io::stderr().lock();
    fork()
}

/// Runs `f` while no fork of [`fork_between_panics`] can happen: for a helper thread that takes
/// locks a forked child may need (the terminal's, a renderer's), so that no child inherits
/// them taken. `f` must not fork, nor wait for a thread that does.
pub fn hold_off_forks<R>(f: impl FnOnce() -> R) -> R {
    let _no_fork = REPORTING.read().unwrap_or_else(|e| e.into_inner());
    f()
}

/// Installs (once) a panic hook that keeps panics inside worker code quiet and records their
/// backtrace; panics elsewhere go to the previous hook unchanged.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let _reporting = REPORTING.read().unwrap_or_else(|e| e.into_inner());
            if IN_WORKER.with(|w| *w.borrow()) {
                let frames = WorkerBacktrace::capture();
                LAST_BACKTRACE.with(|b| *b.borrow_mut() = Some(frames));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into [`Caught`].
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Caught> {
    install_hook();
    IN_WORKER.with(|w| *w.borrow_mut() = true);
    let out = panic::catch_unwind(AssertUnwindSafe(f));
    IN_WORKER.with(|w| *w.borrow_mut() = false);
    out.map_err(|payload| Caught {
        message: message_of(&*payload),
        backtrace: LAST_BACKTRACE.with(|b| b.borrow_mut().take()),
    })
}

/// The text of a panic payload (`&str` or `String`; anything else is named as such).
pub(crate) fn message_of(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}
