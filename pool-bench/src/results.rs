//! The result of one harness run, as written to `results.json` and read by the reports.

use serde::{Deserialize, Serialize};

use crate::stats::Summary;
use crate::workload::Sizes;

/// Name of the contender every ratio is first taken against: the in-process ceiling.
pub const RAYON: &str = "rayon";
/// Name of the contender every ratio is second taken against.
pub const MPIRE: &str = "mpire";

/// Whether a row's timings count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Checksums matched the reference on every run; the timings count.
    Ok,
    /// A checksum differed from the reference: the timings are void.
    Invalid,
    /// The contender failed (error, crash); no timings.
    Failed,
    /// Not run (e.g. `--skip-python`, or Python unavailable).
    Skipped,
}

/// One contender on one workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Contender name, e.g. `rayon`, `mpire`.
    pub contender: String,
    /// `rust` or `python`.
    pub language: String,
    /// Whether the timings count.
    pub status: Status,
    /// Wall time of each timed run, in seconds (after an untimed, checked warm-up run).
    pub times_s: Vec<f64>,
    /// Median and range of `times_s`, when there are timings.
    pub summary: Option<Summary>,
    /// Checksum the contender returned (first differing one, if any differed).
    pub checksum: Option<u64>,
    /// Checksum the serial reference computed for the same work.
    pub expected_checksum: u64,
    /// `median / rayon's median` on this workload.
    pub ratio_vs_rayon: Option<f64>,
    /// `median / MPIRE's median` on this workload.
    pub ratio_vs_mpire: Option<f64>,
    /// How this contender runs this workload, when not the obvious way.
    pub note: Option<String>,
    /// What went wrong, for `invalid` and `failed` rows.
    pub error: Option<String>,
}

/// All contenders on one workload.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    /// Workload name, e.g. `cpu-1ms`.
    pub workload: String,
    /// One line on what it does.
    pub description: String,
    /// One row per contender.
    pub rows: Vec<Row>,
}

/// Iterations per millisecond of the `spin` kernel, per language.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Measured by the Rust harness.
    pub rust_k_per_ms: u64,
    /// Used by the Python peers (measured by them, or Rust's with `--python-work same-iterations`).
    pub python_k_per_ms: Option<u64>,
    /// `same-time` or `same-iterations`.
    pub python_work: String,
}

/// A whole harness run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `pool-bench <version>`.
    pub generator: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix_s: u64,
    /// Whether `--quick` sizes were used.
    pub quick: bool,
    /// Timed runs per contender and workload.
    pub runs: usize,
    /// Workers (threads or processes) every contender used.
    pub n_jobs: usize,
    /// Machine facts.
    pub machine: Machine,
    /// Python and MPIRE versions, when the peers ran.
    pub python: Option<PythonInfo>,
    /// Spin-kernel speeds.
    pub calibration: Calibration,
    /// Workload sizes.
    pub sizes: Sizes,
    /// One entry per workload run.
    pub workloads: Vec<WorkloadResult>,
}

/// Where the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `std::env::consts::OS`.
    pub os: String,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// CPUs available to this process.
    pub cpus: usize,
    /// First `model name` line of `/proc/cpuinfo`, when there is one.
    pub cpu_model: Option<String>,
    /// One-minute load average when the run started: above ~0.5 something else was running,
    /// and every figure is noisier for it.
    pub load_before: Option<f64>,
    /// One-minute load average when the run ended (includes the benchmark's own load).
    pub load_after: Option<f64>,
}

impl Machine {
    /// Facts about this machine.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        });
        Self {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            load_before: Self::load_average(),
            load_after: None,
        }
    }

    /// The one-minute load average from `/proc/loadavg`, when there is one.
    pub fn load_average() -> Option<f64> {
        std::fs::read_to_string("/proc/loadavg")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

/// Versions the Python peers reported.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PythonInfo {
    /// `sys.version`, first word.
    pub python: String,
    /// `mpire` package version.
    pub mpire: String,
    /// `numpy` package version.
    pub numpy: String,
}

impl Report {
    /// Rows whose timings do not count because a checksum differed.
    pub fn invalid_rows(&self) -> impl Iterator<Item = (&WorkloadResult, &Row)> {
        self.workloads
            .iter()
            .flat_map(|w| w.rows.iter().map(move |r| (w, r)))
            .filter(|(_, r)| r.status == Status::Invalid)
    }

    /// Fills in each row's ratios against rayon and MPIRE on the same workload.
    pub fn compute_ratios(&mut self) {
        for w in &mut self.workloads {
            let median_of = |name: &str| {
                w.rows
                    .iter()
                    .find(|r| r.contender == name && r.status == Status::Ok)
                    .and_then(|r| r.summary)
                    .map(|s| s.median_s)
            };
            let (rayon, mpire) = (median_of(RAYON), median_of(MPIRE));
            for r in &mut w.rows {
                let median = r
                    .summary
                    .filter(|_| r.status == Status::Ok)
                    .map(|s| s.median_s);
                r.ratio_vs_rayon = median.zip(rayon).map(|(m, b)| m / b);
                r.ratio_vs_mpire = median.zip(mpire).map(|(m, b)| m / b);
            }
        }
    }
}
