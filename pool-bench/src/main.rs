//! `pool-bench`: one command for the whole comparison (see `bench/README.md`).
//!
//! Exit codes: 0 all rows valid; 1 the harness itself failed; 2 some contender returned a wrong
//! checksum (its row is marked invalid in every report).

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use pool_bench::alone_check::{self, Check};
use pool_bench::calibrate::spin_k_per_ms;
use pool_bench::cli::Args;
use pool_bench::isolate::{OneRun, expected_or_reference, run_here};
use pool_bench::worker::{WORKER_ARG, worker_main};
use pool_bench::workload::WorkloadKind;
use pool_bench::{harness, report};

fn main() -> ExitCode {
    // The process-per-task baseline re-executes this binary: serve that first. Its workers make
    // no pool, so they skip `pool::entry()` and the fork server it starts: one more process per
    // task, whose exits (and their reaping by init) overlapped the next contender's rounds.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(WORKER_ARG) {
        return match worker_main(&argv[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pool-bench worker: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // pool's Spawn workers re-execute this binary and must be served before anything else runs.
    #[cfg(feature = "pool-contenders")]
    pool::entry();
    let args = Args::parse();
    if !args.one.is_empty() || args.check_alone.is_some() {
        return match one_or_check(&args) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pool-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match harness::run(&args) {
        Ok(outcome) => {
            print!("{}", report::markdown::render(&outcome.report));
            let invalid = outcome.report.invalid_rows().count();
            if invalid > 0 {
                eprintln!("!!! {invalid} row(s) returned wrong answers; see results.md");
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("pool-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--one CONTENDER WORKLOAD` (a row as JSON) or `--check-alone CONTENDER` (a summary).
fn one_or_check(args: &Args) -> anyhow::Result<String> {
    let sizes = args.sizes()?;
    let n_jobs = args
        .n_jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let k = args.k_per_ms.unwrap_or_else(spin_k_per_ms);
    let workload = |name: &str| {
        WorkloadKind::from_name(name).with_context(|| format!("unknown workload {name:?}"))
    };
    if let [contender, name] = args.one.as_slice() {
        let kind = workload(name)?;
        let one = OneRun {
            contender,
            kind,
            sizes: &sizes,
            n_jobs,
            k_per_ms: k,
            expected: expected_or_reference(args.expect, kind, &sizes, k),
            runs: args.runs.unwrap_or(if args.quick { 3 } else { 5 }).max(1),
            ballast_mib: args.ballast_mib,
        };
        let ballast = harness::resident_ballast(args.ballast_mib);
        let row = run_here(&one)?;
        drop(ballast);
        return Ok(serde_json::to_string(&row)?);
    }
    let contender = args.check_alone.clone().unwrap_or_default();
    let [name] = args.only.as_slice() else {
        bail!("--check-alone needs one workload: --only WORKLOAD");
    };
    let check = Check {
        contender,
        kind: workload(name)?,
        sizes,
        n_jobs,
        k_per_ms: k,
        rounds: args.runs.unwrap_or(9).max(1),
    };
    alone_check::run(&std::env::current_exe()?, &check)
}
