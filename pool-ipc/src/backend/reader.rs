//! One thread per worker process that turns its messages into `pool_core` events, in order,
//! and reports its death last.
//!
//! Death is event-driven: the death watcher closes the link of a worker whose pidfd became
//! readable, which wakes this thread; it drains what the worker sent before dying (an
//! `Exited` there means a clean end), reaps the process, and otherwise reports `Died` with
//! the signal or exit code, its last line on stderr and, for an unexplained SIGKILL, whether
//! the OOM killer is the likely cause with the memory figures the kernel had at the death.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use pool_core::Event;

use crate::backend::wire::WireEvent;
use crate::channel::MsgReceiver;
use crate::oom::{self, MemoryAtDeath, OomProbe};
use crate::process::WorkerProcess;
use crate::stderr::StderrTee;

pub(crate) struct Reader {
    pub(crate) rx: MsgReceiver,
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
    pub(crate) fn run(mut self) {
        let pid = lock(&self.process).pid();
        let probe = OomProbe::for_pid(pid);
        let before = probe.read();
        let mut clean = false;
        while let Ok(ev) = self.rx.recv::<WireEvent>() {
            let mut bulk = Vec::new();
            if let WireEvent::ChunkDone { .. } = ev {
                // The decoder hands the buffer back for reuse.
                bulk = pool_core::take_buffer();
                if self.rx.recv_bytes(&mut bulk).is_err() {
                    break;
                }
            }
            clean |= matches!(ev, WireEvent::Exited { .. });
            let event = ev.into_event(bulk);
            if self.events.send(event).is_err() {
                break;
            }
        }
        // The link is closed: the worker exited or died. Reap it (no zombie) and say how.
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
