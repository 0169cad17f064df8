//! Watching many workers for death at once: one thread, one epoll set of pidfds.
//!
//! Why one epoll thread: a pidfd becomes readable when its process dies, so a single
//! `epoll_wait` covers any number of workers with no polling interval; the death is reported
//! within the scheduler's wake-up latency (microseconds to a millisecond), and an idle pool costs
//! nothing. A `SIGCHLD` handler would be process-global (it collides with the user's own) and
//! would still need a thread to do real work, so it buys nothing here.
//!
//! The watcher only *reports* deaths; reaping stays with the [`WorkerProcess`] owner (call
//! [`WorkerProcess::wait`] when told), so exit reasons are never lost. The reporting callback runs
//! on the watcher thread: keep it short (send on a channel, close a ring).
//!
//! Note the watcher is a thread: start it after forking workers, or use the spawn start method,
//! if fork safety matters to you (see [`crate::fork`]).

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::process::WorkerProcess;

const STOP: u64 = u64::MAX;

/// A worker died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Death {
    /// The token given to [`DeathWatcher::watch`].
    pub token: u64,
    /// The process id that died (reap it through its [`WorkerProcess`]).
    pub pid: libc::pid_t,
}

type Watched = Arc<Mutex<HashMap<u64, (OwnedFd, libc::pid_t)>>>;

/// Reports the death of any watched worker, from one background thread.
#[derive(Debug)]
pub struct DeathWatcher {
    epoll: Arc<Epoll>,
    stop: EventFd,
    watched: Watched,
    thread: Option<JoinHandle<()>>,
}

/// The workspace's poisoning policy: the map stays consistent whatever a panicking holder did
/// (every update is one insert or remove), so a poisoned lock is taken as is.
fn lock(watched: &Watched) -> MutexGuard<'_, HashMap<u64, (OwnedFd, libc::pid_t)>> {
    watched.lock().unwrap_or_else(|e| e.into_inner())
}

fn readable(token: u64) -> EpollEvent {
    EpollEvent::new(EpollFlags::EPOLLIN, token)
}

impl DeathWatcher {
    /// Starts a watcher that sends each [`Death`] on the returned channel.
    pub fn new() -> io::Result<(Self, crossbeam_channel::Receiver<Death>)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let w = Self::with_callback(move |d| {
            let _ = tx.send(d);
        })?;
        Ok((w, rx))
    }

    /// Starts a watcher that calls `on_death` (on its thread) for each death.
    pub fn with_callback(mut on_death: impl FnMut(Death) + Send + 'static) -> io::Result<Self> {
        let epoll = Arc::new(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
        let stop = EventFd::from_flags(EfdFlags::EFD_CLOEXEC)?;
        epoll.add(&stop, readable(STOP))?;
        let watched: Watched = Arc::default();
        let (ep2, w2) = (Arc::clone(&epoll), Arc::clone(&watched));
        let thread = std::thread::Builder::new()
            .name("pool-ipc-death-watcher".into())
            .spawn(move || {
                let mut events = [EpollEvent::empty(); 32];
                loop {
                    let n = match ep2.wait(&mut events, EpollTimeout::NONE) {
                        Ok(n) => n,
                        Err(Errno::EINTR) => continue,
                        Err(_) => return,
                    };
                    for ev in &events[..n] {
                        let token = ev.data();
                        if token == STOP {
                            return;
                        }
                        let entry = lock(&w2).remove(&token);
                        if let Some((fd, pid)) = entry {
                            let _ = ep2.delete(&fd);
                            drop(fd);
                            on_death(Death { token, pid });
                        }
                    }
                }
            })?;
        Ok(Self {
            epoll,
            stop,
            watched,
            thread: Some(thread),
        })
    }

    /// Watches `worker`, reporting its death with `token` (any value but `u64::MAX`; a token in
    /// use is replaced). A worker that is already dead is reported at once.
    pub fn watch(&self, worker: &WorkerProcess, token: u64) -> io::Result<()> {
        assert_ne!(token, STOP, "token u64::MAX is reserved");
        let fd = worker.pidfd().try_clone_to_owned()?;
        let mut map = lock(&self.watched);
        if let Some((old, _)) = map.remove(&token) {
            let _ = self.epoll.delete(&old);
        }
        self.epoll.add(&fd, readable(token))?;
        map.insert(token, (fd, worker.pid()));
        Ok(())
    }

    /// Stops watching `token`. Returns false if it was not watched (or its death was reported).
    pub fn unwatch(&self, token: u64) -> bool {
        let entry = lock(&self.watched).remove(&token);
        match entry {
            Some((fd, _)) => {
                let _ = self.epoll.delete(&fd);
                true
            }
            None => false,
        }
    }

    /// How many workers are watched.
    pub fn len(&self) -> usize {
        lock(&self.watched).len()
    }

    /// Whether no worker is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for DeathWatcher {
    fn drop(&mut self) {
        // The eventfd counter cannot overflow from one write; if it failed anyway the thread
        // would never stop, so do not wait for it then.
        if self.stop.write(1).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
    }
}
