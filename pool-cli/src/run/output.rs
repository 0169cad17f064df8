//! Getting the output of concurrent jobs to our stdout and stderr without mixing them.
//!
//! A [`Capture`] belongs to one job (in its worker thread) and receives the bytes read from the
//! job's pipes; the shared [`Printer`] writes them under the stream's lock:
//! - grouped (default): all of a job's stdout, then all of its stderr, when it ends;
//! - ordered (`--keep-order`): the same, but held back until every earlier job was printed;
//! - lines (`--line-buffer`): complete lines as they arrive, the rest at the end.
//!
//! Only the last attempt of a retried job is printed in the grouped modes. `--results DIR`
//! also writes every job's output to `DIR/<seq>/stdout` and `DIR/<seq>/stderr`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{SFlag, fstat};

use super::args::OutputMode;
use super::registry::Registry;

/// Whether `fd` is a pipe or a socket (whose reader can go away).
fn is_pipe(fd: BorrowedFd<'_>) -> bool {
    fstat(fd).is_ok_and(|st| {
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        kind == SFlag::S_IFIFO || kind == SFlag::S_IFSOCK
    })
}

/// Which pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Out,
    Err,
}

#[derive(Debug, Default)]
struct Reorder {
    next: u64,
    pending: BTreeMap<u64, (Vec<u8>, Vec<u8>)>,
}

/// Writes the jobs' output; shared by all workers.
#[derive(Debug)]
pub(crate) struct Printer {
    mode: OutputMode,
    /// Aborted when our stdout is closed.
    registry: Arc<Registry>,
    reorder: Mutex<Reorder>,
    broken: AtomicBool,
}

impl Printer {
    /// A printer for `mode`; a closed stdout aborts the run through `registry`, also while no
    /// job writes (a thread watches our stdout when it is a pipe or a socket).
    pub(crate) fn new(mode: OutputMode, registry: Arc<Registry>) -> Arc<Self> {
        let printer = Arc::new(Printer {
            mode,
            registry,
            reorder: Mutex::new(Reorder {
                next: 1,
                pending: BTreeMap::new(),
            }),
            broken: AtomicBool::new(false),
        });
        let p = printer.clone();
        if is_pipe(io::stdout().as_fd()) {
            let _ = std::thread::Builder::new()
                .name("pool-run-stdout".into())
                .spawn(move || p.watch_stdout());
        }
        printer
    }

    /// Blocks until our stdout reports an error or a hang-up (its reader is gone).
    fn watch_stdout(&self) {
        let stdout = io::stdout();
        loop {
            let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {
                    let gone = PollFlags::POLLERR | PollFlags::POLLHUP;
                    if fds[0].revents().is_some_and(|r| r.intersects(gone)) {
                        self.closed();
                        return;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// Our stdout is closed: no output can reach anyone, so the run ends now.
    fn closed(&self) {
        if !self.broken.swap(true, Ordering::SeqCst) {
            self.registry.abort();
        }
    }

    /// Whether our stdout was closed (e.g. `pool run ... | head`).
    pub(crate) fn broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    fn write(&self, stream: Stream, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let r = match stream {
            Stream::Out => {
                let mut o = io::stdout().lock();
                o.write_all(bytes).and_then(|()| o.flush())
            }
            Stream::Err => io::stderr().lock().write_all(bytes),
        };
        if let Err(e) = r
            && stream == Stream::Out
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.closed();
        }
    }

    /// Job `seq` ended (or was skipped) with this output.
    pub(crate) fn done(&self, seq: u64, out: Vec<u8>, err: Vec<u8>) {
        if self.mode != OutputMode::Ordered {
            self.write(Stream::Out, &out);
            self.write(Stream::Err, &err);
            return;
        }
        let mut r = lock(&self.reorder);
        r.pending.insert(seq, (out, err));
        loop {
            let next = r.next;
            let Some((out, err)) = r.pending.remove(&next) else {
                break;
            };
            r.next += 1;
            // Written under the reorder lock, so that jobs come out in order.
            self.write(Stream::Out, &out);
            self.write(Stream::Err, &err);
        }
    }

    /// The run is over: print what is still held back (jobs after one that never reported,
    /// which only a bug could cause), in order.
    pub(crate) fn flush(&self) {
        let mut r = lock(&self.reorder);
        for (_, (out, err)) in std::mem::take(&mut r.pending) {
            self.write(Stream::Out, &out);
            self.write(Stream::Err, &err);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The output of one job as it runs.
#[derive(Debug)]
pub(crate) struct Capture<'a> {
    printer: &'a Printer,
    lines: bool,
    out: Vec<u8>,
    err: Vec<u8>,
    /// Bytes of stdout of the current attempt (the joblog's Receive).
    pub(crate) received: u64,
    results: Option<(File, File)>,
}

impl<'a> Capture<'a> {
    pub(crate) fn new(printer: &'a Printer) -> Self {
        Capture {
            lines: printer.mode == OutputMode::Lines,
            printer,
            out: Vec::new(),
            err: Vec::new(),
            received: 0,
            results: None,
        }
    }

    /// A new attempt starts: forget the output of the last one (grouped modes) and open the
    /// result files, if asked.
    pub(crate) fn begin(&mut self, results: Option<&Path>, seq: u64) -> io::Result<()> {
        self.out.clear();
        self.err.clear();
        self.received = 0;
        if let Some(dir) = results {
            let dir: PathBuf = dir.join(seq.to_string());
            fs::create_dir_all(&dir)?;
            self.results = Some((
                File::create(dir.join("stdout"))?,
                File::create(dir.join("stderr"))?,
            ));
        }
        Ok(())
    }

    /// Bytes read from the job.
    pub(crate) fn data(&mut self, stream: Stream, bytes: &[u8]) {
        if stream == Stream::Out {
            self.received += bytes.len() as u64;
        }
        if let Some((o, e)) = &mut self.results {
            let _ = match stream {
                Stream::Out => o.write_all(bytes),
                Stream::Err => e.write_all(bytes),
            };
        }
        let buf = match stream {
            Stream::Out => &mut self.out,
            Stream::Err => &mut self.err,
        };
        buf.extend_from_slice(bytes);
        if self.lines
            && let Some(nl) = buf.iter().rposition(|&b| b == b'\n')
        {
            let rest = buf.split_off(nl + 1);
            let full = std::mem::replace(buf, rest);
            self.printer.write(stream, &full);
        }
    }

    /// The job is over: print what is left.
    pub(crate) fn finish(mut self, seq: u64) {
        self.results = None;
        let (out, err) = (std::mem::take(&mut self.out), std::mem::take(&mut self.err));
        self.printer.done(seq, out, err);
    }
}
