//! The progress seam: what a call reports while it runs, and the live status anyone can read.
//!
//! The pool counts tasks (not chunks) from the per-worker counters and calls a
//! [`ProgressSink`] a few times per second; renderers (terminal bars, log lines, the dashboard)
//! live in other crates and implement that trait. [`StatusHandle`] gives the same numbers to
//! code that polls instead of drawing.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProgressStyle {
    /// The process-wide default: `Std` on a terminal, `Plain` otherwise.
    #[default]
    Auto,
    /// A terminal progress bar.
    Std,
    /// A log line per interval (for logs and CI).
    Plain,
    /// Only on the dashboard.
    Dashboard,
    /// Nothing is shown (the status is still kept).
    Hidden,
}

/// Options of a progress bar, as MPIRE's `progress_bar_options`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressSpec {
    /// Text before the bar.
    pub desc: Option<String>,
    /// What is counted ("tasks").
    pub unit: String,
    /// Bar colour (indicatif colour names: "green", "cyan", ...).
    pub colour: Option<String>,
    /// Line of the terminal, for several bars at once (0 = the first).
    pub position: usize,
    /// The total, for inputs of unknown length.
    pub total: Option<u64>,
    /// How to show it.
    pub style: ProgressStyle,
}

impl Default for ProgressSpec {
    fn default() -> Self {
        ProgressSpec {
            desc: None,
            unit: "tasks".to_string(),
            colour: None,
            position: 0,
            total: None,
            style: ProgressStyle::Auto,
        }
    }
}

impl ProgressSpec {
    /// Sets the description.
    ///
    /// ```
    /// let spec = pool_core::ProgressSpec::default().desc("parsing");
    /// ```
    pub fn desc(mut self, d: impl Into<String>) -> Self {
        self.desc = Some(d.into());
        self
    }
    /// Sets the unit.
    ///
    /// ```
    /// let spec = pool_core::ProgressSpec::default().unit("files");
    /// ```
    pub fn unit(mut self, u: impl Into<String>) -> Self {
        self.unit = u.into();
        self
    }
    /// Sets the colour.
    ///
    /// ```
    /// let spec = pool_core::ProgressSpec::default().colour("green");
    /// ```
    pub fn colour(mut self, c: impl Into<String>) -> Self {
        self.colour = Some(c.into());
        self
    }
    /// Sets the terminal line.
    ///
    /// ```
    /// // The second line of a board of bars (nested pools).
    /// let spec = pool_core::ProgressSpec::default().position(1);
    /// ```
    pub fn position(mut self, p: usize) -> Self {
        self.position = p;
        self
    }
    /// Sets the total.
    ///
    /// ```
    /// // A total when the input cannot tell its length.
    /// let spec = pool_core::ProgressSpec::default().total(1_000);
    /// ```
    pub fn total(mut self, t: u64) -> Self {
        self.total = Some(t);
        self
    }
    /// Sets the style.
    ///
    /// ```
    /// use pool_core::{ProgressSpec, ProgressStyle};
    ///
    /// let spec = ProgressSpec::default().style(ProgressStyle::Plain);
    /// ```
    pub fn style(mut self, s: ProgressStyle) -> Self {
        self.style = s;
        self
    }
}

/// What is being run, for renderers and the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    /// Unique per process.
    pub call_id: u64,
    /// Unique per process.
    pub pool_id: u64,
    /// `map`, `imap_unordered`, `apply_async`, ...
    pub method: String,
    /// The task function's type name.
    pub function: String,
    /// `file:line` of the call.
    pub location: String,
    /// Workers.
    pub n_jobs: usize,
    /// The start method, by name.
    pub start_method: String,
    /// The progress options.
    pub spec: ProgressSpec,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Every task ran (under `keep_going`, some may have failed: see the status).
    Done,
    /// The call stopped at this error.
    Failed(String),
    /// The call was interrupted or dropped before the end.
    Interrupted,
}

/// A snapshot of a call's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Total tasks, when known.
    pub total: Option<u64>,
    /// Tasks taken from the input so far.
    pub submitted: u64,
    /// Tasks running now.
    pub running: u64,
    /// Tasks finished (successfully or not).
    pub done: u64,
    /// Tasks that failed.
    pub failed: u64,
    /// Since the call started.
    pub elapsed: Duration,
    /// Finished tasks per second.
    pub rate: f64,
    /// Estimated time to completion, when the total is known and something finished.
    pub eta: Option<Duration>,
    /// Whether the call is still running.
    pub active: bool,
}

impl Status {
    /// Tasks submitted but not yet started.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let status = pool.status_handle();
    /// pool.map(|x: u64| x, 0..10u64)?;
    /// assert_eq!(status.snapshot().pending(), 0);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn pending(&self) -> u64 {
        self.submitted.saturating_sub(self.done + self.running)
    }
}

/// Receives a call's progress. Called from the thread that drives the call, a few times a
/// second at most and once more at the end.
pub trait ProgressSink: Send {
    /// The call started.
    fn start(&mut self, info: &CallInfo);
    /// Progress was made.
    fn update(&mut self, status: &Status);
    /// A task failed (under `keep_going`, or the failure that stops the call). The first line
    /// says what and where; the worker's backtrace follows on later lines when there is one
    /// (the same text is in `Outcome::Failed`). One-line renderers show the first line.
    fn task_failed(&mut self, _message: &str) {}
    /// Raw worker timings of this call's tasks alone, at its end (when insights are enabled).
    fn timings(&mut self, _timings: &[crate::timing::WorkerTimings]) {}
    /// The call ended; the sink must leave the terminal clean.
    fn finish(&mut self, status: &Status, outcome: &Outcome);
}

/// Live counters of the current (or last) call of a pool, readable from any thread.
///
/// ```
/// use pool_core::ThreadPool;
///
/// let mut pool = ThreadPool::new(2).unwrap();
/// let status = pool.status_handle();
/// pool.map(|x: u8| x, 0..10).unwrap();
/// let s = status.snapshot();
/// assert_eq!((s.done, s.failed, s.active), (10, 0, false));
/// ```
#[derive(Clone, Default)]
pub struct StatusHandle {
    inner: Arc<StatusCells>,
}

#[derive(Default)]
struct StatusCells {
    total: AtomicU64, // u64::MAX = unknown
    submitted: AtomicU64,
    running: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    started: std::sync::Mutex<Option<Instant>>,
    finished_after_ns: AtomicU64,
    active: AtomicU8,
}

impl fmt::Debug for StatusHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StatusHandle")
            .field(&self.snapshot())
            .finish()
    }
}

impl StatusHandle {
    /// The numbers now.
    ///
    /// ```
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let status = pool.status_handle();
    /// pool.map(|x: u64| x, 0..10u64)?;
    /// assert_eq!(status.snapshot().done, 10);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn snapshot(&self) -> Status {
        let c = &self.inner;
        let started = *c.started.lock().unwrap_or_else(|e| e.into_inner());
        let active = c.active.load(Ordering::Acquire) == 1;
        let elapsed = match (started, active) {
            (Some(s), true) => s.elapsed(),
            (Some(_), false) => Duration::from_nanos(c.finished_after_ns.load(Ordering::Relaxed)),
            _ => Duration::ZERO,
        };
        let total = match c.total.load(Ordering::Relaxed) {
            u64::MAX => None,
            t => Some(t),
        };
        let done = c.done.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let eta = match total {
            Some(t) if rate > 0.0 && done > 0 => Some(Duration::from_secs_f64(
                t.saturating_sub(done) as f64 / rate,
            )),
            _ => None,
        };
        Status {
            total,
            submitted: c.submitted.load(Ordering::Relaxed),
            running: c.running.load(Ordering::Relaxed),
            done,
            failed: c.failed.load(Ordering::Relaxed),
            elapsed,
            rate,
            eta,
            active,
        }
    }

    pub(crate) fn begin(&self, total: Option<u64>) {
        let c = &self.inner;
        c.total.store(total.unwrap_or(u64::MAX), Ordering::Relaxed);
        for a in [&c.submitted, &c.running, &c.done, &c.failed] {
            a.store(0, Ordering::Relaxed);
        }
        *c.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        c.active.store(1, Ordering::Release);
    }

    /// Starts the clock again after [`Self::end`], from the same start: the counts go on.
    pub(crate) fn resume(&self) {
        self.inner.active.store(1, Ordering::Release);
    }

    pub(crate) fn set_total(&self, total: u64) {
        self.inner.total.store(total, Ordering::Relaxed);
    }

    pub(crate) fn set(&self, submitted: u64, running: u64, done: u64, failed: u64) {
        let c = &self.inner;
        c.submitted.store(submitted, Ordering::Relaxed);
        c.running.store(running, Ordering::Relaxed);
        c.done.store(done, Ordering::Relaxed);
        c.failed.store(failed, Ordering::Relaxed);
    }

    pub(crate) fn end(&self) {
        let c = &self.inner;
        let started = *c.started.lock().unwrap_or_else(|e| e.into_inner());
        let ns = started.map_or(0, |s| s.elapsed().as_nanos() as u64);
        c.finished_after_ns.store(ns, Ordering::Relaxed);
        c.running.store(0, Ordering::Relaxed);
        c.active.store(0, Ordering::Release);
    }
}
