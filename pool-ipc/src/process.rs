//! A handle on a worker process: pid + pidfd, signals, reaping, decoded exit reasons.
//!
//! Why pidfds: a pidfd names *this* process, not a pid number that may be recycled, so `kill`
//! never hits a stranger; and it becomes readable the moment the process dies, so death is
//! noticed by `poll`/`epoll` within microseconds instead of by a periodic `waitpid` sweep.
//! See [`crate::watcher::DeathWatcher`] for watching many at once.
//!
//! No zombies: a [`WorkerProcess`] reaps its child in [`WorkerProcess::wait`] and friends; when it
//! is dropped unreaped it sends `SIGKILL` and reaps (this blocks only for the kernel to tear the
//! process down). The parent must not set `SIGCHLD` to `SIG_IGN` (children would reap
//! themselves and exit reasons would be lost); the start functions refuse to run if it does.
//!
//! A worker may also be another process's child (a forkserver's, see [`crate::forkserver`]):
//! then its pidfd still names it, signals it and tells its death, and a [`Reaper`] (the process
//! that reaps it) says how it ended.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

/// Exit code a worker uses when it finds its parent already gone at start-up.
pub const EXIT_ORPHANED: i32 = 124;
/// Exit code of a worker whose closure panicked (the same as a Rust `main` that panics).
pub const EXIT_PANICKED: i32 = 101;

/// Why a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// It called `exit`/`_exit` (or returned) with this code.
    Exited {
        /// The exit code, 0..=255.
        code: i32,
    },
    /// A signal killed it.
    Signaled {
        /// The signal number (`libc::SIGSEGV`, ...).
        signal: i32,
        /// Whether the kernel wrote a core dump.
        core_dumped: bool,
    },
}

impl ExitReason {
    /// Decodes a `waitpid` status.
    pub fn from_wait_status(status: i32) -> Self {
        if libc::WIFSIGNALED(status) {
            Self::Signaled {
                signal: libc::WTERMSIG(status),
                core_dumped: libc::WCOREDUMP(status),
            }
        } else {
            Self::Exited {
                code: libc::WEXITSTATUS(status),
            }
        }
    }

    /// Exited with code 0.
    pub fn success(&self) -> bool {
        matches!(self, Self::Exited { code: 0 })
    }

    /// The exit code, if it exited.
    pub fn code(&self) -> Option<i32> {
        match *self {
            Self::Exited { code } => Some(code),
            Self::Signaled { .. } => None,
        }
    }

    /// The killing signal, if a signal killed it.
    pub fn signal(&self) -> Option<i32> {
        match *self {
            Self::Signaled { signal, .. } => Some(signal),
            Self::Exited { .. } => None,
        }
    }

    /// The killing signal's name ("SIGSEGV"), if a signal killed it.
    pub fn signal_name(&self) -> Option<&'static str> {
        self.signal().map(signal_name)
    }
}

/// The conventional name of a signal number ("SIGKILL"), or "SIG?" when unknown.
pub fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal).map_or("SIG?", |s| s.as_str())
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exited { code } => {
                write!(f, "exited with code {code}")?;
                if code == crate::entry::EXIT_NO_ENTRY {
                    write!(
                        f,
                        " (its program built a pool without running the entry hook: {})",
                        crate::entry::ADD_THE_HOOK
                    )?;
                }
                Ok(())
            }
            Self::Signaled {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by signal {signal} ({})", signal_name(signal))?;
                if core_dumped {
                    f.write_str(", core dumped")?;
                }
                Ok(())
            }
        }
    }
}

/// Reports how workers that are not this process's children ended: their parent reaps them.
pub trait Reaper: Send + Sync + fmt::Debug {
    /// How `pid` ended, waiting up to `timeout` for the report; `None` if none came in time. An
    /// error means no report will ever come (the reaper is gone).
    fn exit_of(&self, pid: libc::pid_t, timeout: Duration) -> io::Result<Option<ExitReason>>;
    /// Nobody will ask how `pid` ended: drop its report, now or when it comes.
    fn forget(&self, pid: libc::pid_t);
}

/// How long a blocking wait trusts a [`Reaper`] to report a death it has already seen.
const REAPER_PATIENCE: Duration = Duration::from_secs(10);

/// A worker process this process started and must reap (or have reaped, see [`Reaper`]).
#[derive(Debug)]
#[must_use = "dropping a WorkerProcess kills and reaps the worker"]
pub struct WorkerProcess {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    exit: Option<ExitReason>,
    /// `None`: our own child, reaped with `waitpid`.
    reaper: Option<Arc<dyn Reaper>>,
    /// Its peak resident set size in bytes, as the kernel reported it when reaped.
    peak_rss: Option<u64>,
    /// Runs once the process is reaped (see [`WorkerProcess::on_exit`]).
    on_exit: Option<OnExit>,
}

/// What to do once a worker is gone for good.
struct OnExit(Box<dyn FnOnce() + Send + Sync>);

impl fmt::Debug for OnExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnExit")
    }
}

/// Opens a pidfd for `pid` (Linux 5.3+).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh fd (it is created close-on-exec) that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Fails when `SIGCHLD` is ignored, since the kernel would then reap workers behind our back.
pub(crate) fn check_sigchld() -> io::Result<()> {
    // SAFETY: querying (null new action) the disposition into a zeroed sigaction is harmless.
    let old = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) < 0 {
            return Err(io::Error::last_os_error());
        }
        old
    };
    if old.sa_sigaction == libc::SIG_IGN || old.sa_flags & libc::SA_NOCLDWAIT != 0 {
        return Err(io::Error::other(
            "SIGCHLD is ignored: worker exit reasons cannot be collected",
        ));
    }
    Ok(())
}

impl WorkerProcess {
    /// Takes charge of an unreaped child `pid` of this process. Reaping it is now this handle's
    /// job: nothing else in the process may `wait` for it.
    pub fn from_child_pid(pid: libc::pid_t) -> io::Result<Self> {
        match pidfd_open(pid) {
            Ok(pidfd) => Ok(Self {
                pid,
                pidfd,
                exit: None,
                reaper: None,
                peak_rss: None,
                on_exit: None,
            }),
            Err(e) => {
                // Without a pidfd we cannot manage it: kill it and reap it, so it can neither run
                // unsupervised nor linger as a zombie.
                let mut st = 0;
                // SAFETY: signalling and reaping our own unreaped child (the pid cannot have been
                // recycled while it is unreaped); valid status pointer.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut st, 0);
                }
                Err(e)
            }
        }
    }

    /// Takes charge of `pid`, another process's child that `reaper` reaps; `pidfd` must have
    /// been opened while `pid` could not have been reused (e.g. by its parent, before reaping).
    pub fn reaped_by(pid: libc::pid_t, pidfd: OwnedFd, reaper: Arc<dyn Reaper>) -> Self {
        Self {
            pid,
            pidfd,
            exit: None,
            reaper: Some(reaper),
            // The forkserver reaps it: its peak memory is not reported here.
            peak_rss: None,
            on_exit: None,
        }
    }

    /// Runs `f` once the process is reaped here (a wait that saw it end, or the drop that
    /// kills and reaps it; at once if it was reaped already), when nothing it did can change
    /// any more; never, if its reaper is another process.
    pub fn on_exit(&mut self, f: impl FnOnce() + Send + Sync + 'static) {
        self.on_exit = Some(OnExit(Box::new(f)));
        self.after_exit();
    }

    /// Whether another process reaps this one (see [`Reaper`]).
    pub fn reaped_elsewhere(&self) -> bool {
        self.reaper.is_some()
    }

    /// The worker's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// The pidfd: readable once the process died. Register it with poll/epoll if you like.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The exit reason, once reaped.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.exit
    }

    /// Once reaped: the most resident memory the process ever had, in bytes (the kernel's
    /// high-water mark, `ru_maxrss`, taken as it died; for a forked process it includes the
    /// pages it shared with its parent).
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        self.peak_rss
    }

    /// Sends `signal` (e.g. `libc::SIGKILL`) through the pidfd. Sending to a process that already
    /// died (but is not yet reaped) is not an error.
    pub fn kill(&self, signal: i32) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        // SAFETY: pidfd_send_signal(pidfd, sig, info=NULL, flags=0) has no memory effects.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal,
                std::ptr::null::<u8>(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether the process has died (reaped or not), without blocking.
    pub fn has_exited(&self) -> bool {
        self.exit.is_some()
            || poll_readable(self.pidfd.as_fd(), Some(Duration::ZERO)).unwrap_or(false)
    }

    /// Reaps the process if it died; `None` if it is still running.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitReason>> {
        self.reap(libc::WNOHANG)
    }

    /// Waits for the process to die and reaps it (another process's child: for its death,
    /// then at most a few seconds for its reaper's report).
    pub fn wait(&mut self) -> io::Result<ExitReason> {
        if self.reaper.is_some() {
            poll_readable(self.pidfd.as_fd(), None)?;
        }
        self.reap(0)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no report of how process {} ended", self.pid),
            )
        })
    }

    /// Waits up to `timeout` for the process to die (event-driven, through the pidfd).
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitReason>> {
        if self.exit.is_some() {
            return Ok(self.exit);
        }
        if poll_readable(self.pidfd.as_fd(), Some(timeout))? {
            return self.wait().map(Some);
        }
        Ok(None)
    }

    fn after_exit(&mut self) {
        if self.exit.is_some()
            && let Some(OnExit(f)) = self.on_exit.take()
        {
            f();
        }
    }

    fn reap(&mut self, flags: i32) -> io::Result<Option<ExitReason>> {
        if self.exit.is_some() {
            return Ok(self.exit);
        }
        if let Some(reaper) = &self.reaper {
            let patience = if flags & libc::WNOHANG != 0 {
                Duration::ZERO
            } else {
                REAPER_PATIENCE
            };
            self.exit = reaper.exit_of(self.pid, patience)?;
            self.after_exit();
            return Ok(self.exit);
        }
        loop {
            let mut st = 0;
            // SAFETY: rusage is plain data; zeroed is a valid value.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: wait4 on our own unreaped child with valid status and rusage pointers.
            let r = unsafe { libc::wait4(self.pid, &mut st, flags, &mut usage) };
            if r == self.pid {
                self.exit = Some(ExitReason::from_wait_status(st));
                // Linux reports ru_maxrss in KiB.
                self.peak_rss = u64::try_from(usage.ru_maxrss).ok().map(|kib| kib << 10);
                self.after_exit();
                return Ok(self.exit);
            }
            if r == 0 {
                return Ok(None);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.kill(libc::SIGKILL);
            match &self.reaper {
                // Its reaper reaps it: nothing to wait for here.
                Some(reaper) => reaper.forget(self.pid),
                None => {
                    let _ = self.wait();
                }
            }
        }
    }
}

/// Polls `fd` for readability for up to `timeout` (`None` = forever). Retries on EINTR with the
/// full timeout (good enough for the short waits used here).
pub(crate) fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let ms = timeout.map_or(-1, |d| {
        i32::try_from(d.as_millis().max(u128::from(!d.is_zero()))).unwrap_or(i32::MAX)
    });
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, count 1.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r >= 0 {
            return Ok(r > 0);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}
