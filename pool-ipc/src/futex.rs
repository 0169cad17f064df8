//! Cross-process futex wait/wake on an `AtomicU32` living in shared memory.
//!
//! Why raw `SYS_futex`: std's parking is per process; a futex on a `MAP_SHARED` page is the one
//! kernel primitive that lets a process sleep until another one changes a word. We use the
//! *shared* (non-`FUTEX_PRIVATE_FLAG`) operations, keyed by the physical page, so they work
//! across processes whatever the mapping's address is.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` (forever when `None`).
///
/// Returns on wake-up, on timeout, on a signal, or at once when the value already differs:
/// callers must re-check their condition in a loop (spurious returns are allowed).
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; `ts_ptr` is null or
    // points to a live timespec. FUTEX_WAIT only reads them. Errors (EAGAIN, EINTR, ETIMEDOUT)
    // are all "return and re-check".
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            0usize,
            0u32,
        );
    }
}

/// Wakes up to `n` waiters sleeping on `word`. Returns how many were woken.
pub fn wake(word: &AtomicU32, n: i32) -> usize {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it does not dereference user memory
    // beyond validating the address, which is a live atomic.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            0usize,
            0usize,
            0u32,
        )
    };
    usize::try_from(r).unwrap_or(0)
}
