//! Running one job: spawn it in its own process group, read its stdout and stderr in this
//! (worker) thread as they come, wait for it, and kill its whole group when it was timed out or
//! aborted (see [`super::registry`]).
//!
//! The command is spawned with `std::process::Command` and `process_group(0)`, which std
//! implements with `posix_spawn` (no shell, no `fork` of our address space). No signal is
//! blocked in `pool run` (see [`super::signals`]), so jobs start with a clean signal mask.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use super::family;
use super::output::{Capture, Stream};
use super::registry::{GRACE, KillReason, Registry};

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum End {
    /// It exited with this code.
    Exit(i32),
    /// A signal we did not send ended it.
    Signal(i32),
    /// We killed it.
    Killed {
        /// Why.
        reason: KillReason,
        /// The signal that ended the leader.
        signal: i32,
    },
    /// It could not be started.
    SpawnFailed(String),
}

impl End {
    /// Exited with 0.
    pub(crate) fn success(&self) -> bool {
        *self == End::Exit(0)
    }

    /// The joblog's Exitval and Signal columns.
    pub(crate) fn exitval_signal(&self) -> (i32, i32) {
        match self {
            End::Exit(c) => (*c, 0),
            End::Signal(s) => (-1, *s),
            End::Killed { signal, .. } => (-1, *signal),
            End::SpawnFailed(_) => (127, 0),
        }
    }
}

impl End {
    /// The job's status as a shell reports it: its exit code, or 128 + the signal that ended it.
    pub(crate) fn status(&self) -> i32 {
        match self {
            End::Exit(c) => *c,
            End::Signal(s) | End::Killed { signal: s, .. } => 128 + s,
            End::SpawnFailed(_) => 127,
        }
    }

    /// How it ended, in words (for the failure summary).
    pub(crate) fn describe(&self) -> String {
        match self {
            End::Exit(c) => format!("exit {c}"),
            End::Signal(s) => format!("signal {s}"),
            End::Killed {
                reason: KillReason::Timeout,
                ..
            } => "timed out".into(),
            End::Killed { .. } => "killed".into(),
            End::SpawnFailed(_) => "could not start".into(),
        }
    }
}

/// One run of a command.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) start: SystemTime,
    pub(crate) runtime: Duration,
    pub(crate) end: End,
}

/// Where `program` is found in `$PATH`, looked up once per run instead of once per job (each
/// `execvp` would try every `$PATH` entry in turn). `None` for paths and unknown programs, which
/// are then left to `execvp`.
pub(crate) fn resolve(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') || program.is_empty() {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        if !dir.is_absolute() {
            return None; // relative entries depend on the job's directory: leave it to execvp
        }
        let p = dir.join(program);
        if std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0) {
            return Some(p);
        }
    }
    None
}

/// What to start for one attempt of a job.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Launch<'a> {
    /// Where `argv[0]` was found, when it was looked up once for the run.
    pub(crate) program: Option<&'a Path>,
    pub(crate) argv: &'a [OsString],
    /// The job number, `{#}`; also what marks its processes (see [`super::family`]).
    pub(crate) seq: u64,
    /// The job slot, `{%}` (`PARALLEL_JOBSLOT`).
    pub(crate) slot: usize,
    /// Bytes for the job's stdin (`--pipe`); `/dev/null` otherwise.
    pub(crate) stdin: Option<&'a [u8]>,
    /// `--ungroup`: the job writes straight to our stdout and stderr.
    pub(crate) ungrouped: bool,
    /// Kill the job's leader if `pool run` dies (`--joblog` runs, which `--resume` may
    /// restart: a job of a killed run must not go on beside its rerun).
    pub(crate) die_with_us: bool,
}

/// Runs a job to its end, feeding its output to `capture`. The job is over when its leader
/// exits: whatever it wrote is read, and a background child still holding the pipes is left
/// alone (as GNU parallel does) instead of keeping the slot.
pub(crate) fn run(
    launch: &Launch<'_>,
    timeout: Option<Duration>,
    registry: &Registry,
    capture: &mut Capture<'_>,
) -> Attempt {
    let start = SystemTime::now();
    let t0 = Instant::now();
    let argv = launch.argv;
    let mut cmd = match launch.program {
        Some(p) => {
            let mut c = Command::new(p);
            c.arg0(&argv[0]);
            c
        }
        None => Command::new(&argv[0]),
    };
    let (out, err) = if launch.ungrouped {
        (Stdio::inherit(), Stdio::inherit())
    } else {
        (Stdio::piped(), Stdio::piped())
    };
    cmd.args(&argv[1..])
        .envs(family::marks(launch.seq))
        .env("PARALLEL_JOBSLOT", launch.slot.to_string())
        .stdin(if launch.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(out)
        .stderr(err)
        .process_group(0);
    if launch.die_with_us {
        let parent = std::process::id() as nix::libc::pid_t;
        // SAFETY: runs in the forked child before exec, and calls only prctl(2) and
        // getppid(2), which are async-signal-safe and touch no memory of the parent.
        unsafe {
            cmd.pre_exec(move || {
                nix::libc::prctl(
                    nix::libc::PR_SET_PDEATHSIG,
                    nix::libc::SIGKILL as nix::libc::c_ulong,
                );
                // We died between fork and prctl: the signal will never come.
                if nix::libc::getppid() != parent {
                    return Err(io::Error::other("pool run exited"));
                }
                Ok(())
            });
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = spawn_message(&argv[0], &e);
            capture.data(Stream::Err, format!("pool run: {msg}\n").as_bytes());
            return Attempt {
                start,
                runtime: t0.elapsed(),
                end: End::SpawnFailed(msg),
            };
        }
    };
    let pid = child.id();
    let token = registry.register(pid, launch.seq, timeout.map(|t| t0 + t));
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let leader = pidfd_open(pid);
    std::thread::scope(|s| {
        if let (Some(mut w), Some(bytes)) = (child.stdin.take(), launch.stdin) {
            // A job may exit without reading its input: the write then fails, which is fine.
            s.spawn(move || {
                let _ = w.write_all(bytes);
            });
        }
        pump(out, err, leader.as_ref(), capture);
    });
    // Wait for the leader without reaping it: while it is a zombie its pid, which is the group
    // id, cannot be reused, so killing the group below cannot hit an unrelated process.
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    while let Err(Errno::EINTR) = waitid(Id::Pid(Pid::from_raw(pid as i32)), flags) {}
    let killed = registry.unregister(token);
    if let Some((_, at)) = killed {
        // Descendants that ignored SIGTERM: the rest of the grace period, then SIGKILL.
        let until = at + GRACE.min(Duration::from_millis(200));
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
        family::signal(Pid::from_raw(pid as i32), launch.seq, Signal::SIGKILL);
    }
    let status = child.wait();
    let runtime = t0.elapsed();
    let end = match (status, killed) {
        (Ok(s), Some((reason, _))) => End::Killed {
            reason,
            signal: s.signal().unwrap_or(0),
        },
        (Ok(s), None) => match (s.code(), s.signal()) {
            (Some(c), _) => End::Exit(c),
            (None, Some(sig)) => End::Signal(sig),
            (None, None) => End::Exit(-1),
        },
        (Err(e), _) => End::SpawnFailed(format!(
            "cannot wait for `{}`: {e}",
            argv[0].to_string_lossy()
        )),
    };
    Attempt {
        start,
        runtime,
        end,
    }
}

/// A descriptor that becomes readable when process `pid` exits (Linux 5.3+); `None` when the
/// kernel has none, and the job then lasts until its pipes close.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags, touches no memory of ours, and returns a new
    // descriptor or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just returned by the kernel, is open, and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn spawn_message(program: &OsStr, e: &io::Error) -> String {
    let program = program.to_string_lossy();
    let hint = if e.kind() == io::ErrorKind::NotFound && program.contains(' ') {
        " (a command with spaces is one word: drop --no-shell to let the shell split it)"
    } else {
        ""
    };
    format!("cannot run `{program}`: {e}{hint}")
}

/// How long we keep reading after the leader exited, for bytes it wrote before exiting: until
/// the pipes are empty, or a background child that keeps writing has had this long.
const DRAIN: Duration = Duration::from_millis(100);

/// Reads both pipes until both are closed, or until the leader (`leader`, a pidfd) exited and
/// what it wrote is read.
fn pump<O: Read + AsFd, E: Read + AsFd>(
    mut out: Option<O>,
    mut err: Option<E>,
    leader: Option<&OwnedFd>,
    capture: &mut Capture<'_>,
) {
    let mut buf = [0u8; 16 * 1024];
    let mut draining_since: Option<Instant> = None;
    while out.is_some() || err.is_some() {
        let (ready_out, ready_err, exited) = {
            let mut fds = Vec::with_capacity(3);
            let mut at = [None; 3]; // where out, err and the leader are in `fds`
            for (i, fd) in [
                out.as_ref().map(AsFd::as_fd),
                err.as_ref().map(AsFd::as_fd),
                leader.filter(|_| draining_since.is_none()).map(AsFd::as_fd),
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(fd) = fd {
                    at[i] = Some(fds.len());
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                }
            }
            let wait = if draining_since.is_some() {
                PollTimeout::ZERO
            } else {
                PollTimeout::NONE
            };
            match poll(&mut fds, wait) {
                Ok(0) => return, // drained
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
            let ready =
                |i: usize| at[i].is_some_and(|k| fds[k].revents().is_some_and(|r| !r.is_empty()));
            (ready(0), ready(1), ready(2))
        };
        if ready_out && !read_some(&mut out, &mut buf, Stream::Out, capture) {
            out = None;
        }
        if ready_err && !read_some(&mut err, &mut buf, Stream::Err, capture) {
            err = None;
        }
        if exited {
            draining_since = Some(Instant::now());
        }
        if draining_since.is_some_and(|t| t.elapsed() > DRAIN) {
            return;
        }
    }
}
/// One read; false at the end of the stream.
fn read_some<R: Read>(
    r: &mut Option<R>,
    buf: &mut [u8],
    stream: Stream,
    capture: &mut Capture<'_>,
) -> bool {
    let Some(r) = r else { return false };
    loop {
        match r.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                capture.data(stream, &buf[..n]);
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_resolved_once_in_path() {
        let sh = resolve("sh").expect("sh is in $PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{sh:?}");
        assert_eq!(resolve("./sh"), None);
        assert_eq!(resolve("no-such-program-pool-test"), None);
    }
}
