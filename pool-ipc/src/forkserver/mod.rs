//! The `forkserver` start method: workers forked from a small server process that was started
//! while the program was still small and single-threaded.
//!
//! Why: `fork` copies the parent's page tables (start-up grows with the parent's resident
//! memory) and only the forking thread survives in the child (a lock another thread held stays
//! held). `spawn` avoids both but pays an `exec` and a run of `main` per worker. A forkserver
//! pays that once: workers are forks of a process that never grows and never runs a second
//! thread, so they start in about the time of a fork of a small process and inherit none of
//! the parent's later threads, locks or memory.
//!
//! Protocol (one `SOCK_SEQPACKET` socketpair, see `socket.rs`):
//! 1. **Start.** `pool::entry()` ([`start_at_entry`]) forks the server from the main thread,
//!    before `main` proper runs. Without it, the first Forkserver pool starts one by forking
//!    the parent as it is then (losing the guarantees above: documented). The server sets
//!    `PR_SET_PDEATHSIG` = `SIGKILL`, checks `getppid()`, and serves.
//! 2. **Launch.** The parent creates the worker's shared-memory link itself and sends
//!    `Launch { request, entry, worker_id, payload }` with the link's and the counters' fds
//!    (`SCM_RIGHTS`). The server forks; the child sets its own death signal (the server's
//!    death kills it), closes the server's fds and runs `entry` (the spawned worker's `main`,
//!    by [`FnId`](crate::fnid::FnId)) with those fds, then `_exit`s. The server opens the
//!    child's pidfd *before* it could reap it and sends `Launched { request, pid }` with it.
//! 3. **Watch.** The parent watches, signals and kills the worker through that pidfd, exactly
//!    as its own children (readable at death, never a recycled pid).
//! 4. **Reap.** Workers are the server's children: it polls their pidfds, reaps each at death
//!    and sends `Exited { pid, status }`. The parent's reading thread keeps the status until the
//!    worker's [`WorkerProcess`] asks ([`crate::process::Reaper`]), so exit codes, signals and
//!    OOM verdicts read as under Fork and Spawn. No zombies: the server reaps its children,
//!    the parent reaps the server.
//! 5. **Server death.** End of the socket: the reading thread reaps the server, and every
//!    waiting launch and unreported exit gets "the forkserver (pid N) ended (killed by signal
//!    9 (SIGKILL))"; its workers die with it (their death signal), so the call in flight fails
//!    with that reason. The next launch starts a new server: by re-executing this binary (as
//!    Spawn does) when `pool::entry()` ran, so the new server is small and clean again;
//!    otherwise by forking the parent as it is (documented loss of the guarantees).
//! 6. **Parent death.** The server exits at the end of the socket, on its death signal, or when
//!    `getppid()` changes (checked every second); its workers die with it.
//!
//! Servers are started from one long-lived thread (or the main thread at entry), since the
//! death signal is tied to the thread that forked. One server serves every Forkserver pool of
//! the process; a forked child of the process (a nested pool in a Fork worker) starts its own.

mod client;
mod server;
mod socket;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, mpsc};

use crate::child::{ChildOptions, setup_in_child};
use crate::entry::{EXIT_BAD_BOOT, WorkerBoot, WorkerMain};
use crate::process::{EXIT_ORPHANED, WorkerProcess};
use crate::spawn::SpawnCommand;

use self::client::{Connection, LaunchError};

enum Server {
    /// None started yet, or the last one is gone.
    None,
    /// Forked at entry; its reading thread starts at first use (no thread at entry).
    Forked {
        owner: libc::pid_t,
        sock: OwnedFd,
        process: WorkerProcess,
    },
    Running(Arc<Connection>),
}

static SERVER: Mutex<Server> = Mutex::new(Server::None);
/// The process that called [`start_at_entry`]: it can re-execute itself as a server.
static ENTRY_PROCESS: Mutex<Option<libc::pid_t>> = Mutex::new(None);

fn my_pid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Starts the server; for `pool::entry()`, while the process is single-threaded. Does nothing
/// if this process already started one. Failing here is not fatal: the first Forkserver pool
/// tries again and reports the error.
pub fn start_at_entry() {
    {
        let mut entry = ENTRY_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        if *entry == Some(my_pid()) {
            return;
        }
        *entry = Some(my_pid());
    }
    if crate::process::check_sigchld().is_err() {
        return;
    }
    let Ok((parent_end, server_end)) = socket::pair() else {
        return;
    };
    let parent = my_pid();
    // SAFETY: called from `pool::entry()`, before the program starts threads; the child runs
    // only the server loop and `_exit`s.
    match unsafe { libc::fork() } {
        -1 => {}
        0 => server_child(parent, parent_end, server_end),
        pid => {
            drop(server_end);
            if let Ok(process) = WorkerProcess::from_child_pid(pid) {
                *SERVER.lock().unwrap_or_else(|e| e.into_inner()) = Server::Forked {
                    owner: parent,
                    sock: parent_end,
                    process,
                };
            }
        }
    }
}

/// The forked server's life: set-up, serve, `_exit`.
fn server_child(parent: libc::pid_t, parent_end: OwnedFd, server_end: OwnedFd) -> ! {
    let code = if setup_in_child(parent, ChildOptions::default()) {
        drop(parent_end);
        server::serve(server_end, parent)
    } else {
        EXIT_ORPHANED
    };
    // SAFETY: no atexit handlers, no unwinding into the parent's frames.
    unsafe { libc::_exit(code) }
}

/// The `main` of a re-executed server (through [`crate::entry::run_if_worker`]).
fn reexec_main(mut boot: WorkerBoot) -> i32 {
    let Some(sock) = boot.take_fd(0) else {
        eprintln!("pool forkserver: no socket passed");
        return EXIT_BAD_BOOT;
    };
    // SAFETY: getppid has no preconditions; `entry` checked it is the pool's process.
    server::serve(sock, unsafe { libc::getppid() })
}

/// The process id of the running server, if one runs for this process.
pub fn server_pid() -> Option<libc::pid_t> {
    match &*SERVER.lock().unwrap_or_else(|e| e.into_inner()) {
        Server::Forked { owner, process, .. } if *owner == my_pid() => Some(process.pid()),
        Server::Running(c) if c.usable() => Some(c.server_pid()),
        _ => None,
    }
}

/// The connection to a live server, started if needed.
fn connection() -> io::Result<Arc<Connection>> {
    let mut slot = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Server::Running(c) = &*slot
        && c.usable()
    {
        return Ok(c.clone());
    }
    let conn = match std::mem::replace(&mut *slot, Server::None) {
        Server::Forked {
            owner,
            sock,
            process,
        } if owner == my_pid() => Connection::new(sock, process)?,
        // A server inherited from the process this one was forked from: not ours to use.
        Server::Forked { sock, process, .. } => {
            std::mem::forget(process);
            drop(sock);
            start_new()?
        }
        _ => start_new()?,
    };
    *slot = Server::Running(conn.clone());
    Ok(conn)
}

/// Forgets `conn` if it is still the current one (its server stopped answering).
fn retire(conn: &Arc<Connection>) {
    let mut slot = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Server::Running(c) = &*slot
        && Arc::ptr_eq(c, conn)
    {
        *slot = Server::None;
    }
}

/// Starts a server from the long-lived starter thread: re-executed when `pool::entry()` ran in
/// this process, else forked from the process as it is.
fn start_new() -> io::Result<Arc<Connection>> {
    let (parent_end, server_end) = socket::pair()?;
    let parent_raw = parent_end.as_raw_fd();
    let reexec = *ENTRY_PROCESS.lock().unwrap_or_else(|e| e.into_inner()) == Some(my_pid());
    let process = on_starter_thread(move || {
        if reexec {
            SpawnCommand::new(reexec_main)
                .pass_fd(server_end.as_fd())?
                .spawn()
        } else {
            let parent = my_pid();
            // SAFETY: the child only closes the parent's end of the socket and serves (glibc's
            // malloc is usable after a fork). Forking the process as it is, in a program that
            // did not call `pool::entry()`, is the documented fallback.
            unsafe {
                crate::fork::fork_worker(ChildOptions::default(), move || {
                    libc::close(parent_raw);
                    server::serve(server_end, parent)
                })
            }
        }
        // Our copy of the server's end closes here, in every case.
    })??;
    Connection::new(parent_end, process)
}

type StarterJob = Box<dyn FnOnce() + Send>;

/// The thread that starts servers: it lives as long as the process, so a server's death signal
/// (tied to the thread that forked it) fires only when the process ends.
static STARTER: Mutex<Option<(libc::pid_t, mpsc::Sender<StarterJob>)>> = Mutex::new(None);

fn on_starter_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
    let tx = {
        let mut starter = STARTER.lock().unwrap_or_else(|e| e.into_inner());
        match &*starter {
            Some((owner, tx)) if *owner == my_pid() => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::channel::<StarterJob>();
                std::thread::Builder::new()
                    .name("pool-forkserver-starter".into())
                    .spawn(move || rx.into_iter().for_each(|job| job()))?;
                *starter = Some((my_pid(), tx.clone()));
                tx
            }
        }
    };
    let (done_tx, done_rx) = mpsc::channel();
    let gone = || io::Error::other("the forkserver starter thread is gone");
    tx.send(Box::new(move || {
        let _ = done_tx.send(f());
    }))
    .map_err(|_| gone())?;
    done_rx.recv().map_err(|_| gone())
}

/// Asks the server (started if needed) for a worker that runs `entry` with `fds`, as a spawned
/// worker would (see [`crate::entry`]). A server found dead is replaced once.
pub fn launch(
    entry: WorkerMain,
    worker_id: u64,
    payload: Vec<u8>,
    fds: &[BorrowedFd<'_>],
) -> io::Result<WorkerProcess> {
    let conn = connection()?;
    match conn.launch(entry, worker_id, payload.clone(), fds) {
        Err(LaunchError::Unreachable(_)) => {
            retire(&conn);
            connection()?
                .launch(entry, worker_id, payload, fds)
                .map_err(LaunchError::into_io)
        }
        r => r.map_err(LaunchError::into_io),
    }
}
