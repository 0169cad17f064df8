//! Seed 001, "Using a progress bar while multiprocessing in Python", rewritten with `pool`.
//!
//! In the recipe, tqdm around `map` is pointless (it only sees results once everything is
//! done) and tqdm around `imap` stalls behind slow early tasks: only `imap_unordered` moves.
//! Here the bar counts tasks as workers finish them, whatever the call: `map`, `imap` and
//! `imap_unordered` all move smoothly, and results keep their order where asked. The workers
//! are processes, as the recipe's `Pool(5)` (`StartMethod::Fork`).
//!
//! Run: `cargo run --example seed_001_slow_add_one`

use std::thread::sleep;
use std::time::{Duration, Instant};

use pool::{MapOptions, PoolError, ProgressSpec, StartMethod, WorkerPool};

const N_PROCESSES: usize = 5;

/// Waits a time proportional to the input (the recipe's `x / 3` seconds, scaled down).
fn slow_add_one(x: u64) -> u64 {
    sleep(Duration::from_millis(x * 150));
    x + 1
}

fn bar(desc: &str) -> MapOptions {
    MapOptions::default()
        .chunk_size(1)
        .progress(ProgressSpec::default().desc(desc))
}

fn main() -> Result<(), PoolError> {
    // Descending, so that the first tasks take longest (the recipe's worst case for `imap`).
    let inputs: Vec<u64> = (1..=5).rev().collect();
    println!("Number of workers: {N_PROCESSES}");
    println!("Inputs: {inputs:?}");

    println!("Example using single-process `map()`:");
    let tic = Instant::now();
    let res: Vec<u64> = inputs.iter().map(|x| slow_add_one(*x)).collect();
    println!(
        "Result: {res:?}\n(Took {:.3} sec.)",
        tic.elapsed().as_secs_f64()
    );

    let mut pool = WorkerPool::builder()
        .n_jobs(N_PROCESSES)
        .start_method(StartMethod::Fork)
        .build()?;

    println!("Example using multi-worker `map()`:");
    let tic = Instant::now();
    let res = pool.map_with(slow_add_one, inputs.clone(), bar("map"))?;
    println!(
        "Result: {res:?}\n(Took {:.3} sec.)",
        tic.elapsed().as_secs_f64()
    );

    println!("Example using multi-worker `imap()`:");
    let tic = Instant::now();
    let mut res = Vec::new();
    for r in pool.imap_with(slow_add_one, inputs.clone(), bar("imap"))? {
        res.push(r?);
    }
    println!(
        "Result: {res:?}\n(Took {:.3} sec.)",
        tic.elapsed().as_secs_f64()
    );

    println!("Example using multi-worker `imap_unordered()`:");
    let tic = Instant::now();
    let mut res = Vec::new();
    for r in pool.imap_unordered_with(slow_add_one, inputs.clone(), bar("imap_unordered"))? {
        res.push(r?);
    }
    println!(
        "Result: {res:?}\n(Took {:.3} sec.)",
        tic.elapsed().as_secs_f64()
    );
    Ok(())
}
