//! Issue 15's MPI workloads, one start method per run, so that MPI and Fork runs can be
//! interleaved by the caller (see BENCHMARKS.md, "MPI beside Fork, round trips"):
//!
//! ```text
//! cargo build --release --features mpi --example mpi_vs_fork
//! mpirun --allow-run-as-root --oversubscribe -n 3 target/release/examples/mpi_vs_fork mpi
//! target/release/examples/mpi_vs_fork fork 2
//! mpirun --allow-run-as-root --oversubscribe -n 4 target/release/examples/mpi_vs_fork shared
//! ```
//! `mpi` / `fork N`: 10k trivial tasks with `chunk_size(1)` and 300 sleeps of 5 ms with
//! `chunk_size(1)` (one task per chunk, as inputs of unknown length get), the median of 3
//! runs each. `shared`: 256 MB of shared objects on every worker rank, three calls without
//! `keep_alive`: wall time per call and each rank's resident memory.

use std::time::{Duration, Instant};

use pool::{MapOptions, StartMethod, WorkerPool};
use serde_bytes::ByteBuf;

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn nap(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    x
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rss_mib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        >> 10
}

fn round_trips(method: StartMethod, n_jobs: Option<usize>) -> Result<(), pool::PoolError> {
    let mut b = WorkerPool::builder().start_method(method).keep_alive(true);
    if let Some(n) = n_jobs {
        b = b.n_jobs(n);
    }
    let mut pool = b.build()?;
    let _: Vec<u64> = pool.map(square, 0..1000u64)?; // workers up
    let one = || MapOptions::default().chunk_size(1);
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let out: Vec<u64> = pool.map_with(square, 0..10_000u64, one())?;
        assert_eq!(out.len(), 10_000);
        runs.push(t0.elapsed());
    }
    println!(
        "{} workers={} chunk1-trivial-10k median={:.3} s",
        method.name(),
        pool.n_jobs(),
        median(runs).as_secs_f64()
    );
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let out: Vec<u64> = pool.map_with(nap, 0..300u64, one())?;
        assert_eq!(out.len(), 300);
        runs.push(t0.elapsed());
    }
    println!(
        "{} workers={} sleep5ms-300 median={:.3} s",
        method.name(),
        pool.n_jobs(),
        median(runs).as_secs_f64()
    );
    pool.join()
}

fn shared() -> Result<(), pool::PoolError> {
    let big = ByteBuf::from(vec![7u8; 256 << 20]);
    let mut pool = WorkerPool::builder()
        .start_method(StartMethod::Mpi)
        .shared_objects(big)
        .build()?;
    println!("rank 0 before the first call: {} MiB resident", rss_mib());
    for call in 0..3 {
        let t0 = Instant::now();
        let seen: Vec<(usize, u64, usize)> = pool.map_ctx(
            |ctx, _: u64| {
                std::thread::sleep(Duration::from_millis(20));
                (ctx.worker_id(), rss_mib(), ctx.shared().len())
            },
            0..(4 * pool.n_jobs() as u64),
        )?;
        let mut per_worker: Vec<(usize, u64)> = seen.iter().map(|s| (s.0, s.1)).collect();
        per_worker.sort();
        per_worker.dedup_by_key(|w| w.0);
        assert!(seen.iter().all(|s| s.2 == 256 << 20));
        println!(
            "call {call}: {:.3} s; resident MiB per worker rank {:?}; rank 0 {} MiB",
            t0.elapsed().as_secs_f64(),
            per_worker.iter().map(|w| w.1).collect::<Vec<_>>(),
            rss_mib()
        );
    }
    pool.join()
}

fn main() -> Result<(), pool::PoolError> {
    pool::entry();
    match std::env::args().nth(1).as_deref() {
        Some("mpi") => round_trips(StartMethod::Mpi, None),
        Some("shared") => shared(),
        _ => round_trips(
            StartMethod::Fork,
            std::env::args().nth(2).and_then(|n| n.parse().ok()),
        ),
    }
}
