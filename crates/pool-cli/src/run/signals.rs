//! Ctrl-C: SIGINT, SIGTERM and SIGHUP are blocked in every thread of `pool run` (before the
//! first thread starts, so all inherit the mask) and taken by one thread with `sigwait`, so no
//! code runs in signal-handler context. The first signal aborts the run (no new job; every
//! running job's process group gets SIGTERM, then SIGKILL); the run then ends with 130. A second
//! signal, or a run that has not ended 5 s later, exits at once after SIGKILL to every group.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use super::registry::Registry;

/// Exit status after Ctrl-C.
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// Blocks the signals in this thread (and so in every thread started after).
pub(crate) fn block() -> anyhow::Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.thread_block()?;
    Ok(set)
}

/// Starts the thread that takes the signals; `interrupted` is set at the first.
pub(crate) fn handle(
    set: SigSet,
    registry: Arc<Registry>,
    interrupted: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    thread::Builder::new()
        .name("pool-run-signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                if interrupted.swap(true, Ordering::SeqCst) {
                    registry.kill_all_now();
                    std::process::exit(EXIT_INTERRUPTED);
                }
                eprintln!("pool run: {sig}: killing the running jobs");
                registry.abort();
                let reg = registry.clone();
                let _ = thread::Builder::new()
                    .name("pool-run-watchdog".into())
                    .spawn(move || {
                        thread::sleep(Duration::from_secs(5));
                        reg.kill_all_now();
                        std::process::exit(EXIT_INTERRUPTED);
                    });
            }
        })?;
    Ok(())
}
