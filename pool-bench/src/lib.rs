//! Benchmark harness for pool: the same workloads side by side with rayon, threads, a process
//! per task, MPIRE and `multiprocessing.Pool`, in one run on one machine (issue #5).
//!
//! Why one run: timings on these machines vary 2–3× between runs, so only side-by-side numbers
//! mean anything. Why checksums: a fast wrong answer is not a result; every contender's output is
//! checked against a serial reference before its timings count.
//!
//! Layout: [`kernels`] (the arithmetic, mirrored in `bench/peers.py`), [`workload`] (sizes,
//! inputs, references), [`contenders`] (one file per Rust contender), [`runner`] (warm-up,
//! checks, timing), [`python`] (the venv and the peers), [`report`] (JSON, Markdown, SVG),
//! [`harness`] (the whole run, driven by [`cli::Args`]).

pub mod alone_check;
pub mod calibrate;
pub mod cli;
pub mod contenders;
pub mod harness;
pub mod isolate;
pub mod kernels;
pub mod python;
pub mod report;
pub mod results;
pub mod runner;
pub mod stats;
pub mod worker;
pub mod workload;
