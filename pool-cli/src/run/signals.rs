//! Ctrl-C: SIGINT and SIGTERM are caught by `signal-hook` (its handler only writes to a
//! self-pipe) and handled in an ordinary thread. Nothing is blocked, so jobs start with the
//! default signal mask and dispositions. The first signal aborts the run (no new job; every
//! running job's process group gets SIGTERM, then SIGKILL); the run then ends with 130. A second
//! signal exits at once after SIGKILL to every group; so does a run that has not ended 1 s
//! after its last job died (e.g. the main thread is blocked reading stdin), or 10 s after the
//! signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::registry::Registry;

/// Exit status after Ctrl-C.
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// Installs the handlers; `interrupted` is set at the first signal.
pub(crate) fn handle(registry: Arc<Registry>, interrupted: Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    thread::Builder::new()
        .name("pool-run-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if interrupted.swap(true, Ordering::SeqCst) {
                    registry.kill_all_now();
                    std::process::exit(EXIT_INTERRUPTED);
                }
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                eprintln!("pool run: {name}: killing the running jobs");
                registry.abort();
                let reg = registry.clone();
                let _ = thread::Builder::new()
                    .name("pool-run-watchdog".into())
                    .spawn(move || {
                        let start = Instant::now();
                        while reg.running() > 0 && start.elapsed() < Duration::from_secs(9) {
                            thread::sleep(Duration::from_millis(20));
                        }
                        thread::sleep(Duration::from_secs(1));
                        reg.kill_all_now();
                        std::process::exit(EXIT_INTERRUPTED);
                    });
            }
        })?;
    Ok(())
}
