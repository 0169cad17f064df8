//! Runs the Python peers (MPIRE, `multiprocessing.Pool`) through `bench/peers.py`.
//!
//! The harness owns the whole Python side: it makes `bench/.venv` with `bench/setup_venv.sh`
//! (idempotent; a ready venv costs one `import` check), writes the workload parameters to a JSON
//! file, runs the script, and checks every checksum it prints against the Rust serial reference
//! computed for the iteration counts Python actually used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::results::{PythonInfo, Row, Status};
use crate::stats::Summary;
use crate::workload::{KPerMs, Sizes, WorkloadKind, reference_checksum};

/// The Python contenders, in report order. `python-serial` (one interpreter, no pool) gives the
/// Python side's scale, as `serial` does for Rust; it has no `startup` row.
pub const CONTENDERS: [&str; 3] = ["mpire", "multiprocessing", "python-serial"];

/// Whether a Python contender runs a workload (the uneven mixes of issue #13 are Rust-only).
pub fn runs_workload(contender: &str, kind: WorkloadKind) -> bool {
    match kind {
        kind if kind.uneven_mix().is_some() => false,
        WorkloadKind::Startup => contender != "python-serial",
        _ => true,
    }
}

/// How the Python peers size their CPU work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PythonWork {
    /// Python calibrates its own iterations per ms, so a "1 ms task" takes 1 ms in Python too
    /// (the comparison is of pools, not of languages).
    SameTime,
    /// Python runs exactly Rust's iteration counts (tasks ~100× longer in CPython).
    SameIterations,
}

impl PythonWork {
    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::SameTime => "same-time",
            Self::SameIterations => "same-iterations",
        }
    }
}

#[derive(Serialize)]
struct Params<'a> {
    n_jobs: usize,
    runs: usize,
    start_method: &'static str,
    k_per_ms: Option<KPerMs>,
    workloads: Vec<&'static str>,
    contenders: [&'static str; 3],
    sizes: &'a Sizes,
    skewed_us: Vec<u64>,
}

#[derive(Deserialize)]
struct Output {
    python: String,
    mpire: String,
    numpy: String,
    k_per_ms: KPerMs,
    results: BTreeMap<String, BTreeMap<String, Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    times_s: Vec<f64>,
    checksums: Vec<u64>,
    error: Option<String>,
    note: Option<String>,
}

/// What the Python peers produced: versions, calibration, and one row per contender per workload.
#[derive(Debug)]
pub struct PythonResults {
    /// Interpreter and package versions.
    pub info: PythonInfo,
    /// Iterations per ms the peers used.
    pub k_per_ms: KPerMs,
    /// Rows keyed by workload name.
    pub rows: BTreeMap<String, Vec<Row>>,
}

/// Makes `bench/.venv` (or `$POOL_BENCH_VENV`) ready, creating it on first use, and returns
/// its interpreter.
pub fn ensure_venv(bench_dir: &Path) -> Result<PathBuf> {
    let script = bench_dir.join("setup_venv.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}); see its message above",
            script.display()
        );
    }
    let venv =
        std::env::var_os("POOL_BENCH_VENV").map_or_else(|| bench_dir.join(".venv"), PathBuf::from);
    Ok(venv.join("bin/python"))
}

/// Runs `peers.py` on `workloads` and checks its checksums.
pub fn run_peers(
    bench_dir: &Path,
    out_dir: &Path,
    workloads: &[WorkloadKind],
    sizes: &Sizes,
    n_jobs: usize,
    runs: usize,
    fixed_k: Option<KPerMs>,
) -> Result<PythonResults> {
    let python = ensure_venv(bench_dir)?;
    let params = Params {
        n_jobs,
        runs,
        start_method: "fork",
        k_per_ms: fixed_k,
        workloads: workloads.iter().map(|w| w.name()).collect(),
        contenders: CONTENDERS,
        sizes,
        skewed_us: sizes.skewed_micros(),
    };
    let params_path = out_dir.join("python-params.json");
    std::fs::write(&params_path, serde_json::to_vec(&params)?)
        .with_context(|| format!("writing {}", params_path.display()))?;
    eprintln!("== python peers: {}", CONTENDERS.join(", "));
    let out = Command::new(&python)
        .arg(bench_dir.join("peers.py"))
        .arg("--params")
        .arg(&params_path)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!("peers.py failed ({}); see its output above", out.status);
    }
    let output: Output =
        serde_json::from_slice(&out.stdout).context("parsing the JSON printed by peers.py")?;

    let mut rows = BTreeMap::new();
    for &kind in workloads {
        let expected = reference_checksum(kind, sizes, output.k_per_ms);
        let entries = output.results.get(kind.name());
        let list = CONTENDERS
            .iter()
            .filter(|c| runs_workload(c, kind))
            .map(|&c| check_entry(c, kind, expected, entries.and_then(|e| e.get(c))))
            .collect();
        rows.insert(kind.name().to_string(), list);
    }
    Ok(PythonResults {
        info: PythonInfo {
            python: output.python,
            mpire: output.mpire,
            numpy: output.numpy,
        },
        k_per_ms: output.k_per_ms,
        rows,
    })
}

/// A row saying why a Python contender has no timings.
pub fn skipped_row(contender: &str, expected: u64, why: &str, status: Status) -> Row {
    Row {
        contender: contender.into(),
        language: "python".into(),
        status,
        times_s: Vec::new(),
        summary: None,
        checksum: None,
        expected_checksum: expected,
        ratio_vs_rayon: None,
        ratio_vs_mpire: None,
        note: None,
        error: Some(why.into()),
    }
}

fn check_entry(contender: &str, kind: WorkloadKind, expected: u64, entry: Option<&Entry>) -> Row {
    let Some(entry) = entry else {
        return skipped_row(
            contender,
            expected,
            "peers.py returned no result",
            Status::Failed,
        );
    };
    let mut row = skipped_row(contender, expected, "", Status::Ok);
    row.note = entry.note.clone();
    row.error = None;
    if let Some(err) = &entry.error {
        eprintln!("!!! FAILED: {contender} on {}: {err}", kind.name());
        row.status = Status::Failed;
        row.error = Some(err.clone());
        return row;
    }
    if let Some((run, &bad)) = entry
        .checksums
        .iter()
        .enumerate()
        .find(|(_, c)| **c != expected)
    {
        let msg = format!(
            "checksum mismatch on run {run} (0 = warm-up): got {bad:#018x}, expected {expected:#018x}"
        );
        eprintln!(
            "\n!!! INVALID: {contender} on {}: {msg}; its timings are void\n",
            kind.name()
        );
        row.status = Status::Invalid;
        row.checksum = Some(bad);
        row.error = Some(msg);
        return row;
    }
    if entry.checksums.is_empty() || entry.times_s.is_empty() {
        row.status = Status::Failed;
        row.error = Some("no runs reported".into());
        return row;
    }
    row.checksum = entry.checksums.first().copied();
    row.times_s = entry.times_s.clone();
    row.summary = Summary::of(&row.times_s);
    row
}

#[cfg(test)]
mod tests {
    use super::{Entry, check_entry};
    use crate::results::Status;
    use crate::workload::WorkloadKind;

    fn entry(checksums: Vec<u64>, error: Option<&str>) -> Entry {
        Entry {
            times_s: vec![0.1; checksums.len().saturating_sub(1)],
            checksums,
            error: error.map(String::from),
            note: None,
        }
    }

    #[test]
    fn matching_checksums_count() {
        let row = check_entry(
            "mpire",
            WorkloadKind::Trivial,
            7,
            Some(&entry(vec![7, 7, 7], None)),
        );
        assert_eq!(row.status, Status::Ok);
        assert_eq!(row.times_s.len(), 2);
        assert!(row.summary.is_some());
    }

    #[test]
    fn one_wrong_checksum_voids_the_row() {
        let row = check_entry(
            "mpire",
            WorkloadKind::Trivial,
            7,
            Some(&entry(vec![7, 8, 7], None)),
        );
        assert_eq!(row.status, Status::Invalid);
        assert!(row.times_s.is_empty() && row.summary.is_none());
        assert_eq!(row.checksum, Some(8));
    }

    #[test]
    fn errors_and_missing_entries_fail() {
        let row = check_entry(
            "mpire",
            WorkloadKind::Trivial,
            7,
            Some(&entry(vec![], Some("boom"))),
        );
        assert_eq!(row.status, Status::Failed);
        assert_eq!(
            check_entry("mpire", WorkloadKind::Trivial, 7, None).status,
            Status::Failed
        );
    }
}
