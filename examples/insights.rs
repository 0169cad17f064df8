//! Worker insights (MPIRE's "Worker insights"): where the workers' time went.
//!
//! `enable_insights(true)` records per worker the start-up, init, waiting, working, exit and
//! data-transfer times, the tasks completed, task-duration percentiles and the five slowest
//! tasks with their arguments. `get_insights()` returns them as a value that prints as a table
//! and serializes to JSON (schema in the `pool_insights` docs).
//!
//! Run: `cargo run --example insights`

use std::thread::sleep;
use std::time::Duration;

use pool::{MapOptions, PoolError, StartMethod, WorkerPool};

fn sleep_and_square(x: u64) -> u64 {
    // For illustration purposes
    sleep(Duration::from_millis(x));
    x * x
}

fn main() -> Result<(), PoolError> {
    let mut pool = WorkerPool::builder()
        .n_jobs(4)
        .start_method(StartMethod::Threading)
        .enable_insights(true)
        .build()?;
    let opts = MapOptions::default()
        .worker_init(|_| sleep(Duration::from_millis(20)))
        .progress_bar(true);
    pool.map_with(sleep_and_square, 0..100u64, opts)?;

    let insights = pool.get_insights();
    // The table (MPIRE's `print_insights()`).
    insights.print();
    // Typed fields, under MPIRE's names; durations in seconds.
    println!(
        "working ratio {:.1}%, slowest task args {:?}, p99 {:.1} ms",
        insights.working_ratio * 100.0,
        insights.top_5_max_task_args,
        insights.task_duration_percentiles.p99 * 1e3
    );
    // And JSON, for dashboards and scripts.
    println!("{}", insights.to_json_pretty());
    Ok(())
}
