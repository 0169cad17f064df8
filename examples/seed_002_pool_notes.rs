//! Seed 002, "Python usage notes / Multiprocessing notes", rewritten with `pool`.
//!
//! The notes count finished jobs with `imap_unordered`, feed a generator to `imap_unordered`,
//! and poll several `map_async` results for `ready()`. With `pool`:
//! - counting is the progress bar (it counts tasks, not chunks, even with `chunk_size`);
//! - a generator has no length: the bar becomes a counter with a spinner (or give
//!   `ProgressSpec::total` / `MapOptions::iterable_len` when you know it);
//! - several jobs at once, polled for readiness: `apply_async` handles and the pool's status;
//! - `maxtasksperchild` is `worker_lifespan`.
//!
//! The workers are processes, as the notes' `multiprocessing.Pool(5)` (`StartMethod::Fork`).
//! Lines printed while a bar is drawn go through `pool::println`, which puts them above the
//! bars (a plain `println!` would leave a copy of the bar behind at every line).
//!
//! Run: `cargo run --example seed_002_pool_notes`

use std::thread::sleep;
use std::time::{Duration, Instant};

use pool::{MapOptions, PoolError, ProgressSpec, StartMethod, WorkerPool};

/// A tiny deterministic pseudo-random source (no dependency needed for a demo).
fn uniform(seed: u64, max_ms: u64) -> Duration {
    let x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Duration::from_millis((x >> 33) % max_ms)
}

fn func(arg: u64) -> String {
    sleep(uniform(arg, 200));
    "bla".to_string()
}

fn main() -> Result<(), PoolError> {
    let mut pool = WorkerPool::builder()
        .n_jobs(4)
        .start_method(StartMethod::Fork)
        .build()?;

    // Counting finished jobs: imap_unordered with chunks of 2, printing as results come.
    let start = Instant::now();
    let opts = MapOptions::default()
        .chunk_size(2)
        .progress(ProgressSpec::default().desc("counting"));
    for (count, res) in pool.imap_unordered_with(func, 0..20u64, opts)?.enumerate() {
        pool::println(format!(
            "[{:5.2}] res:{}  count:{count}",
            start.elapsed().as_secs_f64(),
            res?
        ));
    }

    // A generator of jobs that stops by itself: unknown length, so a counter with a spinner.
    let mut seed = 1u64;
    let generate_jobs = std::iter::from_fn(move || {
        seed += 1;
        let wait = uniform(seed, 100);
        sleep(wait / 4);
        (wait > Duration::from_millis(5) || seed < 10).then_some(seed)
    });
    let opts =
        MapOptions::default().progress(ProgressSpec::default().desc("generator").unit("jobs"));
    let n = pool
        .imap_unordered_with(|x: u64| x, generate_jobs, opts)?
        .count();
    println!("the generator gave {n} jobs");

    // Leaky workers? Restart each after 25 tasks (`maxtasksperchild`).
    let opts = MapOptions::default()
        .worker_lifespan(25)
        .progress(ProgressSpec::default().desc("lifespan"));
    let squares = pool.map_with(|x: u64| x * x, 0..200u64, opts)?;
    println!("sum of squares: {}", squares.iter().sum::<u64>());

    // Several jobs in flight, polled for readiness (the notes' three `map_async` calls).
    let groups: Vec<Vec<_>> = [100u64, 200, 300]
        .iter()
        .map(|base| {
            (*base..base + 10)
                .map(|x| {
                    pool.apply_async(
                        |x: u64| {
                            sleep(uniform(x, 300));
                            x
                        },
                        x,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    loop {
        let ready: Vec<bool> = groups.iter().map(|g| g.iter().all(|h| h.ready())).collect();
        println!("Parts done: {ready:?}");
        if ready.iter().all(|r| *r) {
            break;
        }
        sleep(Duration::from_millis(250));
    }
    for g in groups {
        let values: Vec<u64> = g
            .into_iter()
            .map(|h| h.get(None))
            .collect::<Result<_, _>>()?;
        println!("{values:?}");
    }

    pool.join()
}
