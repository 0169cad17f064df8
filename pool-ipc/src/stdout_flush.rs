//! Flushing `stdout` before a fork, without waiting on a lock another thread may hold.
//!
//! Why: fork copies the parent's memory, `stdout`'s buffer included. A line the program began
//! with `print!` and has not ended yet would be written again by every Fork worker that prints
//! (as multiprocessing does, the pool flushes before it forks).
//!
//! Flushing takes `stdout`'s lock, and a program may hold that lock for as long as it likes: a
//! loop that writes each result through a `StdoutLock` while it waits for the pool. A worker
//! started meanwhile (a replacement, or one the apply collector starts) must not wait for that
//! loop, which waits for it. So:
//! 1. The forking thread starts a helper thread to flush, and waits for its answer at most
//!    [`PATIENCE`].
//! 2. The helper flushes (taking and releasing the lock), answers and ends.
//! 3. Without an answer in time, the fork goes ahead: the lock was held elsewhere, and the
//!    child may see that line again, as it would have without this module. The helper flushes
//!    when the lock comes free, then ends.
//!
//! A helper per fork, not one for the process: a thread that outlived its pool would be held
//! by the program for good (and a forked child would not have it).

use std::io::Write;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

/// How long a fork waits for the flush (a free lock takes microseconds).
const PATIENCE: Duration = Duration::from_millis(10);

/// Step 1: flushes `stdout` unless its lock stays held for longer than [`PATIENCE`].
pub(crate) fn flush_stdout_before_fork() {
    let (done, answer) = sync_channel(1);
    let helper = std::thread::Builder::new()
        .name("pool-stdout-flush".into())
        .spawn(move || {
            // Step 2.
            let _ = std::io::stdout().flush();
            let _ = done.try_send(());
        });
    if helper.is_ok() {
        let _ = answer.recv_timeout(PATIENCE);
    }
}
