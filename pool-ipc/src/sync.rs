//! Every atomic, fence, futex call and busy-wait hint of the shared-memory ring, in one place, so
//! that `--cfg loom` can swap them for loom's model-checked versions (as crossbeam's `primitive`
//! module does).
//!
//! - Normal builds: `std`'s atomics, [`crate::futex`], `std::hint::spin_loop`,
//!   `std::thread::yield_now`.
//! - `--cfg loom`: loom's atomics and hints, and a futex emulated with one loom mutex and condition
//!   variable. The emulation keeps the kernel's contract: `wait` checks the word and goes to sleep
//!   atomically with respect to `wake` (both take the mutex), and may return spuriously. A wait
//!   with a timeout returns at once (a legal spurious return), so models use no deadlines; a lost
//!   wake-up then shows as a loom deadlock.
//!
//! Run the models: `scripts/verify.sh loom` (see `tests/loom_ring.rs`).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// A busy-wait hint (loom: a yield point, so spinning models stay finite).
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Gives the CPU away for a moment.
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Whether a failed loom model is unwinding: it drops the rings, whose `Drop` closes them, and
/// touching loom then would abort the test binary instead of reporting the failure. Always
/// false outside loom.
pub(crate) fn model_unwinding() -> bool {
    cfg!(loom) && std::thread::panicking()
}

/// Cross-process futex on a word of the ring (see [`crate::futex`]).
pub(crate) mod futex {
    #[cfg(not(loom))]
    pub(crate) use crate::futex::{wait, wake};

    #[cfg(loom)]
    pub(crate) use super::loom_futex::{wait, wake};
}

#[cfg(loom)]
mod loom_futex {
    use std::time::Duration;

    use loom::sync::{Condvar, Mutex};

    use super::{AtomicU32, Ordering};

    loom::lazy_static! {
        /// One parking lot for every word: a wake-up wakes all sleepers, who re-check their word
        /// (the futex contract allows spurious returns).
        static ref PARKING: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        if timeout.is_some() {
            loom::thread::yield_now();
            return;
        }
        let (lock, cond) = &*PARKING;
        let guard = lock.lock().unwrap();
        if word.load(Ordering::SeqCst) == expected {
            drop(cond.wait(guard).unwrap());
        }
    }

    pub(crate) fn wake(_word: &AtomicU32, _n: i32) -> usize {
        let (lock, cond) = &*PARKING;
        let _guard = lock.lock().unwrap();
        cond.notify_all();
        0
    }
}
