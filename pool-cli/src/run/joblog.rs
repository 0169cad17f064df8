//! `--joblog FILE`: one tab-separated line per job, with GNU parallel's columns:
//! `Seq Host Starttime JobRuntime Send Receive Exitval Signal Command`.
//!
//! Host is `:` (this machine); Starttime is seconds since the epoch; JobRuntime is seconds;
//! Send is 0 (jobs get no stdin); Receive is the bytes the job wrote to stdout; a job ended by
//! a signal has Exitval -1 and the signal's number; one that could not start has Exitval 127.
//! Lines are written as jobs end (flushed, so the log is useful while the run goes on).

use std::fs::File;
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
    /// Creates (truncates) `path` and writes the header.
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        let f = File::create(path)
            .with_context(|| format!("cannot create the job log {}", path.display()))?;
        let mut w = BufWriter::new(f);
        writeln!(w, "{HEADER}").and_then(|()| w.flush())?;
        Ok(JobLog { w: Mutex::new(w) })
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
