//! The thread that forks workers.
//!
//! A worker dies with the *thread* that forked it (`PR_SET_PDEATHSIG` is per thread), so forks
//! must come from a thread that lives as long as the pool, not from whichever thread asked
//! (a test's thread, the apply collector). This one lives as long as the back end; when the
//! back end is dropped, it exits, and any worker still alive is killed by the kernel.

use std::io;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::child::ChildOptions;
use crate::fork::fork_worker;
use crate::process::WorkerProcess;

/// What a worker process runs after the fork; its return value is the exit code.
pub(crate) type ChildMain = Box<dyn FnOnce() -> i32 + Send>;

/// Starts one worker process (by fork or by spawn) on the launcher thread.
pub(crate) type Start = Box<dyn FnOnce() -> io::Result<WorkerProcess> + Send>;

type Request = (Start, mpsc::Sender<io::Result<WorkerProcess>>);

#[derive(Debug)]
pub(crate) struct Launcher {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Launcher {
    pub(crate) fn new() -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("pool-launcher".into())
            .spawn(move || {
                for (start, reply) in rx {
                    let _ = reply.send(start());
                }
            })?;
        Ok(Launcher {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Forks a worker that runs `main`.
    pub(crate) fn fork(&self, main: ChildMain) -> io::Result<WorkerProcess> {
        self.run(Box::new(move || {
            // SAFETY: the child runs only `main`: the worker loop over its own shared-memory
            // link and inherited data. It takes no lock another parent thread could hold (see
            // the fork-safety rules in the crate docs).
            unsafe { fork_worker(ChildOptions::default(), main) }
        }))
    }

    /// Runs `start` on the launcher thread.
    pub(crate) fn run(&self, start: Start) -> io::Result<WorkerProcess> {
        let (tx, rx) = mpsc::channel();
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the launcher thread is gone");
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send((start, tx))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
