//! The running jobs, and who kills them.
//!
//! Every job runs in its own process group (its pid is the group id); killing a job signals its
//! group and the processes that left it (see [`super::family`]). A job registers its group
//! when it starts and unregisters it when its leader has exited (but before it is reaped, so the
//! group id cannot be reused meanwhile). One timer thread kills groups:
//!
//! 1. at a job's deadline (`--timeout`): `SIGTERM` to the group;
//! 2. on [`Registry::abort`] (`--halt now`, Ctrl-C, a closed stdout): `SIGTERM` to every group;
//! 3. [`GRACE`] after a `SIGTERM`, if the leader still runs: `SIGKILL` to the group.
//!
//! The job's own thread sends the final `SIGKILL` to a killed group after its leader exited, so
//! that grandchildren which ignore `SIGTERM` go too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::family;

/// Time a killed job gets between `SIGTERM` and `SIGKILL`.
pub(crate) const GRACE: Duration = Duration::from_millis(300);

/// Why a job was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum KillReason {
    /// It ran past `--timeout`.
    Timeout,
    /// `--halt now`, Ctrl-C, or our stdout was closed.
    Abort,
}

#[derive(Debug)]
struct Entry {
    pgid: Pid,
    seq: u64,
    deadline: Option<Instant>,
    killed: Option<(KillReason, Instant)>,
    kill_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    running: HashMap<u64, Entry>,
    next_token: u64,
    shutdown: bool,
}

/// The table of running jobs; shared by the workers, the signal handler and the timer thread.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    state: Mutex<State>,
    wake: Condvar,
    stopping: AtomicBool,
    aborted: AtomicBool,
}

/// A registered job.
#[derive(Debug)]
#[must_use = "a registered job must be unregistered"]
pub(crate) struct Token(u64);

impl Registry {
    /// A registry with its timer thread.
    pub(crate) fn start() -> anyhow::Result<Arc<Self>> {
        let reg = Arc::new(Registry::default());
        let r = reg.clone();
        thread::Builder::new()
            .name("pool-run-timer".into())
            .spawn(move || r.timer())?;
        Ok(reg)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a started job; kills it at once if the run is being aborted.
    pub(crate) fn register(&self, pid: u32, seq: u64, deadline: Option<Instant>) -> Token {
        let pgid = Pid::from_raw(pid as i32);
        let mut st = self.lock();
        let token = st.next_token;
        st.next_token += 1;
        let mut entry = Entry {
            pgid,
            seq,
            deadline,
            killed: None,
            kill_at: None,
        };
        if self.aborted.load(Ordering::SeqCst) {
            term(&mut entry, KillReason::Abort, Instant::now());
        }
        let wake = entry.deadline.is_some() || entry.kill_at.is_some();
        st.running.insert(token, entry);
        drop(st);
        if wake {
            self.wake.notify_one();
        }
        Token(token)
    }

    /// Forgets a job whose leader has exited: why and when it was killed, if it was.
    pub(crate) fn unregister(&self, token: Token) -> Option<(KillReason, Instant)> {
        self.lock().running.remove(&token.0).and_then(|e| e.killed)
    }

    /// No new job starts (`--halt soon`).
    pub(crate) fn stop_new(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// No new job starts and every running job is killed.
    pub(crate) fn abort(&self) {
        self.stop_new();
        self.aborted.store(true, Ordering::SeqCst);
        let now = Instant::now();
        let mut st = self.lock();
        for e in st.running.values_mut() {
            if e.killed.is_none() {
                term(e, KillReason::Abort, now);
            }
        }
        drop(st);
        self.wake.notify_one();
    }

    /// `SIGKILL` to every running group, now (a second Ctrl-C).
    pub(crate) fn kill_all_now(&self) {
        for e in self.lock().running.values() {
            family::signal(e.pgid, e.seq, Signal::SIGKILL);
        }
    }

    /// Jobs whose leader has not exited yet.
    pub(crate) fn running(&self) -> usize {
        self.lock().running.len()
    }

    /// Whether new jobs may still start.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Ends the timer thread.
    pub(crate) fn shutdown(&self) {
        self.lock().shutdown = true;
        self.wake.notify_one();
    }

    fn timer(&self) {
        let mut st = self.lock();
        while !st.shutdown {
            let now = Instant::now();
            let mut next: Option<Instant> = None;
            for e in st.running.values_mut() {
                if e.killed.is_none() {
                    match e.deadline {
                        Some(d) if d <= now => term(e, KillReason::Timeout, now),
                        Some(d) => next = Some(next.map_or(d, |n| n.min(d))),
                        None => {}
                    }
                }
                match e.kill_at {
                    Some(k) if k <= now => {
                        family::signal(e.pgid, e.seq, Signal::SIGKILL);
                        e.kill_at = None;
                    }
                    Some(k) => next = Some(next.map_or(k, |n| n.min(k))),
                    None => {}
                }
            }
            st = match next {
                Some(t) => {
                    let wait = t.saturating_duration_since(Instant::now());
                    self.wake
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

fn term(e: &mut Entry, why: KillReason, now: Instant) {
    family::signal(e.pgid, e.seq, Signal::SIGTERM);
    e.killed = Some((why, now));
    e.kill_at = Some(now + GRACE);
}
