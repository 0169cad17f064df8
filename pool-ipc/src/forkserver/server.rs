//! The forkserver process: one thread, one loop over its control socket and the pidfds of its
//! workers (steps 2–4 of the protocol in [`super`]).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use crate::child::{ChildOptions, setup_in_child};
use crate::entry::{WorkerBoot, WorkerMain};
use crate::process::{EXIT_ORPHANED, EXIT_PANICKED, pidfd_open};

use super::socket::{self, MAX_FDS, Reply, Request};

/// How often the server checks that its parent is still there, besides its death signal and
/// the end of the socket.
const PARENT_CHECK: Duration = Duration::from_secs(1);

struct Worker {
    pid: libc::pid_t,
    pidfd: OwnedFd,
}

/// Serves launch requests on `sock` until the parent `parent` is gone; returns the exit code.
/// Must run single-threaded: it forks.
pub(crate) fn serve(sock: OwnedFd, parent: libc::pid_t) -> i32 {
    close_cloexec_fds(sock.as_raw_fd());
    let mut workers: Vec<Worker> = Vec::new();
    loop {
        let mut polled: Vec<libc::pollfd> = std::iter::once(sock.as_raw_fd())
            .chain(workers.iter().map(|w| w.pidfd.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: a valid array of pollfds and its length.
        let n = unsafe {
            libc::poll(
                polled.as_mut_ptr(),
                polled.len() as libc::nfds_t,
                PARENT_CHECK.as_millis() as i32,
            )
        };
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != parent {
            return 0;
        }
        if n <= 0 {
            continue;
        }
        // Deaths first: a report never waits behind a burst of launches.
        for i in (0..workers.len()).rev() {
            if polled[i + 1].revents != 0 {
                let w = workers.swap_remove(i);
                if report_exit(&sock, w).is_err() {
                    return 0;
                }
            }
        }
        if polled[0].revents != 0 {
            match socket::recv::<Request>(sock.as_fd()) {
                Ok(Some((request, fds))) => {
                    if launch(&sock, &mut workers, request, fds).is_err() {
                        return 0;
                    }
                }
                // The parent closed its end: it is gone or exiting.
                Ok(None) | Err(_) => return 0,
            }
        }
    }
}

/// Closes the fds that an `exec` would have closed but the fork kept (close-on-exec ones),
/// except `keep`: the server must not hold the program's pipes and sockets open (whoever reads
/// them would never see their end), and its workers get what a spawned worker would get.
fn close_cloexec_fds(keep: RawFd) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|&fd| fd > 2 && fd != keep) {
        // SAFETY: fcntl F_GETFD on an integer has no memory effects (EBADF for the directory's
        // own fd, closed by now). Closing the fds that `exec` would close: this process only
        // runs the server loop from here on, and the owners of these fds in its copy of the
        // program's memory never run again (the server `_exit`s).
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
                libc::close(fd);
            }
        }
    }
}

/// Reaps a worker whose pidfd became readable and tells the parent how it ended.
fn report_exit(sock: &OwnedFd, w: Worker) -> io::Result<()> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(w.pid, &mut status, 0) };
        if r == w.pid {
            break;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Ok(());
        }
    }
    socket::send(sock.as_fd(), &Reply::Exited { pid: w.pid, status }, &[])
}

fn launch(
    sock: &OwnedFd,
    workers: &mut Vec<Worker>,
    request: Request,
    fds: Vec<OwnedFd>,
) -> io::Result<()> {
    let Request::Launch {
        request,
        entry,
        worker_id,
        payload,
    } = request;
    let refuse =
        |error: String| socket::send(sock.as_fd(), &Reply::Refused { request, error }, &[]);
    if fds.len() > MAX_FDS {
        return refuse(format!("{} fds passed, at most {MAX_FDS}", fds.len()));
    }
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    // SAFETY: this process is single-threaded (see `serve`), so the child may do anything the
    // parent could. It never returns into the loop: it runs the worker and `_exit`s.
    match unsafe { libc::fork() } {
        -1 => refuse(format!(
            "the forkserver cannot fork: {}",
            io::Error::last_os_error()
        )),
        0 => {
            if !setup_in_child(me, ChildOptions::default()) {
                // SAFETY: _exit is always safe to call; it does not return.
                unsafe { libc::_exit(EXIT_ORPHANED) };
            }
            // The server's own fds are not the worker's business.
            drop(workers.drain(..).map(|w| w.pidfd).collect::<Vec<_>>());
            // SAFETY: closing the socket fd, owned by the server's frames this child never
            // returns to (it `_exit`s below), so nothing uses or closes it again.
            unsafe { libc::close(sock.as_raw_fd()) };
            // SAFETY: the parent made `entry` from a `WorkerMain` of this very binary (this
            // server is a fork of it, or a re-execution checked by `entry::run_if_worker`).
            let main = unsafe { std::mem::transmute::<*const (), WorkerMain>(entry.to_ptr()) };
            let boot = WorkerBoot::inherited(worker_id, payload, fds);
            let code = catch_unwind(AssertUnwindSafe(|| main(boot))).unwrap_or(EXIT_PANICKED);
            // SAFETY: no atexit handlers, no unwinding into the server's frames.
            unsafe { libc::_exit(code) }
        }
        pid => {
            drop(fds);
            // Opened before the child can be reaped (only this loop reaps), so it names it.
            let pidfd = match pidfd_open(pid) {
                Ok(fd) => fd,
                Err(e) => {
                    // SAFETY: kill and reap our own unreaped child; valid status pointer.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, &mut 0, 0);
                    }
                    return refuse(format!("cannot open a pidfd for the worker: {e}"));
                }
            };
            let sent = socket::send(
                sock.as_fd(),
                &Reply::Launched { request, pid },
                &[pidfd.as_fd()],
            );
            workers.push(Worker { pid, pidfd });
            sent
        }
    }
}
