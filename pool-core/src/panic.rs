//! Turning panics into messages: all of the pool's unwinding handling lives here.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, RwLock};

thread_local! {
    static LAST_BACKTRACE: RefCell<Option<String>> = const { RefCell::new(None) };
    static IN_WORKER: RefCell<bool> = const { RefCell::new(false) };
}

/// A caught panic: its message and, when enabled, the backtrace taken where it happened.
#[derive(Debug)]
pub(crate) struct Caught {
    pub(crate) message: String,
    pub(crate) backtrace: Option<String>,
}

/// Held (shared) by every panic report in progress, and exclusively around a `fork`: see
/// [`fork_between_panics`].
static REPORTING: RwLock<()> = RwLock::new(());

/// Runs `fork` (a closure that calls `fork(2)`) while no thread of this process is reporting a
/// panic.
///
/// Why: a panic report takes locks (std's backtrace lock while capturing and resolving a
/// backtrace, stderr's while printing), and a child forked while another thread holds one of
/// them inherits it locked forever: the child's first panic then hangs, and its parent waits
/// for a result that never comes. Tests run in parallel and panic on purpose, so this happened
/// about once in ten runs of the suite. Panic reports go through the pool's hook, which holds
/// `REPORTING` shared; the fork holds it exclusively, so it falls between two reports.
pub fn fork_between_panics<R>(fork: impl FnOnce() -> R) -> R {
    install_hook();
    let _no_report = REPORTING.write().unwrap_or_else(|e| e.into_inner());
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
                // Always captured: a worker's panic is reported far from where it happened,
                // and the cost is paid only by failing tasks.
                let bt = Backtrace::force_capture();
                let text = (bt.status() == BacktraceStatus::Captured).then(|| bt.to_string());
                LAST_BACKTRACE.with(|b| *b.borrow_mut() = text);
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
