//! The main job of `pool`: run a function over many inputs on a pool of workers, with a
//! progress bar, per-worker state built once by an init hook, exit results, insights into
//! where the time went, and a keep-going error policy.
//!
//! `cargo run --release --example quickstart`

use std::time::Instant;

use pool::{MapOptions, ProgressSpec, WorkerPool};

const RANGES: u64 = 2_000;
const WIDTH: u64 = 2_000;

/// Counts the primes in `[lo, hi)` by trial division: a task of a few milliseconds.
fn count_primes((lo, hi): (u64, u64)) -> u64 {
    (lo..hi)
        .filter(|&n| {
            n >= 2
                && (2..)
                    .take_while(|d| d * d <= n)
                    .all(|d| !n.is_multiple_of(d))
        })
        .count() as u64
}

/// Per-worker state: a table of small primes, built once per worker by `worker_init`.
#[derive(Default)]
struct Sieve {
    small_primes: Vec<u64>,
    tasks: u64,
}

impl Sieve {
    fn count(&self, (lo, hi): (u64, u64)) -> u64 {
        let is_prime = |n: u64| {
            n >= 2
                && self
                    .small_primes
                    .iter()
                    .take_while(|&&p| p * p <= n)
                    .all(|&p| !n.is_multiple_of(p))
        };
        (lo..hi).filter(|&n| is_prime(n)).count() as u64
    }
}

fn main() -> Result<(), pool::PoolError> {
    let ranges: Vec<(u64, u64)> = (0..RANGES).map(|i| (i * WIDTH, (i + 1) * WIDTH)).collect();

    // 1. The one-liner.
    let t0 = Instant::now();
    let counts = WorkerPool::new(pool::cpu_count())?.map(count_primes, ranges.clone())?;
    let total: u64 = counts.iter().sum();
    println!(
        "primes below {}: {total} ({:.2?} on {} workers)",
        RANGES * WIDTH,
        t0.elapsed(),
        pool::cpu_count()
    );

    // 2. A progress bar, a per-worker state built by an init hook, exit results, insights.
    let mut pool = WorkerPool::builder()
        .worker_state(Sieve::default)
        .enable_insights(true)
        .build()?;
    let opts = pool
        .options()
        .progress(
            ProgressSpec::default()
                .desc("counting primes")
                .unit("ranges"),
        )
        .chunk_size(10)
        .worker_init(|ctx| {
            ctx.state_mut().small_primes = (2..2_000)
                .filter(|&n| count_primes((n, n + 1)) == 1)
                .collect()
        })
        .worker_exit(|ctx| (ctx.worker_id(), ctx.state().tasks));
    let counts = pool.map_ctx_with(
        |ctx, range: (u64, u64)| {
            ctx.state_mut().tasks += 1;
            ctx.state().count(range)
        },
        ranges,
        opts,
    )?;
    assert_eq!(counts.iter().sum::<u64>(), total);
    let per_worker: Vec<(usize, u64)> = pool.get_exit_results()?;
    println!("ranges per worker: {per_worker:?}");
    println!("{}", pool.get_insights());

    // 3. Bad inputs do not throw away the good results: keep going, errors in place.
    let results = pool.map_results(
        |(lo, hi): (u64, u64)| {
            assert!(lo < hi, "empty range {lo}..{hi}");
            count_primes((lo, hi))
        },
        vec![(0, 100), (50, 10), (100, 200)],
        MapOptions::default().keep_going(0),
    )?;
    for r in &results {
        match r {
            Ok(n) => println!("ok: {n} primes"),
            Err(e) => println!("failed: {e}"),
        }
    }
    Ok(())
}
