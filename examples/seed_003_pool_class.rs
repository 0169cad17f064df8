//! Seed 003, "Multiprocessing using Pool in Python", rewritten with `pool`.
//!
//! `map` blocks and returns results in order; `imap` hands each result over as soon as it
//! (and those before it) are ready; `apply` runs one task and blocks, `apply_async` does not;
//! `AsyncResult` has `ready()`, `successful()`, `wait(timeout)` and `get(timeout)`.
//! The workers are processes, as the tutorial's `Pool()` (`StartMethod::Fork`): each line a
//! task prints names the process it ran in.
//!
//! Run: `cargo run --example seed_003_pool_class`

use std::thread::sleep;
use std::time::{Duration, Instant};

use pool::{MapOptions, PoolError, StartMethod, WorkerPool};

/// The tutorial sleeps a second per task; a fifth of one is enough to see the effect.
const TICK: Duration = Duration::from_millis(200);

fn square(x: u64) -> u64 {
    let pid = std::process::id();
    // `pool::println`: above the progress bar, even from a worker process.
    pool::println(format!("start process {x} (pid {pid})"));
    sleep(TICK);
    pool::println(format!("end process {x} (pid {pid})"));
    x * x
}

fn main() -> Result<(), PoolError> {
    println!("main script (pid {})", std::process::id());
    let mut pool = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Fork)
        .build()?;

    // map: blocks until every result is there; the bar shows tasks finishing meanwhile.
    let start = Instant::now();
    let a = pool.map_with(
        square,
        0..5u64,
        MapOptions::default().chunk_size(1).progress_bar(true),
    )?;
    println!("{a:?} (took {:.2} s)", start.elapsed().as_secs_f64());

    // imap: each result as soon as it is ready, in order.
    for i in pool.imap_with(square, 0..5u64, MapOptions::default().chunk_size(1))? {
        println!("showing the result as it is ready {}", i?);
    }

    // apply blocks; apply_async does not.
    let test = |x: u64| {
        println!("start process");
        sleep(TICK * x as u32);
        println!("end process");
    };
    pool.apply(test, 2)?;
    pool.apply(test, 2)?;
    println!("main script");
    let a = pool.apply_async(test, 2)?;
    let b = pool.apply_async(test, 2)?;
    println!(
        "main script continues while they run: ready = {}",
        a.ready()
    );
    assert!(matches!(a.successful(), Err(PoolError::NotReady)));
    a.wait(None);
    b.wait(None);
    println!("a successful: {:?}", a.successful()?);

    // get with a timeout: Err(WaitTimeout) if the task takes longer.
    let slow = pool.apply_async(
        |x: u64| {
            sleep(TICK * 3);
            x
        },
        7,
    )?;
    match slow.get(Some(TICK)) {
        Err(PoolError::WaitTimeout(t)) => println!("no result within {t:?}"),
        other => println!("unexpected: {other:?}"),
    }
    // A task that fails: the error says which task, where, and why.
    let bad = pool.apply_async(|x: u64| -> u64 { panic!("cannot handle {x}") }, 3)?;
    bad.wait(None);
    println!("bad successful: {:?}", bad.successful()?);
    println!("bad: {}", bad.get(None).unwrap_err());
    println!("end main script");
    pool.join()
}
