//! The reporting protocol: what a process sends to `POST /api/report`.
//!
//! A report is one JSON object naming the sending process and carrying a batch of events, in
//! the order they happened:
//!
//! ```json
//! {
//!   "process": {"id": "myhost-4242-9f3c", "pid": 4242, "host": "myhost", "program": "etl"},
//!   "events": [
//!     {"type": "start", "info": {"call_id": 1, "pool_id": 1, "method": "map", "...": "..."}},
//!     {"type": "update", "pool_id": 1, "call_id": 1, "status": {"done": 10, "...": "..."}},
//!     {"type": "task_failed", "pool_id": 1, "call_id": 1, "message": "task 7 panicked: .."},
//!     {"type": "timings", "pool_id": 1, "call_id": 1, "workers": [{"worker": 0, "...": 0}]},
//!     {"type": "finish", "pool_id": 1, "call_id": 1, "status": {}, "outcome": {"Failed": ".."}}
//!   ]
//! }
//! ```
//!
//! `info`, `status` and `outcome` are `pool_core`'s [`CallInfo`], [`Status`] and [`Outcome`]
//! in their serde form (durations as `{"secs": .., "nanos": ..}`). Calls are keyed by
//! `(process.id, pool_id, call_id)`, so any number of processes and pools report to one
//! dashboard.
//! An empty `events` list is valid: clients send one to check the address and the token.

use pool_core::{CallInfo, Outcome, Status, WorkerTimings};
use serde::{Deserialize, Serialize};

/// The process a report comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Unique per process and per connection: host, pid and a random suffix.
    pub id: String,
    /// The operating system's process id.
    pub pid: u32,
    /// The host name.
    pub host: String,
    /// The program's file name.
    pub program: String,
}

impl ProcessInfo {
    /// Describes the current process.
    pub fn current() -> Self {
        let pid = std::process::id();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".to_string());
        let program = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .or_else(|| std::env::args().next())
            .unwrap_or_else(|| "?".to_string());
        let mut salt = [0u8; 4];
        let _ = getrandom::fill(&mut salt);
        let salt = u32::from_le_bytes(salt);
        ProcessInfo {
            id: format!("{host}-{pid}-{salt:08x}"),
            pid,
            host,
            program,
        }
    }
}

/// A batch of events from one process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Who sends it.
    pub process: ProcessInfo,
    /// What happened, oldest first.
    pub events: Vec<Event>,
}

/// One thing that happened to a call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A call started.
    Start {
        /// What runs.
        info: CallInfo,
    },
    /// Progress (the latest status only: clients coalesce).
    Update {
        /// The pool.
        pool_id: u64,
        /// The call (numbered per pool).
        call_id: u64,
        /// Its numbers now.
        status: Status,
    },
    /// A task failed.
    TaskFailed {
        /// The pool.
        pool_id: u64,
        /// The call (numbered per pool).
        call_id: u64,
        /// The error, with where it happened.
        message: String,
    },
    /// Per-worker timings at the end of a call with insights enabled.
    Timings {
        /// The pool.
        pool_id: u64,
        /// The call (numbered per pool).
        call_id: u64,
        /// One entry per worker slot.
        workers: Vec<WorkerSummary>,
    },
    /// The call ended.
    Finish {
        /// The pool.
        pool_id: u64,
        /// The call (numbered per pool).
        call_id: u64,
        /// Its final numbers.
        status: Status,
        /// How it ended.
        outcome: Outcome,
    },
}

impl Event {
    /// The call the event belongs to: `(pool_id, call_id)`.
    pub fn call(&self) -> (u64, u64) {
        match self {
            Event::Start { info } => (info.pool_id, info.call_id),
            Event::Update {
                pool_id, call_id, ..
            }
            | Event::TaskFailed {
                pool_id, call_id, ..
            }
            | Event::Timings {
                pool_id, call_id, ..
            }
            | Event::Finish {
                pool_id, call_id, ..
            } => (*pool_id, *call_id),
        }
    }
}

/// One worker's raw timings, flattened to seconds for the page (the histogram is reduced to a
/// few quantiles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// The worker slot.
    pub worker: usize,
    /// Tasks completed.
    pub n_completed_tasks: u64,
    /// Seconds from asking for the worker to it being ready.
    pub start_up_s: f64,
    /// Seconds in `worker_init`.
    pub init_s: f64,
    /// Seconds waiting for work.
    pub waiting_s: f64,
    /// Seconds in the task function.
    pub working_s: f64,
    /// Seconds in `worker_exit`.
    pub exit_s: f64,
    /// Seconds moving data.
    pub data_transfer_s: f64,
    /// Mean task duration in seconds.
    pub task_mean_s: f64,
    /// Median task duration in seconds (when the histogram is usable).
    pub task_p50_s: Option<f64>,
    /// 99th percentile of task durations in seconds (when the histogram is usable).
    pub task_p99_s: Option<f64>,
    /// Longest task in seconds.
    pub task_max_s: f64,
    /// The slowest tasks, slowest first.
    pub slowest: Vec<SlowTaskSummary>,
}

/// One of a worker's slowest tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowTaskSummary {
    /// Its index in the call's input.
    pub task: u64,
    /// Seconds it ran.
    pub duration_s: f64,
    /// Its arguments, in `Debug` form.
    pub args: String,
}

impl From<&WorkerTimings> for WorkerSummary {
    fn from(t: &WorkerTimings) -> Self {
        let n = t.n_completed_tasks;
        // Mean and maximum come from the exact totals; the quantiles from the histogram, used
        // only when it agrees with the slowest task recorded (nanoseconds, as documented).
        let mean = if n > 0 {
            t.working.as_secs_f64() / n as f64
        } else {
            0.0
        };
        let max = t.slowest.first().map_or(0.0, |s| s.duration.as_secs_f64());
        let h = t.histogram();
        let h_max = h.max() as f64 / 1e9;
        let usable = !h.is_empty() && max > 0.0 && h_max > max * 0.5 && h_max < max * 2.0;
        let q = |p: f64| usable.then(|| h.value_at_quantile(p) as f64 / 1e9);
        let (p50, p99) = (q(0.5), q(0.99));
        WorkerSummary {
            worker: t.worker,
            n_completed_tasks: t.n_completed_tasks,
            start_up_s: t.start_up.as_secs_f64(),
            init_s: t.init.as_secs_f64(),
            waiting_s: t.waiting.as_secs_f64(),
            working_s: t.working.as_secs_f64(),
            exit_s: t.exit.as_secs_f64(),
            data_transfer_s: t.data_transfer.as_secs_f64(),
            task_mean_s: mean,
            task_p50_s: p50,
            task_p99_s: p99,
            task_max_s: max,
            slowest: t
                .slowest
                .iter()
                .map(|s| SlowTaskSummary {
                    task: s.task,
                    duration_s: s.duration.as_secs_f64(),
                    args: s.args.clone(),
                })
                .collect(),
        }
    }
}
