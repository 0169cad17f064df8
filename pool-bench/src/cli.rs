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
}
