//! The `spawn` start method: re-execute the current binary as a worker.
//!
//! Why: a fresh process has none of the parent's threads, locks or runtime state, so it is safe
//! whatever the parent does (tokio, rayon, the pool's own threads), at the price of a start-up
//! (exec + the program's `main` up to [`crate::entry::run_if_worker`]) and of sending what the
//! worker needs explicitly: shared regions go as inherited fds, the entry function as a
//! [`FnId`].
//!
//! fds are duplicated close-on-exec in the parent and made inheritable only in the child, between
//! its fork and its exec, so workers started concurrently by other threads never receive each
//! other's fds. The child also gets the worker set-up of [`crate::child`] (death signal, signal
//! mask and dispositions) before the exec; both survive `execve`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::child::{ChildOptions, setup_in_child};
use crate::entry::{BootWire, ENV_BOOT, WorkerMain};
use crate::fnid::{ExeId, FnId};
use crate::process::{WorkerProcess, check_sigchld};

/// How to start one spawned worker. Build it, then call [`SpawnCommand::spawn`].
#[derive(Debug)]
#[must_use = "a SpawnCommand does nothing until spawn() is called"]
pub struct SpawnCommand {
    entry: WorkerMain,
    worker_id: u64,
    fds: Vec<OwnedFd>,
    payload: Vec<u8>,
    args: Option<Vec<OsString>>,
    program: Option<PathBuf>,
    envs: Vec<(OsString, OsString)>,
    opts: ChildOptions,
    stderr: Option<OwnedFd>,
}

impl SpawnCommand {
    /// A worker that will run `entry` (a plain `fn`, found again in the child by its offset).
    pub fn new(entry: WorkerMain) -> Self {
        Self {
            entry,
            worker_id: 0,
            fds: Vec::new(),
            payload: Vec::new(),
            args: None,
            program: None,
            envs: Vec::new(),
            opts: ChildOptions::default(),
            stderr: None,
        }
    }

    /// The worker's id, visible as [`WorkerBoot::worker_id`](crate::entry::WorkerBoot).
    pub fn worker_id(mut self, id: u64) -> Self {
        self.worker_id = id;
        self
    }

    /// Passes (a duplicate of) `fd`; the worker takes it with `WorkerBoot::take_fd(i)`, `i` being
    /// the order of the `pass_fd` calls.
    pub fn pass_fd(mut self, fd: impl AsFd) -> io::Result<Self> {
        self.fds.push(fd.as_fd().try_clone_to_owned()?);
        Ok(self)
    }

    /// A small payload for the worker (it travels hex-encoded in the environment, which the
    /// kernel limits to 128 KiB per variable: send bulk data over a channel instead).
    pub fn payload(mut self, bytes: Vec<u8>) -> Self {
        self.payload = bytes;
        self
    }

    /// Command-line arguments for the worker (default: this process's own, minus argv\[0\]).
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args = Some(args.into_iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// An extra environment variable for the worker.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs another program instead of `/proc/self/exe`. Only useful for tests and tools: the
    /// worker refuses to start unless it is the very same file.
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// Signal set-up of the worker.
    pub fn child_options(mut self, opts: ChildOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Where the worker's stderr goes (default: this process's).
    pub fn stderr(mut self, fd: OwnedFd) -> Self {
        self.stderr = Some(fd);
        self
    }

    /// Starts the worker.
    pub fn spawn(self) -> io::Result<WorkerProcess> {
        check_sigchld()?;
        let raw: Vec<i32> = self.fds.iter().map(AsRawFd::as_raw_fd).collect();
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        let wire = BootWire {
            worker_id: self.worker_id,
            fds: raw.clone(),
            payload: self.payload,
            entry: Some(FnId::from_ptr(self.entry as *const ())),
            parent,
            exe: ExeId::current()?,
        };
        let mut cmd = Command::new(
            self.program
                .unwrap_or_else(|| PathBuf::from("/proc/self/exe")),
        );
        match self.args {
            Some(a) => cmd.args(a),
            None => cmd.args(std::env::args_os().skip(1)),
        };
        cmd.envs(self.envs).env(ENV_BOOT, wire.encode());
        if let Some(fd) = self.stderr {
            cmd.stderr(std::process::Stdio::from(fd));
        }
        let opts = self.opts;
        // SAFETY: the hook runs between fork and exec; it only makes async-signal-safe calls
        // (prctl, getppid, sigprocmask, signal, fcntl) and reads the captured, already built
        // `raw` vector without allocating.
        unsafe {
            cmd.pre_exec(move || {
                if !setup_in_child(parent, opts) {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                for &fd in &raw {
                    crate::shm::set_cloexec(fd, false)?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        // `Child` does not reap on drop; the WorkerProcess takes over reaping.
        WorkerProcess::from_child_pid(child.id() as libc::pid_t)
        // `self.fds` (the parent's duplicates) close here.
    }
}
