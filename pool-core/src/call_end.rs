//! One process-wide hook run whenever a call of this process has its results in.
//!
//! Why a hook: what a call's workers draw need not come back the way its results do. Forked
//! workers send their bars and `println` lines to the caller's progress relay (a thread of the
//! `pool-progress` crate, which this crate does not know), while their results come through
//! the back end; a result can overtake the lines its task printed before it. The relay sets
//! [`set`] once it starts, and the pool runs the hook in these places:
//!
//! 1. a map call (eager or lazy) that ends, fails or is abandoned, before its bar ends and
//!    before the caller gets its last results;
//! 2. an `apply_async` pass that completes tasks, before their results are handed out.
//!
//! The hook must be cheap when there is nothing to wait for (it runs for every call) and must
//! wait a bounded time when there is.

use std::sync::OnceLock;

static HOOK: OnceLock<fn()> = OnceLock::new();

/// Runs `hook` at the end of every call of this process from now on; `false` if a hook is set
/// already (the first one stays).
pub fn set(hook: fn()) -> bool {
    HOOK.set(hook).is_ok()
}

/// A call's results are in: runs the hook, if one is set.
pub(crate) fn run() {
    if let Some(hook) = HOOK.get() {
        hook();
    }
}
