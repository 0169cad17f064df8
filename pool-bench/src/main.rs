//! `pool-bench`: one command for the whole comparison (see `bench/README.md`).
//!
//! Exit codes: 0 all rows valid; 1 the harness itself failed; 2 some contender returned a wrong
//! checksum (its row is marked invalid in every report).

use std::process::ExitCode;

use clap::Parser;
use pool_bench::cli::Args;
use pool_bench::worker::{WORKER_ARG, worker_main};
use pool_bench::{harness, report};

fn main() -> ExitCode {
    // pool's Spawn workers re-execute this binary and must be served before anything else runs.
    #[cfg(feature = "pool-contenders")]
    pool::entry();
    // The process-per-task baseline re-executes this binary: serve that before anything else.
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
    let args = Args::parse();
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
