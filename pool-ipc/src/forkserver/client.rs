//! The parent's side: one connection to the running server, shared by every Forkserver pool of
//! the process, with one thread that reads the server's replies and exit reports (steps 3–5 of
//! the protocol in [`super`]).

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use crate::entry::WorkerMain;
use crate::fnid::FnId;
use crate::process::{ExitReason, Reaper, WorkerProcess};

use super::socket::{self, Reply, Request};

type Launched = Result<(libc::pid_t, OwnedFd), String>;

/// Why a launch failed.
#[derive(Debug)]
pub(crate) enum LaunchError {
    /// The request could not be sent: the server is gone, and a new one may do.
    Unreachable(io::Error),
    /// The server got the request and refused it, or died before answering.
    Failed(io::Error),
}

impl LaunchError {
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            LaunchError::Unreachable(e) | LaunchError::Failed(e) => e,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Launch requests waiting for their reply.
    pending: HashMap<u64, mpsc::Sender<Launched>>,
    /// Exit statuses reported by the server, until their worker's handle takes them.
    exits: HashMap<libc::pid_t, i32>,
    /// Workers whose handle is gone: their report is dropped when it comes.
    forgotten: HashSet<libc::pid_t>,
    /// Why the server is gone, once it is.
    dead: Option<String>,
}

/// A running server and the parent's end of its socket.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The process that owns this connection (a forked child of it must start its own).
    owner: libc::pid_t,
    server_pid: libc::pid_t,
    sock: OwnedFd,
    next_request: AtomicU64,
    state: Mutex<State>,
    changed: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Connection {
    /// Takes over a started `server` and its socket; starts the thread that reads it.
    pub(crate) fn new(sock: OwnedFd, server: WorkerProcess) -> io::Result<Arc<Self>> {
        let conn = Arc::new(Connection {
            // SAFETY: getpid has no preconditions.
            owner: unsafe { libc::getpid() },
            server_pid: server.pid(),
            sock,
            next_request: AtomicU64::new(1),
            state: Mutex::default(),
            changed: Condvar::new(),
        });
        let reader = conn.clone();
        std::thread::Builder::new()
            .name("pool-forkserver".into())
            .spawn(move || reader.read(server))?;
        Ok(conn)
    }

    pub(crate) fn server_pid(&self) -> libc::pid_t {
        self.server_pid
    }

    /// Whether this process can use the connection: it owns it and the server is alive.
    pub(crate) fn usable(&self) -> bool {
        // SAFETY: getpid has no preconditions.
        self.owner == unsafe { libc::getpid() } && lock(&self.state).dead.is_none()
    }

    /// The reading thread: dispatches replies until the server is gone, then says why.
    fn read(self: Arc<Self>, mut server: WorkerProcess) {
        while let Ok(Some((reply, mut fds))) = socket::recv::<Reply>(self.sock.as_fd()) {
            let mut st = lock(&self.state);
            match reply {
                Reply::Launched { request, pid } => {
                    let sent = match (st.pending.remove(&request), fds.pop()) {
                        (Some(tx), Some(pidfd)) => tx.send(Ok((pid, pidfd))).is_ok(),
                        (Some(tx), None) => {
                            let _ = tx.send(Err("the forkserver sent no pidfd".into()));
                            false
                        }
                        (None, _) => false,
                    };
                    if !sent {
                        // Nobody waits for this worker: stop it (the server reaps it).
                        // SAFETY: kill(2) with a pid the server just forked and has not reaped.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
                Reply::Refused { request, error } => {
                    if let Some(tx) = st.pending.remove(&request) {
                        let _ = tx.send(Err(error));
                    }
                }
                Reply::Exited { pid, status } => {
                    if !st.forgotten.remove(&pid) {
                        st.exits.insert(pid, status);
                        self.changed.notify_all();
                    }
                }
            }
        }
        // The socket ended: the server died (or closed it, which it only does to exit).
        let how = match server.wait_timeout(Duration::from_secs(1)) {
            Ok(Some(r)) => r.to_string(),
            _ => {
                let _ = server.kill(libc::SIGKILL);
                let _ = server.wait();
                "stopped answering".to_string()
            }
        };
        let why = format!("the forkserver (pid {}) ended ({how})", self.server_pid);
        let mut st = lock(&self.state);
        for (_, tx) in st.pending.drain() {
            let _ = tx.send(Err(why.clone()));
        }
        st.dead = Some(why);
        self.changed.notify_all();
    }

    /// Asks the server for a worker running `entry` with `fds`.
    pub(crate) fn launch(
        self: &Arc<Self>,
        entry: WorkerMain,
        worker_id: u64,
        payload: Vec<u8>,
        fds: &[BorrowedFd<'_>],
    ) -> Result<WorkerProcess, LaunchError> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        {
            let mut st = lock(&self.state);
            if let Some(why) = &st.dead {
                let e = io::Error::new(io::ErrorKind::BrokenPipe, why.clone());
                return Err(LaunchError::Unreachable(e));
            }
            st.pending.insert(request, tx);
        }
        let msg = Request::Launch {
            request,
            entry: FnId::from_ptr(entry as *const ()),
            worker_id,
            payload,
        };
        if let Err(e) = socket::send(self.sock.as_fd(), &msg, fds) {
            lock(&self.state).pending.remove(&request);
            let why = format!("cannot reach the forkserver (pid {}): {e}", self.server_pid);
            return Err(LaunchError::Unreachable(io::Error::new(e.kind(), why)));
        }
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the forkserver reader is gone");
        match rx.recv() {
            Ok(Ok((pid, pidfd))) => Ok(WorkerProcess::reaped_by(pid, pidfd, self.clone())),
            Ok(Err(why)) => Err(LaunchError::Failed(io::Error::other(why))),
            Err(_) => Err(LaunchError::Failed(gone())),
        }
    }
}

impl Reaper for Connection {
    fn forget(&self, pid: libc::pid_t) {
        let mut st = lock(&self.state);
        if st.exits.remove(&pid).is_none() && st.dead.is_none() {
            st.forgotten.insert(pid);
        }
    }

    fn exit_of(&self, pid: libc::pid_t, timeout: Duration) -> io::Result<Option<ExitReason>> {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.state);
        loop {
            if let Some(status) = st.exits.remove(&pid) {
                return Ok(Some(ExitReason::from_wait_status(status)));
            }
            if let Some(why) = &st.dead {
                return Err(io::Error::other(format!(
                    "{why} before it reported process {pid}, taking its workers with it"
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
