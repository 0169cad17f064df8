//! `pool-bench --check-alone CONTENDER --only WORKLOAD`: does the harness time a contender as
//! fast as it runs alone?
//!
//! Each round runs three commands, in an order that rotates from round to round, each a fresh
//! process of this binary:
//! - `alone`: `pool-bench --one CONTENDER WORKLOAD --runs 1` (the contender and nothing else);
//! - `harness`: the harness on that workload (`--only WORKLOAD --runs 1 --skip-python`), every
//!   contender, reading CONTENDER's time from its `results.json`;
//! - `in-process`: the same with `--in-process`, every contender in one process (the harness
//!   before issue #17).
//!
//! All three get the same sizes, workers and calibration. It prints every round, then the
//! medians and the ratios of the two harness variants to `alone`: within noise of 1.00× means
//! the harness measures the contender as it runs alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::results::{Row, Status};
use crate::stats::Summary;
use crate::workload::{Sizes, WorkloadKind};

/// What to check.
#[derive(Debug, Clone)]
pub struct Check {
    /// Contender name.
    pub contender: String,
    /// Workload.
    pub kind: WorkloadKind,
    /// Sizes.
    pub sizes: Sizes,
    /// Workers.
    pub n_jobs: usize,
    /// Spin calibration (shared by every command).
    pub k_per_ms: u64,
    /// Interleaved rounds.
    pub rounds: usize,
}

const VARIANTS: [&str; 3] = ["alone", "harness", "in-process"];

/// Runs the check and returns the printed summary (also printed round by round on stderr).
pub fn run(exe: &Path, check: &Check) -> Result<String> {
    let out_dir = std::env::temp_dir().join(format!("pool-bench-check-{}", std::process::id()));
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..check.rounds {
        for i in 0..VARIANTS.len() {
            let v = (round + i) % VARIANTS.len();
            let t = match VARIANTS[v] {
                "alone" => alone(exe, check)?,
                variant => in_harness(exe, check, &out_dir, variant == "in-process")?,
            };
            eprintln!(
                "round {:>2}  {:<10} {:>10.2} ms",
                round + 1,
                VARIANTS[v],
                t * 1e3
            );
            times[v].push(t);
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    let median = |t: &[f64]| Summary::of(t).map_or(f64::NAN, |s| s.median_s);
    let base = median(&times[0]);
    let mut s = format!(
        "{} on {}, {} interleaved rounds, medians:\n",
        check.contender,
        check.kind.name(),
        check.rounds
    );
    for (name, t) in VARIANTS.iter().zip(&times) {
        let m = median(t);
        s += &format!(
            "{name:>10}: {:>10.2} ms  ({:.2}× alone)\n",
            m * 1e3,
            m / base
        );
    }
    Ok(s)
}

fn common_args(cmd: &mut Command, check: &Check) -> Result<()> {
    cmd.args(["--n-jobs", &check.n_jobs.to_string()])
        .args(["--k-per-ms", &check.k_per_ms.to_string()])
        .args(["--sizes", &serde_json::to_string(&check.sizes)?])
        .args(["--runs", "1"])
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    Ok(())
}

fn timed_run(row: &Row, what: &str) -> Result<f64> {
    if row.status != Status::Ok {
        bail!("{what}: row {:?}: {:?}", row.status, row.error);
    }
    row.times_s
        .first()
        .copied()
        .with_context(|| format!("{what}: no timed run"))
}

fn alone(exe: &Path, check: &Check) -> Result<f64> {
    let mut cmd = Command::new(exe);
    cmd.args(["--one", &check.contender, check.kind.name()]);
    common_args(&mut cmd, check)?;
    let out = cmd.output().context("running --one")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let row: Row = serde_json::from_str(line)
        .with_context(|| format!("--one printed no row ({})", out.status))?;
    timed_run(&row, "alone")
}

fn in_harness(exe: &Path, check: &Check, out_dir: &PathBuf, in_process: bool) -> Result<f64> {
    let mut cmd = Command::new(exe);
    cmd.args(["--only", check.kind.name(), "--skip-python", "--out"])
        .arg(out_dir)
        .stdout(Stdio::null());
    if in_process {
        cmd.arg("--in-process");
    }
    common_args(&mut cmd, check)?;
    let status = cmd.status().context("running the harness")?;
    if !status.success() {
        bail!("the harness ended with {status}");
    }
    let json = std::fs::read_to_string(out_dir.join("results.json"))?;
    let report: serde_json::Value = serde_json::from_str(&json)?;
    let row = report["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["workload"] == check.kind.name())
        .flat_map(|w| w["rows"].as_array().into_iter().flatten())
        .find(|r| r["contender"] == check.contender.as_str())
        .with_context(|| format!("no {} row in results.json", check.contender))?;
    timed_run(&serde_json::from_value(row.clone())?, "harness")
}
