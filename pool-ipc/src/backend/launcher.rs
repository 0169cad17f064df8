//! The thread that forks workers.
//!
//! A worker dies with the *thread* that forked it (`PR_SET_PDEATHSIG` is per thread), so forks
//! must come from a thread that lives as long as the pool, not from whichever thread asked
//! (a test's thread, the apply collector). This one lives as long as the back end; when the
//! back end is dropped, it exits, and any worker still alive is killed by the kernel.
//!
//! One exception: a fork asked for on the process's main thread happens right there. The main
//! thread lives as long as the process (it ends the process when it returns), so it is as good
//! a parent as the launcher; and a child forked from it allocates from glibc's *main* arena,
//! where `M_MMAP_MAX = 0` ([`crate::malloc`]) keeps big freed buffers in the heap for the next
//! task. A child forked from the launcher inherits the launcher's arena instead, a thread arena
//! whose heaps hold at most 64 MiB, so every allocation of 64 MiB or more there is a fresh
//! `mmap`, unmapped on free: a task returning 64 MiB faulted 16k fresh pages in on every call
//! (issue #17). Pools are mostly built, and maps mostly called, on the main thread; the rest
//! keep the launcher and its thread arena.

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

    /// Forks a worker that runs `main`: here on the main thread, else on the launcher thread.
    pub(crate) fn fork(&self, main: ChildMain) -> io::Result<WorkerProcess> {
        crate::stdout_flush::flush_stdout_before_fork();
        let start: Start = Box::new(move || {
            // SAFETY: the child runs only `main`: the worker loop over its own shared-memory
            // link and inherited data. It takes no lock another parent thread could hold (see
            // the fork-safety rules in the crate docs).
            unsafe { fork_worker(ChildOptions::default(), main) }
        });
        if on_main_thread() {
            start()
        } else {
            self.run(start)
        }
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

/// Whether the calling thread is the process's main thread (its thread id is the process id).
fn on_main_thread() -> bool {
    // SAFETY: gettid and getpid have no preconditions and cannot fail.
    unsafe { libc::gettid() == libc::getpid() }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
