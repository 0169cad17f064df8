//! Per-task overhead of `StartMethod::Mpi` beside `Fork` on the workloads `cpu-1ms` (tasks of
//! ~1 ms of xorshift arithmetic) and `trivial` (x*x).
//!
//! ```text
//! cargo build --release --features mpi --example mpi_overhead
//! mpirun --allow-run-as-root --oversubscribe -n 4 target/release/examples/mpi_overhead mpi
//! target/release/examples/mpi_overhead fork 3
//! ```
//! `ROUNDS=<n>` fixes the task length (default: calibrated to ~1 ms on rank 0).
//! Prints one line per workload: median wall time of 3 runs (5 for cpu-1ms), tasks/s, and the overhead per task
//! (wall × min(workers, cores) / tasks − task time), and the same for `trivial` with one task
//! per chunk (a round trip per task).

use std::hint::black_box;
use std::time::{Duration, Instant};

use pool::{StartMethod, WorkerPool};

fn spin(x: u64, k: u64) -> u64 {
    let mut s = (x.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    for _ in 0..k {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
    }
    s
}

fn cpu_task(a: (u64, u64)) -> u64 {
    spin(a.0, a.1)
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// Rounds of `spin` that take about 1 ms here.
fn calibrate() -> u64 {
    let k = 1_000_000;
    let t0 = Instant::now();
    black_box(spin(black_box(1), k));
    (k as f64 * 1e-3 / t0.elapsed().as_secs_f64()) as u64
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), pool::PoolError> {
    pool::entry();
    let method = match std::env::args().nth(1).as_deref() {
        Some("mpi") => StartMethod::Mpi,
        Some("spawn") => StartMethod::Spawn,
        Some("threading") => StartMethod::Threading,
        _ => StartMethod::Fork,
    };
    let mut b = WorkerPool::builder().start_method(method);
    if let Some(n) = std::env::args().nth(2).and_then(|n| n.parse().ok()) {
        b = b.n_jobs(n);
    }
    let mut pool = b.build()?;
    let workers = pool.n_jobs();
    // `ROUNDS` fixes the task length, so that runs of different back ends do the same work.
    let k = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(calibrate);
    // Warm up (workers start with the first call).
    let _: Vec<u64> = pool.map(square, 0..1000u64)?;

    let n_cpu = 600u64;
    let task = {
        let t0 = Instant::now();
        for i in 0..20 {
            black_box(cpu_task((i, k)));
        }
        t0.elapsed() / 20
    };
    let runs: Vec<Duration> = (0..5)
        .map(|_| {
            let t0 = Instant::now();
            let out: Vec<u64> = pool.map(cpu_task, (0..n_cpu).map(|i| (i, k))).unwrap();
            assert_eq!(out.len(), n_cpu as usize);
            t0.elapsed()
        })
        .collect();
    report(method, workers, "cpu-1ms", n_cpu, median(runs), task);

    let n_triv = 1_000_000u64;
    let runs: Vec<Duration> = (0..3)
        .map(|_| {
            let t0 = Instant::now();
            let out: Vec<u64> = pool.map(square, 0..n_triv).unwrap();
            assert_eq!(out.len(), n_triv as usize);
            t0.elapsed()
        })
        .collect();
    report(
        method,
        workers,
        "trivial",
        n_triv,
        median(runs),
        Duration::ZERO,
    );

    // One task per message: the cost of a round trip through the back end.
    let n_c1 = 20_000u64;
    let runs: Vec<Duration> = (0..3)
        .map(|_| {
            let t0 = Instant::now();
            let opts = pool::MapOptions::default().chunk_size(1);
            let out: Vec<u64> = pool.map_with(square, 0..n_c1, opts).unwrap();
            assert_eq!(out.len(), n_c1 as usize);
            t0.elapsed()
        })
        .collect();
    report(
        method,
        workers,
        "trivial/chunk_size=1",
        n_c1,
        median(runs),
        Duration::ZERO,
    );
    pool.join()?;
    Ok(())
}

fn report(m: StartMethod, workers: usize, name: &str, n: u64, wall: Duration, task: Duration) {
    // The work runs on at most as many cores as there are.
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let lanes = workers.min(cores) as f64;
    let per_task = wall.as_secs_f64() * lanes / n as f64 - task.as_secs_f64();
    println!(
        "{:<6} workers={workers} {name:<20} tasks={n:<8} wall={:>8.3} s  {:>10.0} tasks/s  task={:>7.1} µs  overhead/task={:>7.2} µs",
        m.name(),
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        task.as_secs_f64() * 1e6,
        per_task * 1e6,
    );
}
