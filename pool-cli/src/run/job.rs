//! Running one job: spawn it in its own process group, read its stdout and stderr in this
//! (worker) thread as they come, wait for it, and kill its whole group when it was timed out or
//! aborted (see [`super::registry`]).
//!
//! The command is spawned with `std::process::Command` and `process_group(0)`, which std
//! implements with `posix_spawn` (no shell, no `fork` of our address space). No signal is
//! blocked in `pool run` (see [`super::signals`]), so jobs start with a clean signal mask.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

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

/// Runs `argv` to its end, feeding its output to `capture`. `program`, when given, is where
/// `argv[0]` was found.
pub(crate) fn run(
    program: Option<&Path>,
    argv: &[String],
    timeout: Option<Duration>,
    registry: &Registry,
    capture: &mut Capture<'_>,
) -> Attempt {
    let start = SystemTime::now();
    let t0 = Instant::now();
    let mut cmd = match program {
        Some(p) => {
            let mut c = Command::new(p);
            c.arg0(&argv[0]);
            c
        }
        None => Command::new(&argv[0]),
    };
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
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
    let token = registry.register(pid, timeout.map(|t| t0 + t));
    let (out, err) = (child.stdout.take(), child.stderr.take());
    pump(out, err, capture);
    // Wait for the leader without reaping it: while it is a zombie its pid, which is the group
    // id, cannot be reused, so killing the group below cannot hit an unrelated process.
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    while let Err(Errno::EINTR) = waitid(Id::Pid(Pid::from_raw(pid as i32)), flags) {}
    let killed = registry.unregister(token);
    if let Some((_, at)) = killed {
        // Grandchildren that ignored SIGTERM: the rest of the grace period, then SIGKILL.
        let until = at + GRACE.min(Duration::from_millis(200));
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
        let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
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
        (Err(e), _) => End::SpawnFailed(format!("cannot wait for `{}`: {e}", argv[0])),
    };
    Attempt {
        start,
        runtime,
        end,
    }
}

fn spawn_message(program: &str, e: &io::Error) -> String {
    let hint = if e.kind() == io::ErrorKind::NotFound && program.contains(' ') {
        " (to run shell syntax, use --shell)"
    } else {
        ""
    };
    format!("cannot run `{program}`: {e}{hint}")
}

/// Reads both pipes until both are closed.
fn pump<O: Read + AsFd, E: Read + AsFd>(
    mut out: Option<O>,
    mut err: Option<E>,
    capture: &mut Capture<'_>,
) {
    let mut buf = [0u8; 16 * 1024];
    while out.is_some() || err.is_some() {
        let (ready_out, ready_err) = {
            let mut fds = Vec::with_capacity(2);
            if let Some(o) = &out {
                fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            }
            if let Some(e) = &err {
                fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
            let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
            let first = ready(&fds[0]);
            match (&out, &err) {
                (Some(_), Some(_)) => (first, ready(&fds[1])),
                (Some(_), None) => (first, false),
                _ => (false, first),
            }
        };
        if ready_out && !read_some(&mut out, &mut buf, Stream::Out, capture) {
            out = None;
        }
        if ready_err && !read_some(&mut err, &mut buf, Stream::Err, capture) {
            err = None;
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
