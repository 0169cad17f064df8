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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

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
    epoll: Arc<OwnedFd>,
    stop: OwnedFd,
    watched: Watched,
    thread: Option<JoinHandle<()>>,
}

fn cvt(r: i32) -> io::Result<i32> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn epoll_add(epoll: &OwnedFd, fd: i32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: valid epoll fd, valid fd, valid event pointer.
    cvt(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
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
        // SAFETY: epoll_create1 returns a new fd or -1.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fresh fd we own.
        let epoll = Arc::new(unsafe { OwnedFd::from_raw_fd(ep) });
        // SAFETY: eventfd returns a new fd or -1.
        let ev = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
        // SAFETY: fresh fd we own.
        let stop = unsafe { OwnedFd::from_raw_fd(ev) };
        epoll_add(&epoll, stop.as_raw_fd(), STOP)?;
        let watched: Watched = Arc::default();
        let (ep2, w2) = (Arc::clone(&epoll), Arc::clone(&watched));
        let thread = std::thread::Builder::new()
            .name("pool-ipc-death-watcher".into())
            .spawn(move || {
                let mut events = [libc::epoll_event { events: 0, u64: 0 }; 32];
                loop {
                    // SAFETY: valid epoll fd and an events buffer of the stated length.
                    let n =
                        unsafe { libc::epoll_wait(ep2.as_raw_fd(), events.as_mut_ptr(), 32, -1) };
                    if n < 0 {
                        if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                            continue;
                        }
                        return;
                    }
                    for ev in &events[..n as usize] {
                        let token = ev.u64;
                        if token == STOP {
                            return;
                        }
                        let entry = w2.lock().expect("watcher map poisoned").remove(&token);
                        if let Some((fd, pid)) = entry {
                            // SAFETY: removing a registered fd; the event pointer may be null for DEL.
                            unsafe {
                                libc::epoll_ctl(
                                    ep2.as_raw_fd(),
                                    libc::EPOLL_CTL_DEL,
                                    fd.as_raw_fd(),
                                    std::ptr::null_mut(),
                                )
                            };
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
        let mut map = self.watched.lock().expect("watcher map poisoned");
        if let Some((old, _)) = map.remove(&token) {
            // SAFETY: removing a registered fd.
            unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    old.as_raw_fd(),
                    std::ptr::null_mut(),
                )
            };
        }
        epoll_add(&self.epoll, fd.as_raw_fd(), token)?;
        map.insert(token, (fd, worker.pid()));
        Ok(())
    }

    /// Stops watching `token`. Returns false if it was not watched (or its death was reported).
    pub fn unwatch(&self, token: u64) -> bool {
        let entry = self
            .watched
            .lock()
            .expect("watcher map poisoned")
            .remove(&token);
        match entry {
            Some((fd, _)) => {
                // SAFETY: removing a registered fd.
                unsafe {
                    libc::epoll_ctl(
                        self.epoll.as_raw_fd(),
                        libc::EPOLL_CTL_DEL,
                        fd.as_raw_fd(),
                        std::ptr::null_mut(),
                    )
                };
                true
            }
            None => false,
        }
    }

    /// How many workers are watched.
    pub fn len(&self) -> usize {
        self.watched.lock().expect("watcher map poisoned").len()
    }

    /// Whether no worker is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for DeathWatcher {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
