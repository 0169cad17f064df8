//! `--joblog FILE`: one tab-separated line per job, with GNU parallel's columns:
//! `Seq Host Starttime JobRuntime Send Receive Exitval Signal Command`.
//!
//! Host is `:` (this machine); Starttime is seconds since the epoch; JobRuntime is seconds;
//! Send is 0 (jobs get no stdin); Receive is the bytes the job wrote to stdout; a job ended by
//! a signal has Exitval -1 and the signal's number; one that could not start has Exitval 127.
//! Lines are written as jobs end, each with one `write` (flushed, so the log is useful while
//! the run goes on, and a run killed with SIGKILL leaves only whole lines of finished jobs).
//!
//! `--resume` reads the log first and skips every job it lists (by Seq); `--resume-failed`
//! skips only those that succeeded (Exitval 0, Signal 0). The log is then appended to.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use anyhow::Context;

use super::job::Attempt;

/// The header line.
pub(crate) const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

/// An open job log.
#[derive(Debug)]
pub(crate) struct JobLog {
    w: Mutex<BufWriter<File>>,
}

impl JobLog {
    /// Creates (truncates) `path`, or with `append` opens it to add to it; writes the header
    /// when the file is new or empty.
    pub(crate) fn create(path: &Path, append: bool) -> anyhow::Result<Self> {
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .with_context(|| format!("cannot create the job log {}", path.display()))?;
        let empty = f.metadata().map_or(true, |m| m.len() == 0);
        let mut w = BufWriter::new(f);
        if empty {
            writeln!(w, "{HEADER}").and_then(|()| w.flush())?;
        }
        Ok(JobLog { w: Mutex::new(w) })
    }

    /// The jobs (Seq) a previous run logged in `path`: all of them, or with `only_succeeded`
    /// those that succeeded. A missing log is an empty one.
    pub(crate) fn done(path: &Path, only_succeeded: bool) -> anyhow::Result<HashSet<u64>> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the job log {}", path.display()));
            }
        };
        let mut done = HashSet::new();
        // Only whole lines count: a line without its newline was cut by a crash.
        for line in text.split_inclusive(|&b| b == b'\n') {
            if !line.ends_with(b"\n") {
                continue;
            }
            let cols: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
            let num = |i: usize| {
                cols.get(i)
                    .and_then(|c| std::str::from_utf8(c).ok())
                    .and_then(|c| c.trim().parse::<i64>().ok())
            };
            let (Some(seq), Some(exitval), Some(signal)) = (num(0), num(6), num(7)) else {
                continue; // the header, or not a job line
            };
            if !only_succeeded || (exitval == 0 && signal == 0) {
                done.insert(seq as u64);
            }
        }
        Ok(done)
    }

    /// Logs a finished job.
    pub(crate) fn record(&self, seq: u64, a: &Attempt, received: u64, command: &str) {
        let start = a
            .start
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let (exitval, signal) = a.end.exitval_signal();
        // A command with a newline or tab would break the columns.
        let command = command.replace(['\n', '\t'], " ");
        let line = format!(
            "{seq}\t:\t{start:.3}\t{:>10.3}\t0\t{received}\t{exitval}\t{signal}\t{command}\n",
            a.runtime.as_secs_f64()
        );
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        let _ = w.write_all(line.as_bytes()).and_then(|()| w.flush());
    }
}
