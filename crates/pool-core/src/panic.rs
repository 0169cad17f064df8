//! Turning panics into messages: all of the pool's unwinding handling lives here.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

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

/// Installs (once) a panic hook that keeps panics inside worker code quiet and records their
/// backtrace; panics elsewhere go to the previous hook unchanged.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
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
