//! The `spawn` start method: re-execute the current binary as a worker.
//!
//! Why: a fresh process has none of the parent's threads, locks or runtime state, so it is safe
//! whatever the parent does (tokio, rayon, the pool's own threads), at the price of a start-up
//! (exec + the program's `main` up to [`crate::entry::run_if_worker`]) and of sending what the
//! worker needs explicitly: shared regions go as inherited fds, the entry function as a
//! [`FnId`].
//!
//! The worker is started by `posix_spawn`, a `vfork`-like clone that copies nothing of the
//! parent's memory, so a spawn costs the same from a parent of 10 MiB or 10 GiB (a `fork`
//! copies the page tables of all of it first). fds are duplicated close-on-exec in the parent
//! and made inheritable only in the child (a `dup2` onto itself, which clears close-on-exec),
//! so workers started concurrently by other threads never receive each other's fds. The spawn
//! sets the signal mask and dispositions; the worker arms its death signal itself, first thing
//! after the exec (see [`crate::child`]).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};

use crate::child::{ChildOptions, spawn_signals};
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
            ignore_sigint: self.opts.ignore_sigint,
        };
        let program = self
            .program
            .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
        let args = self
            .args
            .unwrap_or_else(|| std::env::args_os().skip(1).collect());
        let argv: Vec<CString> = std::iter::once(program.as_os_str())
            .chain(args.iter().map(OsString::as_os_str))
            .map(c_string)
            .collect::<io::Result<_>>()?;
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| k != ENV_BOOT && !self.envs.iter().any(|(e, _)| e == k))
            .collect();
        env.extend(self.envs);
        env.push((ENV_BOOT.into(), wire.encode().into()));
        let envp: Vec<CString> = env
            .iter()
            .map(|(k, v)| c_string(&[k.as_os_str(), v.as_os_str()].join(OsStr::new("="))))
            .collect::<io::Result<_>>()?;
        let mut actions = PosixSpawnFileActions::init()?;
        for &fd in &raw {
            actions.add_dup2(fd, fd)?;
        }
        if let Some(fd) = &self.stderr {
            actions.add_dup2(fd.as_raw_fd(), 2)?;
        }
        let (mask, defaults) = spawn_signals(self.opts);
        let mut attr = PosixSpawnAttr::init()?;
        attr.set_flags(
            PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
        )?;
        attr.set_sigmask(&mask)?;
        attr.set_sigdefault(&defaults)?;
        let pid = posix_spawn(program.as_os_str(), &actions, &attr, &argv, &envp)?;
        WorkerProcess::from_child_pid(pid.as_raw())
        // `self.fds` and `self.stderr` (the parent's duplicates) close here.
    }
}

/// `s` as a C string; an argument or variable with a NUL byte cannot be passed to `exec`.
fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} has a NUL byte: it cannot be passed to a spawned worker"),
        )
    })
}
