//! A command whose frames are still being written when its worker dies: the worker's death
//! closes the ring under the send, and the worker read none of it.

use std::time::Duration;

use pool::{StartMethod, WorkerPool};

use super::{Baseline, SERIAL};

/// More than the ring and the bulk arena hold: the send streams it through the ring and blocks
/// while the worker does not read.
const BIG: usize = 300 << 20;

/// An `apply_async` task sent to an idle worker that is stopped, then killed while the task's
/// frames wait for room in its ring: the send fails part-way, the task never ran, and it runs
/// on the worker started in its place. It failed with "worker 0 has stopped: broken pipe".
pub(super) fn cut_short(m: StartMethod) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    {
        let mut p = WorkerPool::builder()
            .n_jobs(1)
            .start_method(m)
            .keep_alive(true)
            .build()
            .unwrap();
        let pid = p.apply(|_: u64| std::process::id(), 0).unwrap() as libc::pid_t;
        // SAFETY: signals to our own worker process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        let killer = std::thread::spawn(move || {
            // Long after the task's bytes are encoded (a few hundred ms): its send is blocked.
            std::thread::sleep(Duration::from_secs(2));
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        let r = p.apply_async(|v: Vec<u8>| v.len(), vec![7u8; BIG]).unwrap();
        killer.join().unwrap();
        let got = r.get(Some(Duration::from_secs(60)));
        assert!(matches!(got, Ok(n) if n == BIG), "{got:?}");
        p.join().unwrap();
    }
    base.check();
}
