//! Workers' standard error: passed through to the parent's as it comes, with each worker's
//! last line kept for the report of its death.
//!
//! Why: a worker that dies often says why on its way out: Rust's allocation-failure handler
//! prints "memory allocation of 1073741824 bytes failed" before its `SIGABRT`, a C library
//! prints its failed assertion. The error the user gets should carry that line, not only the
//! signal.
//!
//! 1. Each worker's fd 2 is the write end of a pipe of its own; the parent keeps the read end
//!    ([`StderrTee::attach`]).
//! 2. One thread polls every read end (epoll) and copies what arrives to the parent's fd 2,
//!    a whole line at a time (so the lines of two workers never mix, as they could when the
//!    workers wrote to the parent's stderr themselves), remembering each worker's last line.
//!    It writes holding the lock of Rust's `stderr`, which `eprintln!` holds for a whole line
//!    while writing it in pieces, so a worker's line never lands inside one of the parent's.
//!    Every path takes that lock before the tee's own ([`Shared::lock`]): a thread that holds
//!    stderr's lock and asks for a dead worker's last line cannot deadlock with the thread.
//! 3. A dead worker's last line ([`StderrTee::last_line`]) is read after draining its pipe
//!    under the same lock: whatever the worker wrote is in the pipe once it is dead, so the
//!    line is its last words even if the thread has not run since.
//! 4. [`StderrTee::detach`] drains and closes the read end. The pipe may outlive the worker
//!    (a process it started holds the write end): that is why the end of a worker is never
//!    waited for on its pipe, only drained.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// The epoll token that stops the thread.
const STOP: u64 = u64::MAX;

/// The longest last line quoted (a longer one keeps its end).
const MAX_LINE: usize = 512;

/// An unfinished line longer than this is passed on without waiting for its end.
const MAX_PENDING: usize = 64 << 10;

/// One worker's pipe and what it said last.
struct Pipe {
    read: OwnedFd,
    /// The last complete line, not counting a backtrace printed after it nor the runtime's
    /// hint to print one.
    last: Vec<u8>,
    /// A backtrace is being printed (Rust prints one after a panic or a failed allocation
    /// when `RUST_BACKTRACE` is set): its lines are not what the worker said last.
    in_backtrace: bool,
    /// The line being written (no newline yet), not passed on yet.
    partial: Vec<u8>,
    /// The pipe reached end of file (no writer left): out of the epoll set.
    closed: bool,
}

impl Pipe {
    /// Reads what the pipe holds, copies it to this process's stderr and notes the lines.
    fn drain(&mut self, epoll: &OwnedFd) {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into a live buffer of the stated length from an fd we own.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match n {
                0 => {
                    self.finish_line();
                    if !self.closed {
                        self.closed = true;
                        // SAFETY: removing a registered fd; the event may be null for DEL.
                        unsafe {
                            libc::epoll_ctl(
                                epoll.as_raw_fd(),
                                libc::EPOLL_CTL_DEL,
                                self.read.as_raw_fd(),
                                std::ptr::null_mut(),
                            )
                        };
                    }
                    return;
                }
                n if n < 0 => {
                    if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return; // EAGAIN: drained.
                }
                n => self.note(&buf[..n as usize]),
            }
        }
    }

    /// Passes on the complete lines of `bytes`, noting the last one, and holds an unfinished
    /// one back (unless it grows too long to hold).
    fn note(&mut self, bytes: &[u8]) {
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            self.partial.extend_from_slice(piece);
            if piece.ends_with(b"\n") || self.partial.len() > MAX_PENDING {
                self.finish_line();
            }
        }
    }

    /// Passes on the line held back and notes it.
    fn finish_line(&mut self) {
        write_all_to_stderr(&self.partial);
        // Classified whole (a frame's line can be far longer than the quote keeps).
        let text = self.partial.trim_ascii();
        if text == b"stack backtrace:" {
            self.in_backtrace = true;
        } else if !(text.is_empty()
            || RUNTIME_NOTES.contains(&text)
            || self.in_backtrace && is_backtrace_line(text))
        {
            self.in_backtrace = false;
            self.last = text[text.len().saturating_sub(MAX_LINE)..].to_vec();
        }
        self.partial.clear();
    }

    /// The last line, or the unfinished one after it.
    fn last_line(&self) -> Option<String> {
        let partial = self.partial.trim_ascii();
        let line = if partial.is_empty() {
            &self.last[..]
        } else {
            partial
        };
        let line = &line[line.len().saturating_sub(MAX_LINE)..];
        (!line.is_empty()).then(|| String::from_utf8_lossy(line).into_owned())
    }
}

/// What Rust's runtime adds after a panic or a failed allocation, never the worker's own last
/// words: the hint printed when `RUST_BACKTRACE` is unset, and what it says when printing the
/// backtrace failed in turn.
const RUNTIME_NOTES: [&[u8]; 2] = [
    b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
    b"skipping backtrace printing to avoid potential recursion",
];

/// Whether `line` (trimmed) is part of a printed Rust backtrace: "12: function",
/// "at src/file.rs:3:5", the closing "note: ...", or the report of an allocation that failed
/// while the backtrace was being symbolized (after an out-of-memory failure, say).
fn is_backtrace_line(line: &[u8]) -> bool {
    let frame = line
        .iter()
        .position(|&b| b == b':')
        .is_some_and(|colon| colon > 0 && line[..colon].iter().all(u8::is_ascii_digit));
    frame
        || line.starts_with(b"at ")
        || line.starts_with(b"note: ")
        || line.starts_with(b"memory allocation of ")
}

/// Writes `bytes` to this process's fd 2, ignoring failures (nowhere to report them).
fn write_all_to_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing from a live buffer of the stated length.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

struct Shared {
    epoll: OwnedFd,
    pipes: Mutex<HashMap<u64, Pipe>>,
}

impl Shared {
    /// Stderr's lock, then the pipes: whatever is passed on while they are held is written
    /// between two of this process's own lines.
    fn lock(&self) -> (io::StderrLock<'static>, MutexGuard<'_, HashMap<u64, Pipe>>) {
        let stderr = io::stderr().lock();
        (stderr, self.pipes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Passes workers' stderr through to this process's, keeping each one's last line.
pub(crate) struct StderrTee {
    shared: Arc<Shared>,
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

fn cvt(r: i32) -> io::Result<i32> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn watch(epoll: &OwnedFd, fd: i32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: valid epoll fd, valid fd, valid event pointer.
    cvt(unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

impl StderrTee {
    /// Starts the thread.
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 and eventfd return a new fd or -1; we own what they return.
        let (epoll, stop) = unsafe {
            let ep = cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?;
            let epoll = OwnedFd::from_raw_fd(ep);
            let ev = cvt(libc::eventfd(0, libc::EFD_CLOEXEC))?;
            (epoll, OwnedFd::from_raw_fd(ev))
        };
        watch(&epoll, stop.as_raw_fd(), STOP)?;
        let shared = Arc::new(Shared {
            epoll,
            pipes: Mutex::default(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pool-ipc-stderr".into())
            .spawn(move || {
                let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
                loop {
                    // SAFETY: valid epoll fd and an events buffer of the stated length.
                    let n = unsafe {
                        libc::epoll_wait(s.epoll.as_raw_fd(), events.as_mut_ptr(), 16, -1)
                    };
                    if n < 0 {
                        if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                            continue;
                        }
                        return;
                    }
                    let (_stderr, mut pipes) = s.lock();
                    for ev in &events[..n as usize] {
                        let token = ev.u64;
                        if token == STOP {
                            return;
                        }
                        if let Some(p) = pipes.get_mut(&token) {
                            p.drain(&s.epoll);
                        }
                    }
                }
            })?;
        Ok(StderrTee {
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// A pipe for the worker known by `token`: returns the write end, to become its fd 2.
    pub(crate) fn attach(&self, token: u64) -> io::Result<OwnedFd> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two new fds into a live array of two.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
        // SAFETY: both fds are new and ours.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: setting a flag on an fd we own.
        cvt(unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) })?;
        let (_stderr, mut pipes) = self.shared.lock();
        if let Some(old) = pipes.remove(&token) {
            self.forget(old);
        }
        watch(&self.shared.epoll, read.as_raw_fd(), token)?;
        pipes.insert(
            token,
            Pipe {
                read,
                last: Vec::new(),
                in_backtrace: false,
                partial: Vec::new(),
                closed: false,
            },
        );
        Ok(write)
    }

    /// What the worker `token` wrote last on stderr (after passing on all it wrote).
    pub(crate) fn last_line(&self, token: u64) -> Option<String> {
        let (_stderr, mut pipes) = self.shared.lock();
        let p = pipes.get_mut(&token)?;
        p.drain(&self.shared.epoll);
        p.last_line()
    }

    /// Passes on what is left of the worker `token`'s stderr and closes its pipe.
    pub(crate) fn detach(&self, token: u64) {
        let (_stderr, mut pipes) = self.shared.lock();
        if let Some(p) = pipes.remove(&token) {
            self.forget(p);
        }
    }

    fn forget(&self, mut p: Pipe) {
        p.drain(&self.shared.epoll);
        p.finish_line();
        if !p.closed {
            // SAFETY: removing a registered fd; the event may be null for DEL.
            unsafe {
                libc::epoll_ctl(
                    self.shared.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    p.read.as_raw_fd(),
                    std::ptr::null_mut(),
                )
            };
        }
    }
}

impl Drop for StderrTee {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let tokens: Vec<u64> = self.shared.lock().1.keys().copied().collect();
        for t in tokens {
            self.detach(t);
        }
    }
}

impl std::fmt::Debug for StderrTee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StderrTee")
            .field("workers", &self.shared.pipes.lock().map_or(0, |p| p.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::StderrTee;
    use std::io::Write;

    /// What a worker that wrote `text` on its stderr is quoted as having said last.
    fn last_words(text: &str) -> Option<String> {
        let tee = StderrTee::new().unwrap();
        let mut w = std::fs::File::from(tee.attach(7).unwrap());
        w.write_all(text.as_bytes()).unwrap();
        drop(w);
        tee.last_line(7)
    }

    const OOM: &str = "memory allocation of 1073741824 bytes failed";

    /// Without `RUST_BACKTRACE`, Rust's runtime follows the failure with a hint.
    #[test]
    fn the_runtime_s_backtrace_hint_is_not_the_worker_s_last_words() {
        let hint = "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace";
        assert_eq!(
            last_words(&format!("{OOM}\n{hint}\n")).as_deref(),
            Some(OOM)
        );
    }

    /// Frames of generic functions print lines far longer than the quote keeps.
    #[test]
    fn a_backtrace_with_long_frames_is_not_the_worker_s_last_words() {
        let long = format!(
            "  17: do_call<{}>",
            "core::option::Option<usize>, ".repeat(40)
        );
        let text = format!(
            "{OOM}\nstack backtrace:\n   0: std::alloc::rust_oom\n{long}\n             at ./src/x.rs:1:5\n\
             note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n"
        );
        assert_eq!(last_words(&text).as_deref(), Some(OOM));
    }

    /// Symbolizing the backtrace of an out-of-memory failure can fail for want of memory too.
    #[test]
    fn a_failure_to_print_the_backtrace_is_not_the_worker_s_last_words() {
        let text = format!(
            "{OOM}\nstack backtrace:\nmemory allocation of 5795635 bytes failed\n\
             skipping backtrace printing to avoid potential recursion\n"
        );
        assert_eq!(last_words(&text).as_deref(), Some(OOM));
    }

    /// A worker's own line that merely starts like a backtrace's still counts.
    #[test]
    fn a_worker_s_own_note_is_its_last_words() {
        let text = "starting\nnote: input 3 is empty\n";
        assert_eq!(last_words(text).as_deref(), Some("note: input 3 is empty"));
    }
}
