//! Getting the output of concurrent jobs to our stdout and stderr without mixing them.
//!
//! A [`Capture`] belongs to one job (in its worker thread) and receives the bytes read from the
//! job's pipes; the shared [`Printer`] writes them under the stream's lock:
//! - grouped (default): all of a job's stdout, then all of its stderr, when it ends;
//! - ordered (`--keep-order`): the same, but held back until every earlier job was printed;
//! - lines (`--line-buffer`): complete lines as they arrive, the rest at the end;
//! - ordered lines (`-k --line-buffer`): lines of the oldest unfinished job as they arrive; a
//!   younger job's wait until every older job was printed;
//! - ungrouped (`-u`): the job writes to our stdout and stderr itself.
//!
//! `--tag`/`--tagstring` put a prefix before every line. Only the last attempt of a retried job
//! is printed in the grouped modes. `--results DIR` also writes every job's output in GNU
//! parallel's tree: `DIR/1/<value 1>/2/<value 2>/.../{seq,stdout,stderr}`, where a value's `\`
//! becomes `\\` and its `/` becomes `\_`.

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
        if !matches!(self.mode, OutputMode::Ordered | OutputMode::OrderedLines) {
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
    seq: u64,
    lines: bool,
    /// `--tag`: the prefix of every line, and whether each stream is at the start of a line.
    tag: Option<Vec<u8>>,
    at_line_start: [bool; 2],
    out: Vec<u8>,
    err: Vec<u8>,
    /// Bytes of stdout of the current attempt (the joblog's Receive).
    pub(crate) received: u64,
    results: Option<(File, File)>,
}

impl<'a> Capture<'a> {
    /// The output of job `seq`; every line prefixed with `tag` and a tab, when given.
    pub(crate) fn new(printer: &'a Printer, seq: u64, tag: Option<Vec<u8>>) -> Self {
        Capture {
            lines: matches!(printer.mode, OutputMode::Lines | OutputMode::OrderedLines),
            printer,
            seq,
            tag: tag.map(|mut t| {
                t.push(b'\t');
                t
            }),
            at_line_start: [true; 2],
            out: Vec::new(),
            err: Vec::new(),
            received: 0,
            results: None,
        }
    }

    /// A new attempt starts: forget the output of the last one (grouped modes) and open the
    /// result files, if asked.
    pub(crate) fn begin(&mut self, results: Option<&Path>, values: &[Vec<u8>]) -> io::Result<()> {
        self.out.clear();
        self.err.clear();
        self.received = 0;
        self.at_line_start = [true; 2];
        if let Some(dir) = results {
            let dir = results_dir(dir, values);
            fs::create_dir_all(&dir)?;
            fs::write(dir.join("seq"), self.seq.to_string())?;
            self.results = Some((
                File::create(dir.join("stdout"))?,
                File::create(dir.join("stderr"))?,
            ));
        }
        Ok(())
    }

    /// Bytes read from the job.
    pub(crate) fn data(&mut self, stream: Stream, bytes: &[u8]) {
        let Some(tag) = &self.tag else {
            return self.untagged(stream, bytes);
        };
        let mut tagged = Vec::with_capacity(bytes.len() + tag.len());
        let start = &mut self.at_line_start[stream as usize];
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if *start {
                tagged.extend_from_slice(tag);
            }
            tagged.extend_from_slice(line);
            *start = line.ends_with(b"\n");
        }
        self.untagged(stream, &tagged);
    }

    fn untagged(&mut self, stream: Stream, bytes: &[u8]) {
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
            let ordered = self.printer.mode == OutputMode::OrderedLines;
            // In order, only the oldest unfinished job prints live; the printer's lock is held
            // while it does, so that its turn cannot pass meanwhile.
            let turn = ordered.then(|| lock(&self.printer.reorder));
            if turn.as_ref().is_none_or(|r| r.next == self.seq) {
                if ordered {
                    // Its stdout held back while it waited, then this stream's lines.
                    let other = match stream {
                        Stream::Out => None,
                        Stream::Err => Some(std::mem::take(&mut self.out)),
                    };
                    if let Some(o) = other {
                        let keep = o.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                        self.printer.write(Stream::Out, &o[..keep]);
                        self.out = o[keep..].to_vec();
                    }
                }
                let buf = match stream {
                    Stream::Out => &mut self.out,
                    Stream::Err => &mut self.err,
                };
                let nl = buf.iter().rposition(|&b| b == b'\n').unwrap_or(nl);
                let rest = buf.split_off(nl + 1);
                let full = std::mem::replace(buf, rest);
                self.printer.write(stream, &full);
            }
        }
    }

    /// The job is over: print what is left.
    pub(crate) fn finish(mut self) {
        self.results = None;
        let (out, err) = (std::mem::take(&mut self.out), std::mem::take(&mut self.err));
        self.printer.done(self.seq, out, err);
    }
}

/// GNU parallel's `--results` directory of a job: `DIR/1/<value 1>/2/<value 2>/...`.
fn results_dir(dir: &Path, values: &[Vec<u8>]) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let mut d = dir.to_path_buf();
    for (i, v) in values.iter().enumerate() {
        let mut escaped = Vec::with_capacity(v.len());
        for &b in v {
            match b {
                b'\\' => escaped.extend_from_slice(b"\\\\"),
                b'/' => escaped.extend_from_slice(b"\\_"),
                _ => escaped.push(b),
            }
        }
        d.push((i + 1).to_string());
        d.push(std::ffi::OsString::from_vec(escaped));
    }
    d
}
