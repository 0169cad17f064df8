//! Worker insights for `pool`: where the workers' time went, as a value, a table and JSON.
//!
//! The pool records raw [`WorkerTimings`] per worker when built with `enable_insights(true)`;
//! [`Insights::from_timings`] turns them into MPIRE's statistics, under MPIRE's names, plus
//! task-duration percentiles (from `hdrhistogram`) and the time spent moving data.
//!
//! ```
//! use pool_core::WorkerTimings;
//! use pool_insights::Insights;
//! use std::time::Duration;
//!
//! let mut w = WorkerTimings::new(0);
//! w.n_completed_tasks = 4;
//! w.working = Duration::from_millis(300);
//! w.waiting = Duration::from_millis(100);
//! let insights = Insights::from_timings(&[w]);
//! assert!((insights.working_ratio - 0.75).abs() < 1e-9);
//! println!("{insights}"); // the table
//! let json = insights.to_json();
//! assert!(json.contains("\"total_working_time\":0.3"));
//! ```
//!
//! # JSON schema (version 1)
//! Every duration is in seconds (`f64`); per-worker lists are indexed by worker id.
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `schema_version` | int | `1` |
//! | `n_workers` | int | worker slots |
//! | `n_completed_tasks` | list of int | tasks completed, per worker |
//! | `worker_locations` | list of string or null | where each worker ran (MPI: rank and host); absent when unknown |
//! | `total_<phase>_time` | float | sum over workers, for each phase below |
//! | `total_time` | float | sum of all phases' totals |
//! | `<phase>_time` | list of float | per worker |
//! | `<phase>_time_mean`, `<phase>_time_std` | float | over workers (population std) |
//! | `<phase>_ratio` | float | `total_<phase>_time / total_time` (0 when nothing ran) |
//! | `top_5_max_task_durations` | list of float | the slowest tasks, slowest first |
//! | `top_5_max_task_args` | list of string | their arguments (`Debug` form), same order |
//! | `top_5_max_task_ids` | list of int | their index in their call's input, same order |
//! | `top_5_max_task_workers` | list of int | the worker that ran each, same order |
//! | `task_duration_percentiles` | object | all tasks: `count`, `mean`, `p50`, `p90`, `p99`, `max` |
//! | `worker_task_duration_percentiles` | list of object | the same, per worker |
//!
//! Phases: `start_up` (from the pool asking for a worker to the worker being ready), `init`
//! (`worker_init`), `waiting` (for work), `working` (in the task function), `exit`
//! (`worker_exit`) and `data_transfer` (serializing and copying arguments and results; next to
//! nothing on threads).

mod table;

use std::fmt;

use hdrhistogram::Histogram;
use pool_core::WorkerTimings;
use serde::{Deserialize, Serialize};

/// Task-duration statistics (seconds), from a histogram with 3 significant figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Tasks measured.
    pub count: u64,
    /// Mean duration.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The longest task.
    pub max: f64,
}

impl Percentiles {
    /// Statistics of a histogram of nanoseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let s = |ns: u64| ns as f64 / 1e9;
        Percentiles {
            count: h.len(),
            mean: h.mean() / 1e9,
            p50: s(h.value_at_quantile(0.50)),
            p90: s(h.value_at_quantile(0.90)),
            p99: s(h.value_at_quantile(0.99)),
            max: s(h.max()),
        }
    }
}

/// Insights of a pool's calls: MPIRE's `get_insights()` as a typed value.
///
/// Serializes to the JSON described in the [crate docs](crate); [`fmt::Display`] is a table
/// (what MPIRE's `print_insights()` prints, see [`Insights::print`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Insights {
    /// Version of this layout (1).
    pub schema_version: u32,
    /// Worker slots.
    pub n_workers: usize,
    /// Tasks completed per worker.
    pub n_completed_tasks: Vec<u64>,
    /// Where each worker ran, when its back end says (MPI: rank and host); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_locations: Vec<Option<String>>,

    /// Start-up time summed over workers.
    pub total_start_up_time: f64,
    /// `worker_init` time summed over workers.
    pub total_init_time: f64,
    /// Waiting time summed over workers.
    pub total_waiting_time: f64,
    /// Working time summed over workers.
    pub total_working_time: f64,
    /// `worker_exit` time summed over workers.
    pub total_exit_time: f64,
    /// Data-transfer time summed over workers.
    pub total_data_transfer_time: f64,
    /// All of the above.
    pub total_time: f64,

    /// Start-up time per worker.
    pub start_up_time: Vec<f64>,
    /// Mean over workers.
    pub start_up_time_mean: f64,
    /// Standard deviation over workers.
    pub start_up_time_std: f64,
    /// Share of `total_time`.
    pub start_up_ratio: f64,

    /// `worker_init` time per worker.
    pub init_time: Vec<f64>,
    /// Mean over workers.
    pub init_time_mean: f64,
    /// Standard deviation over workers.
    pub init_time_std: f64,
    /// Share of `total_time`.
    pub init_ratio: f64,

    /// Waiting time per worker.
    pub waiting_time: Vec<f64>,
    /// Mean over workers.
    pub waiting_time_mean: f64,
    /// Standard deviation over workers.
    pub waiting_time_std: f64,
    /// Share of `total_time`.
    pub waiting_ratio: f64,

    /// Working time per worker.
    pub working_time: Vec<f64>,
    /// Mean over workers.
    pub working_time_mean: f64,
    /// Standard deviation over workers.
    pub working_time_std: f64,
    /// Share of `total_time`.
    pub working_ratio: f64,

    /// `worker_exit` time per worker.
    pub exit_time: Vec<f64>,
    /// Mean over workers.
    pub exit_time_mean: f64,
    /// Standard deviation over workers.
    pub exit_time_std: f64,
    /// Share of `total_time`.
    pub exit_ratio: f64,

    /// Data-transfer time per worker.
    pub data_transfer_time: Vec<f64>,
    /// Mean over workers.
    pub data_transfer_time_mean: f64,
    /// Standard deviation over workers.
    pub data_transfer_time_std: f64,
    /// Share of `total_time`.
    pub data_transfer_ratio: f64,

    /// Durations of the slowest tasks, slowest first.
    pub top_5_max_task_durations: Vec<f64>,
    /// Their arguments (`Debug` form).
    pub top_5_max_task_args: Vec<String>,
    /// Their indices in their call's input.
    pub top_5_max_task_ids: Vec<u64>,
    /// The workers that ran them.
    pub top_5_max_task_workers: Vec<usize>,

    /// Task durations over all workers.
    pub task_duration_percentiles: Percentiles,
    /// Task durations per worker.
    pub worker_task_duration_percentiles: Vec<Percentiles>,
}

/// Per-worker values, their sum, mean and population standard deviation.
fn stats(values: Vec<f64>) -> (Vec<f64>, f64, f64, f64) {
    let n = values.len();
    let total: f64 = values.iter().sum();
    if n == 0 {
        return (values, 0.0, 0.0, 0.0);
    }
    let mean = total / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    (values, total, mean, var.sqrt())
}

fn ratio(part: f64, total: f64) -> f64 {
    if total > 0.0 { part / total } else { 0.0 }
}

impl Insights {
    /// Computes insights from raw timings, one entry per worker slot.
    pub fn from_timings(timings: &[WorkerTimings]) -> Self {
        let mut t: Vec<&WorkerTimings> = timings.iter().collect();
        t.sort_by_key(|w| w.worker);
        let phase = |f: fn(&WorkerTimings) -> std::time::Duration| {
            stats(t.iter().map(|w| f(w).as_secs_f64()).collect())
        };
        let (start_up_time, total_start_up_time, start_up_time_mean, start_up_time_std) =
            phase(|w| w.start_up);
        let (init_time, total_init_time, init_time_mean, init_time_std) = phase(|w| w.init);
        let (waiting_time, total_waiting_time, waiting_time_mean, waiting_time_std) =
            phase(|w| w.waiting);
        let (working_time, total_working_time, working_time_mean, working_time_std) =
            phase(|w| w.working);
        let (exit_time, total_exit_time, exit_time_mean, exit_time_std) = phase(|w| w.exit);
        let (
            data_transfer_time,
            total_data_transfer_time,
            data_transfer_time_mean,
            data_transfer_time_std,
        ) = phase(|w| w.data_transfer);
        let total_time = total_start_up_time
            + total_init_time
            + total_waiting_time
            + total_working_time
            + total_exit_time
            + total_data_transfer_time;

        let mut slowest: Vec<(usize, &pool_core::SlowTask)> = t
            .iter()
            .flat_map(|w| w.slowest.iter().map(move |s| (w.worker, s)))
            .collect();
        slowest.sort_by_key(|(_, s)| std::cmp::Reverse(s.duration));
        slowest.truncate(pool_core::TOP_TASKS);

        let mut all: Option<Histogram<u64>> = None;
        let mut per_worker = Vec::with_capacity(t.len());
        for w in &t {
            let h = w.histogram();
            per_worker.push(Percentiles::from_histogram(&h));
            match all.as_mut() {
                // `a` resizes to take longer tasks of other workers, so this cannot fail.
                Some(a) => {
                    let _ = a.add(&h);
                }
                None => {
                    let mut h = h;
                    h.auto(true);
                    all = Some(h);
                }
            }
        }

        Insights {
            schema_version: 1,
            n_workers: t.len(),
            n_completed_tasks: t.iter().map(|w| w.n_completed_tasks).collect(),
            worker_locations: if t.iter().any(|w| w.location.is_some()) {
                t.iter().map(|w| w.location.clone()).collect()
            } else {
                Vec::new()
            },
            total_start_up_time,
            total_init_time,
            total_waiting_time,
            total_working_time,
            total_exit_time,
            total_data_transfer_time,
            total_time,
            start_up_time,
            start_up_time_mean,
            start_up_time_std,
            start_up_ratio: ratio(total_start_up_time, total_time),
            init_time,
            init_time_mean,
            init_time_std,
            init_ratio: ratio(total_init_time, total_time),
            waiting_time,
            waiting_time_mean,
            waiting_time_std,
            waiting_ratio: ratio(total_waiting_time, total_time),
            working_time,
            working_time_mean,
            working_time_std,
            working_ratio: ratio(total_working_time, total_time),
            exit_time,
            exit_time_mean,
            exit_time_std,
            exit_ratio: ratio(total_exit_time, total_time),
            data_transfer_time,
            data_transfer_time_mean,
            data_transfer_time_std,
            data_transfer_ratio: ratio(total_data_transfer_time, total_time),
            top_5_max_task_durations: slowest
                .iter()
                .map(|(_, s)| s.duration.as_secs_f64())
                .collect(),
            top_5_max_task_args: slowest.iter().map(|(_, s)| s.args.clone()).collect(),
            top_5_max_task_ids: slowest.iter().map(|(_, s)| s.task).collect(),
            top_5_max_task_workers: slowest.iter().map(|(w, _)| *w).collect(),
            task_duration_percentiles: all
                .as_ref()
                .map(Percentiles::from_histogram)
                .unwrap_or_default(),
            worker_task_duration_percentiles: per_worker,
        }
    }

    /// Tasks completed by all workers.
    pub fn total_completed_tasks(&self) -> u64 {
        self.n_completed_tasks.iter().sum()
    }

    /// The JSON of the [schema](crate) on one line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("insights always serialize")
    }

    /// The JSON of the [schema](crate), indented.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("insights always serialize")
    }

    /// Prints the table to standard output (MPIRE's `print_insights()`).
    pub fn print(&self) {
        println!("{self}");
    }
}

impl fmt::Display for Insights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        table::write(self, f)
    }
}
