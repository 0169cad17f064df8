//! Nested pools with one bar each, stacked by position (MPIRE's "Progress bar position").
//!
//! The outer pool's bar is at position 0; each outer worker runs an inner pool per job, whose
//! bar takes line `worker_id + 1`. When a job ends, the next job of the same worker reuses
//! its line. The outer workers are processes (`StartMethod::Fork`): the inner pools of a forked
//! worker report their progress to the parent, which draws every bar on one board, exactly as
//! with threads (`cargo run --example nested_bars -- threads`). Run it in a terminal to see the
//! bars (in a pipe you get plain log lines):
//!
//! `cargo run --example nested_bars`

use std::thread::sleep;
use std::time::Duration;

use pool::{MapOptions, PoolError, ProgressSpec, StartMethod, WorkerPool};

fn task(x: u64) -> u64 {
    sleep(Duration::from_millis(5 + x % 15));
    x * x
}

fn dispatcher(worker_id: usize, job: u64) -> u64 {
    let mut inner = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Threading)
        .build()
        .expect("an inner pool");
    let spec = ProgressSpec::default()
        .desc(format!("worker {worker_id} job {job}"))
        .position(worker_id + 1)
        .colour("cyan");
    let out = inner
        .map_with(
            task,
            job * 100..job * 100 + 100,
            MapOptions::default().progress(spec),
        )
        .expect("inner map");
    out.iter().sum()
}

fn main() -> Result<(), PoolError> {
    let outer = match std::env::args().nth(1).as_deref() {
        Some("threads") => StartMethod::Threading,
        _ => StartMethod::Fork,
    };
    // `inner-only`: the outer call shows no bar; the inner bars still share one board.
    let outer_bar = std::env::args().nth(2).as_deref() != Some("inner-only");
    let mut pool = WorkerPool::builder()
        .n_jobs(3)
        .start_method(outer)
        .daemon(false)
        .build()?;
    let spec = ProgressSpec::default()
        .desc("jobs")
        .position(0)
        .colour("green");
    let mut opts = MapOptions::default().chunk_size(1);
    if outer_bar {
        opts = opts.progress(spec);
    }
    let sums = pool.map_ctx_with(
        |ctx, job: u64| dispatcher(ctx.worker_id(), job),
        0..9u64,
        opts,
    )?;
    println!("sums: {sums:?}");
    Ok(())
}
