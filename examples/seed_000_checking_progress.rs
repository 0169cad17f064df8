//! Seed 000, "Checking progress of Python multiprocessing pools", rewritten with `pool`.
//!
//! The recipe polls `AsyncResult`s by hand (option 1) or wires tqdm into `imap` and
//! `apply_async` callbacks (option 2). With `pool`:
//! - option 1 is the same polling, with `ready()` / `successful()`, and errors you can `get()`;
//! - option 1b: a live status of any map call, without a bar: `pool.status_handle()`;
//! - option 2 is one option: `progress_bar(true)` on any map-family call, and
//!   `apply_progress_bar` for `apply_async` tasks (the recipe's tqdm in the callback).
//!
//! Like the recipe's `multiprocessing.Pool`, the workers are processes (`StartMethod::Fork`).
//!
//! Run: `cargo run --example seed_000_checking_progress`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use pool::{
    ApplyOptions, AsyncResult, MapOptions, PoolError, ProgressSpec, StartMethod, WorkerPool,
};

fn my_func(value: u64) -> u64 {
    sleep(Duration::from_millis(40 + (value * 37) % 80));
    if value == 13 {
        panic!("13 is unlucky");
    }
    value * value
}

fn main() -> Result<(), PoolError> {
    let data: BTreeMap<String, u64> = (0..24).map(|i| (format!("key{i:02}"), i)).collect();
    let mut pool = WorkerPool::builder()
        .n_jobs(4)
        .start_method(StartMethod::Fork)
        .build()?;

    // --- Option 1: check the status of AsyncResult objects by hand ---------------------------
    println!("Option 1: polling apply_async results");
    let start = Instant::now();
    let mut results: BTreeMap<&str, AsyncResult<u64>> = BTreeMap::new();
    for (key, value) in &data {
        results.insert(key, pool.apply_async(my_func, *value)?);
    }
    loop {
        // This block can be run whenever you want to check on the progress of the pool.
        let (mut running, mut successful, mut error) = (vec![], vec![], vec![]);
        for (key, result) in &results {
            match result.successful() {
                Ok(true) => successful.push(*key),
                Ok(false) => error.push(*key),
                Err(_not_ready) => running.push(*key),
            }
        }
        let finished = (successful.len() + error.len()) as f64;
        let rate = finished / start.elapsed().as_secs_f64();
        println!(
            "Running: {}  Successful: {}  Error: {:?}",
            running.len(),
            successful.len(),
            error
        );
        if rate > 0.0 {
            let eta = Duration::from_secs_f64(running.len() as f64 / rate);
            println!("Rate: {rate:.3}/s  Estimated time to completion: {eta:.1?}");
        }
        if running.is_empty() {
            break;
        }
        sleep(Duration::from_millis(300));
    }
    // The failed result tells what went wrong, like `results['key13'].get()`.
    let failed = results.remove("key13").expect("key13 was submitted");
    println!("key13: {}", failed.get(None).unwrap_err());

    // --- Option 1b: a live status of a map call, without a bar ---------------------------------
    println!("\nOption 1b: polling pool.status_handle() during a map");
    let status = pool.status_handle();
    let watcher = thread::spawn(move || {
        let mut seen_active = false;
        loop {
            let s = status.snapshot();
            if s.active {
                seen_active = true;
                println!(
                    "pending {:>2}  running {}  done {:>2}/{}  failed {}  rate {:>5.1}/s  eta {:?}",
                    s.pending(),
                    s.running,
                    s.done,
                    s.total.unwrap_or(0),
                    s.failed,
                    s.rate,
                    s.eta.map(|d| Duration::from_millis(d.as_millis() as u64))
                );
            } else if seen_active {
                println!("finished: {} tasks in {:.2?}", s.done, s.elapsed);
                return;
            }
            sleep(Duration::from_millis(250));
        }
    });
    let safe: Vec<u64> = data.values().copied().filter(|v| *v != 13).collect();
    pool.map_with(my_func, safe.clone(), MapOptions::default().chunk_size(1))?;
    watcher.join().expect("the watcher ends");

    // --- Option 2: progress bars ----------------------------------------------------------------
    println!("\nOption 2: progress bars");
    // imap_unordered: results as they finish, the bar counts every task.
    let mut out = Vec::new();
    for r in pool.imap_unordered_with(
        my_func,
        safe.clone(),
        MapOptions::default().progress_bar(true),
    )? {
        out.push(r?);
    }
    // imap: results in order; the bar still moves as tasks finish, not as results are returned.
    let ordered: Vec<u64> = pool
        .imap_with(
            my_func,
            safe.clone(),
            MapOptions::default().progress_bar(true),
        )?
        .collect::<Result<_, _>>()?;
    assert_eq!(ordered.len(), out.len());
    // apply_async with a callback, as the recipe's `update`: here the bar is the pool's own
    // (`apply_progress_bar`); the callback still runs in this process for each result.
    pool.apply_progress_bar(Some(ProgressSpec::default().desc("apply_async")));
    let done = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for v in &safe {
        let done = done.clone();
        let opts = ApplyOptions::default().callback(move |_: &u64| {
            done.fetch_add(1, Ordering::Relaxed);
        });
        handles.push(pool.apply_async_with(my_func, *v, opts)?);
    }
    for h in &handles {
        h.wait(None);
    }
    pool.apply_progress_bar(None);
    println!(
        "apply_async: {}/{} done",
        done.load(Ordering::Relaxed),
        handles.len()
    );

    // Don't forget to join the pool after it finishes running!
    pool.join()
}
