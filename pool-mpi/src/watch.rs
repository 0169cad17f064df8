//! Watching a peer rank's process on this host without MPI: a pidfd says at once when it ends,
//! `/proc` says when it is stopped. Ranks on other hosts are watched by heartbeats only.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use pool_wire::fnid::ExeId;

use crate::msg::Whereabouts;

/// What a look at a peer's process says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerState {
    Running,
    /// Stopped (SIGSTOP, a debugger) for this long.
    Stopped(Duration),
    /// The process has ended.
    Gone,
}

/// A peer rank's process on this host.
#[derive(Debug)]
pub(crate) struct PeerWatch {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    stopped_since: Option<Instant>,
}

impl PeerWatch {
    /// Watches `peer` if it runs on this host as a process of this same executable (so the pid
    /// is the peer's, not a stranger's in another pid namespace).
    pub(crate) fn local(peer: &Whereabouts, me: &Whereabouts) -> Option<Self> {
        if peer.host != me.host || peer.pid == me.pid {
            return None;
        }
        let pid = libc::pid_t::try_from(peer.pid).ok()?;
        let theirs = ExeId::of_path(format!("/proc/{pid}/exe")).ok()?;
        if Some(theirs) != ExeId::current().ok() {
            return None;
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return None;
        }
        Some(PeerWatch {
            pid,
            // SAFETY: the fd was just returned by pidfd_open and is owned by nobody else.
            pidfd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
            stopped_since: None,
        })
    }

    /// Looks at the process now (a `poll` and a read of `/proc/<pid>/stat`).
    pub(crate) fn check(&mut self) -> PeerState {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        if unsafe { libc::poll(&mut pfd, 1, 0) } > 0 {
            return PeerState::Gone;
        }
        let stopped = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| {
                let state = s.rsplit_once(')')?.1.trim_start().chars().next()?;
                Some(matches!(state, 'T' | 't'))
            });
        match stopped {
            None => PeerState::Gone,
            Some(false) => {
                self.stopped_since = None;
                PeerState::Running
            }
            Some(true) => {
                let since = *self.stopped_since.get_or_insert_with(Instant::now);
                PeerState::Stopped(since.elapsed())
            }
        }
    }

    /// Kills the process (a rank judged dead must not come back with stale state, and mpirun
    /// waits for every process).
    pub(crate) fn kill(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: pidfd_send_signal on our own pidfd; no siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }
}
