//! One thread per worker process that forwards its messages as `pool_core` events while the
//! caller's thread does not (`duty.rs`), and reports its death last.
//!
//! Death is event-driven: the death watcher closes the link of a worker whose pidfd became
//! readable and rings the duty's bell, which wakes this thread wherever it waits; it drains
//! what the worker sent before dying (an `Exited` there means a clean end), reaps the process,
//! and otherwise reports `Died` with the signal or exit code and, for an unexplained SIGKILL,
//! whether the OOM killer is the likely cause with the memory the kernel knew of at its death,
//! and its last line on stderr. A worker that broke the protocol (`inbox.rs`) is killed and
//! reported so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use pool_core::Event;

use super::duty::Duty;
use super::inbox::{Inbox, Took, Wait};
use crate::oom::{self, MemoryAtDeath, OomProbe};
use crate::process::WorkerProcess;
use crate::ring::RingCloser;
use crate::stderr::StderrTee;

pub(crate) struct Reader {
    pub(crate) inbox: Arc<Mutex<Inbox>>,
    /// Its inbox's ring, to see it closed without the lock.
    pub(crate) ring: RingCloser,
    pub(crate) duty: Arc<Duty>,
    pub(crate) events: Sender<Event>,
    pub(crate) process: Arc<Mutex<WorkerProcess>>,
    pub(crate) killed: Arc<AtomicBool>,
    pub(crate) worker: usize,
    pub(crate) generation: u64,
    /// The workers' stderr, and this worker's token there.
    pub(crate) stderr: Arc<StderrTee>,
    pub(crate) token: u64,
}

impl Reader {
    pub(crate) fn run(self) {
        let pid = lock(&self.process).pid();
        let probe = OomProbe::for_pid(pid);
        let before = probe.read();
        let (ring, duty) = (&self.ring, &self.duty);
        // Listen while the caller does not (it may take over at any time), until the link ends.
        let stop = || duty.caller_has_it() && !ring.is_closed();
        let (mut clean, violation) = loop {
            duty.stand_aside(|| ring.is_closed());
            let mut inbox = lock(&self.inbox);
            let mut took = Took::One;
            while took == Took::One {
                took = inbox.take(Wait::Unless(&stop));
            }
            if took == Took::Ended {
                break (inbox.clean(), inbox.violation());
            }
        };
        if violation.is_some() {
            // Its word cannot be trusted any more: end it (and then report it, below).
            let _ = lock(&self.process).kill(libc::SIGKILL);
            clean = false;
        }
        // The link is closed: the worker exited or died. Reap it (no zombie) and say how.
        // A worker that another process reaps (a forkserver's) needs neither after a clean end.
        if (clean || self.killed.load(Ordering::Acquire)) && lock(&self.process).reaped_elsewhere()
        {
            return;
        }
        let reason = loop {
            // Short waits, so a concurrent `kill` never waits for this lock.
            let mut p = lock(&self.process);
            match p.wait_timeout(std::time::Duration::from_millis(10)) {
                Ok(Some(r)) => break Ok((r, p.peak_rss_bytes())),
                Ok(None) => continue,
                Err(e) => break Err(e),
            }
        };
        let killed = self.killed.load(Ordering::Acquire);
        if clean || killed {
            return;
        }
        let message = match reason {
            Ok(_) if violation.is_some() => format!(
                "worker process {pid} broke the protocol: it {}; it was killed",
                violation.unwrap_or_default()
            ),
            Ok((r, peak_rss)) => {
                let verdict = oom::judge(r, false, before, probe.read());
                let mut m = format!("worker process {pid} {r}");
                if verdict.is_oom() {
                    m.push_str(&format!(
                        "; the kernel's OOM killer is the likely cause ({})",
                        verdict.evidence
                    ));
                    let memory = MemoryAtDeath {
                        peak_rss,
                        cgroup: probe.memory(),
                    }
                    .to_string();
                    if !memory.is_empty() {
                        m.push_str("; ");
                        m.push_str(&memory);
                    }
                }
                m
            }
            Err(e) => format!("worker process {pid} was lost: {e}"),
        };
        // Its last words: why it aborted, often ("memory allocation of N bytes failed").
        let message = match self.stderr.last_line(self.token) {
            Some(line) => format!("{message}; its last line on stderr: \"{line}\""),
            None => message,
        };
        let _ = self.events.send(Event::Died {
            worker: self.worker,
            generation: self.generation,
            message,
        });
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crossbeam_channel::unbounded;
    use pool_core::{Cause, Failure, Phase};

    use pool_wire::msg::FromWorker;
    use pool_wire::parent::Outstanding;

    use super::*;
    use crate::channel::Link;
    use crate::child::ChildOptions;
    use crate::ring::WaitPolicy;

    /// A real worker process that lies: it claims to be worker 7 and returns a chunk it was
    /// never given. The reader stamps its true slot, then ends it with a clear report.
    #[test]
    fn a_worker_cannot_speak_for_another_nor_return_a_chunk_it_was_not_given() {
        let link = Link::new(1 << 16).unwrap();
        let child = link.clone();
        // SAFETY: the child only encodes (malloc, reset at fork) and writes to its own
        // shared-memory link, then sleeps; it takes no lock another test thread could hold.
        let p = unsafe {
            crate::fork::fork_worker(ChildOptions::default(), move || {
                let (mut tx, _rx) = child.worker_end(WaitPolicy::default()).split();
                let failure = Failure {
                    phase: Phase::Init,
                    cause: Cause::Panic,
                    worker: 7,
                    task: None,
                    args: None,
                    message: "init failed".into(),
                    backtrace: None,
                    attempts: 1,
                    earlier: Vec::new(),
                };
                let _ = tx.send(&FromWorker::Failed { failure });
                let _ = tx.send_deferred(&FromWorker::ChunkDone {
                    call: 1,
                    first: 999,
                });
                let _ = tx.send_bytes(&[1, 2, 3]);
                std::thread::sleep(Duration::from_secs(30));
                0
            })
        }
        .unwrap();
        let (_tx, rx) = link.parent_end(WaitPolicy::default()).split();
        let (events_tx, events) = unbounded();
        let outstanding = Outstanding::default();
        outstanding.sent(1, 0);
        let ring = rx.closer();
        let inbox = Inbox::new(rx, events_tx.clone(), 1, 3, outstanding.clone(), None);
        let reader = Reader {
            inbox: Arc::new(Mutex::new(inbox)),
            ring,
            duty: Arc::default(),
            events: events_tx,
            process: Arc::new(Mutex::new(p)),
            killed: Arc::new(AtomicBool::new(false)),
            worker: 1,
            generation: 3,
            stderr: Arc::new(StderrTee::new().unwrap()),
            token: 1,
        };
        let t0 = Instant::now();
        let thread = std::thread::spawn(move || reader.run());
        let first = events.recv_timeout(Duration::from_secs(10)).unwrap();
        let Event::Failed {
            generation,
            failure,
        } = first
        else {
            panic!("{first:?}")
        };
        assert_eq!(
            (failure.worker, generation),
            (1, 3),
            "stamped by the reader"
        );
        let second = events.recv_timeout(Duration::from_secs(10)).unwrap();
        let Event::Died {
            worker,
            generation,
            message,
        } = second
        else {
            panic!("{second:?}")
        };
        assert_eq!((worker, generation), (1, 3));
        assert!(message.contains("broke the protocol"), "{message}");
        assert!(message.contains("first task 999"), "{message}");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the liar was killed, not waited for"
        );
        thread.join().unwrap();
        assert_eq!(outstanding.len(), 1, "the chunk it was given is still owed");
    }
}
