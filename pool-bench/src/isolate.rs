//! One fresh process per contender, workload and round: why, and how.
//!
//! Why: run one after the other in one process, contenders leave state behind that slows the
//! next one. The third session's harness timed rayon on `trivial` at 30–37 ms where the same
//! code took 18–23 ms alone; see BENCHMARKS.md ("Each contender in its own process") for what
//! was measured. Whatever a contender leaves (threads still winding down, a heap grown and
//! fragmented by 80 MB buffers, pages made copy-on-write by a fork, a full page cache), a fresh
//! process cannot inherit it.
//!
//! How (the protocol between the harness and its children):
//! 1. The harness computes the calibration and the serial reference once, itself.
//! 2. For each round, for each contender, it re-executes its own binary as
//!    `pool-bench --one CONTENDER WORKLOAD --runs 1 --n-jobs N --k-per-ms K --sizes JSON
//!    --expect CHECKSUM`, with stdin closed and stderr inherited.
//! 3. The child builds the workload's inputs, runs one checked, untimed warm-up and the timed
//!    run(s) ([`crate::runner::measure`]), and prints its [`Row`] as one line of JSON on stdout.
//! 4. The harness appends the child's times to the row; a child whose row is not `ok`, or which
//!    exits non-zero or prints no row, ends that row as `invalid` or `failed` with its reason.
//!
//! `pool-bench --one CONTENDER WORKLOAD` run by hand is the same measurement "alone"; without
//! `--expect` it computes the reference itself, without `--k-per-ms` it calibrates.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::contenders::{self, Contender};
use crate::results::{Row, Status};
use crate::runner::{Prepared, SLOW_ROW_RUNS, SLOW_ROW_S, measure, new_row, summarize};
use crate::workload::{KPerMs, Sizes, WorkloadKind, reference_checksum};

/// What one child measures.
#[derive(Debug, Clone)]
pub struct OneRun<'a> {
    /// Contender name, as in the report (`rayon`, `pool-fork`, ...).
    pub contender: &'a str,
    /// The workload.
    pub kind: WorkloadKind,
    /// Workload sizes.
    pub sizes: &'a Sizes,
    /// Workers.
    pub n_jobs: usize,
    /// Spin calibration.
    pub k_per_ms: KPerMs,
    /// The serial reference's checksum.
    pub expected: u64,
    /// Timed runs after the warm-up.
    pub runs: usize,
    /// MiB made resident in the measuring process first (`--ballast-mib`).
    pub ballast_mib: usize,
}

/// Child side: measures one contender on one workload in this process and returns its row.
pub fn run_here(one: &OneRun<'_>) -> Result<Row> {
    let contender = contenders::by_name(one.contender, one.n_jobs)?;
    if !contender.supports(one.kind) {
        bail!(
            "{} does not run the {} workload",
            one.contender,
            one.kind.name()
        );
    }
    let prepared = Prepared::new(one.kind, one.sizes, one.k_per_ms);
    Ok(measure(
        contender.as_ref(),
        &prepared,
        one.expected,
        one.runs,
    ))
}

/// Child side with defaults: the reference computed here when `expected` is `None`.
pub fn expected_or_reference(
    expected: Option<u64>,
    kind: WorkloadKind,
    sizes: &Sizes,
    k: KPerMs,
) -> u64 {
    expected.unwrap_or_else(|| reference_checksum(kind, sizes, k))
}

/// Parent side: runs `one` in a fresh child process of `exe` and returns the child's row.
pub fn run_in_child(exe: &Path, one: &OneRun<'_>) -> Result<Row> {
    let sizes = serde_json::to_string(one.sizes)?;
    let out = Command::new(exe)
        .args(["--one", one.contender, one.kind.name()])
        .args(["--runs", &one.runs.to_string()])
        .args(["--n-jobs", &one.n_jobs.to_string()])
        .args(["--k-per-ms", &one.k_per_ms.to_string()])
        .args(["--expect", &one.expected.to_string()])
        .args(["--sizes", &sizes])
        .args(["--ballast-mib", &one.ballast_mib.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {} --one", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
    let row = last.and_then(|l| serde_json::from_str::<Row>(l).ok());
    match (out.status.success(), row) {
        (true, Some(row)) => Ok(row),
        (_, Some(row)) if row.status != Status::Ok => Ok(row),
        (ok, _) => bail!(
            "child `--one {} {}` {} and printed no row{}",
            one.contender,
            one.kind.name(),
            if ok {
                "exited 0".to_string()
            } else {
                format!("ended with {}", out.status)
            },
            last.map(|l| format!(" (last line: {l:?})"))
                .unwrap_or_default()
        ),
    }
}

/// Parent side: every contender on `plan.kind`, `plan.runs` interleaved rounds, each round of
/// each contender in a fresh child (one warm-up and one timed run); `plan.contender` is not
/// used. Rows as [`crate::runner::measure_all`] makes them in one process.
pub fn measure_all_in_children(
    exe: &Path,
    contenders: &[&dyn Contender],
    plan: &OneRun<'_>,
) -> Vec<Row> {
    let (kind, expected, runs) = (plan.kind, plan.expected, plan.runs);
    let mut rows: Vec<Row> = contenders
        .iter()
        .map(|c| new_row(*c, kind, expected))
        .collect();
    let mut budget = vec![runs; rows.len()];
    for round in 1..=runs {
        for ((c, row), budget) in contenders.iter().zip(&mut rows).zip(&mut budget) {
            if row.status != Status::Ok || round > *budget {
                continue;
            }
            let name = c.name();
            let one = OneRun {
                contender: &name,
                runs: 1,
                ..plan.clone()
            };
            match run_in_child(exe, &one) {
                Ok(child) if child.status == Status::Ok => {
                    let t = child.times_s.first().copied().unwrap_or(0.0);
                    row.checksum = child.checksum;
                    row.times_s.extend(child.times_s);
                    if round == 1 && t > SLOW_ROW_S && runs > SLOW_ROW_RUNS {
                        *budget = SLOW_ROW_RUNS;
                        let cut = format!("{SLOW_ROW_RUNS} runs: a run took {t:.0} s");
                        row.note = Some(
                            row.note
                                .take()
                                .map_or(cut.clone(), |n| format!("{n}; {cut}")),
                        );
                    }
                }
                Ok(child) => {
                    row.status = child.status;
                    row.checksum = child.checksum;
                    row.error = child.error;
                }
                Err(e) => {
                    eprintln!("!!! FAILED: {name} on {}: {e:#}", kind.name());
                    row.status = Status::Failed;
                    row.error = Some(format!("{e:#}"));
                }
            }
        }
    }
    summarize(&mut rows);
    rows
}
