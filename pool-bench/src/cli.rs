//! Command-line flags of `pool-bench`.

use std::path::PathBuf;

use clap::Parser;

use crate::python::PythonWork;

/// Runs every workload on every contender, checks their answers, and writes
/// results.json, results.md and results.svg.
#[derive(Debug, Clone, Parser)]
#[command(name = "pool-bench", version)]
pub struct Args {
    /// Small sizes and 3 runs: the whole comparison in under two minutes on two cores.
    #[arg(long)]
    pub quick: bool,

    /// Where to write the results [default: WORKSPACE/bench/results].
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Timed runs per contender and workload, after one untimed checked warm-up
    /// [default: 3 with --quick, else 5].
    #[arg(long)]
    pub runs: Option<usize>,

    /// Run only these workloads (repeat or comma-separate): trivial, cpu-1ms, skewed, uneven,
    /// lognormal, stateful, expensive-init, payload, startup.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,

    /// Run only these Rust contenders (repeat or comma-separate), e.g. rayon,pool-threading.
    #[arg(long, value_delimiter = ',')]
    pub contenders: Vec<String>,

    /// Skip the Python peers (MPIRE, multiprocessing) and the venv.
    #[arg(long)]
    pub skip_python: bool,

    /// Workers per contender [default: number of CPUs].
    #[arg(long)]
    pub n_jobs: Option<usize>,

    /// How Python sizes CPU work: same-time (its own calibration) or same-iterations as Rust.
    #[arg(long, value_enum, default_value = "same-time")]
    pub python_work: PythonWork,

    /// The `bench/` directory holding peers.py and setup_venv.sh [default: WORKSPACE/bench].
    #[arg(long)]
    pub bench_dir: Option<PathBuf>,

    /// Make the harness process this many MiB bigger (touched, resident) before the Rust
    /// contenders run, to see how start-up grows with the parent (fork copies page tables;
    /// forkserver and spawn do not). [default: 0]
    #[arg(long, default_value_t = 0)]
    pub ballast_mib: usize,

    /// Measure one contender on one workload in this process, alone, and print its row as JSON
    /// (what the harness runs in a fresh child per contender, workload and round).
    #[arg(long, num_args = 2, value_names = ["CONTENDER", "WORKLOAD"])]
    pub one: Vec<String>,

    /// Run every Rust contender in the harness's own process, one after the other, as before
    /// issue #17 (slower rows for whoever runs after others; kept for `--check-alone`).
    #[arg(long)]
    pub in_process: bool,

    /// Interleave rounds of CONTENDER measured alone (`--one`), in the harness, and in the
    /// harness with `--in-process`, on the `--only` workload; print medians and ratios.
    #[arg(long, value_name = "CONTENDER")]
    pub check_alone: Option<String>,

    /// Spin iterations per ms to use instead of calibrating (children get the parent's).
    #[arg(long)]
    pub k_per_ms: Option<u64>,

    /// The serial reference's checksum, when the caller has computed it (`--one`).
    #[arg(long, hide = true)]
    pub expect: Option<u64>,

    /// Workload sizes as JSON (all fields of `Sizes`), instead of --quick's or the full ones.
    #[arg(long, hide = true)]
    pub sizes: Option<String>,
}

impl Args {
    /// The sizes these flags ask for.
    pub fn sizes(&self) -> anyhow::Result<crate::workload::Sizes> {
        use anyhow::Context;
        Ok(match &self.sizes {
            Some(json) => serde_json::from_str(json).context("--sizes is not a Sizes JSON")?,
            None if self.quick => crate::workload::Sizes::quick(),
            None => crate::workload::Sizes::full(),
        })
    }
}
