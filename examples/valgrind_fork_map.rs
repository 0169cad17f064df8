//! A small map on forked workers, small enough to run under Valgrind (`scripts/verify.sh
//! valgrind`): the parent's side of the process back end (ring, codec, slab, reader threads)
//! runs under memcheck, and so do the forked workers' task loops (a fork inherits it); then the
//! same on threads (the in-process task loop writing results in place).
//! Run: `cargo run --example valgrind_fork_map`.

use pool::{StartMethod, WorkerPool};

fn main() -> Result<(), pool::PoolError> {
    // Valgrind before 3.20 does not know `pidfd_open`, which process workers need:
    // `-- threads` runs only the thread map.
    if std::env::args().nth(1).as_deref() != Some("threads") {
        fork_map()?;
    }
    thread_map()
}

fn fork_map() -> Result<(), pool::PoolError> {
    let mut pool = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Fork)
        .build()?;
    let squares: Vec<u64> = pool.map(|x: u64| x * x, 0..2000u64)?;
    assert_eq!(squares, (0..2000u64).map(|x| x * x).collect::<Vec<_>>());
    let words: Vec<String> = pool.map(|x: u32| format!("w{x}"), 0..500u32)?;
    assert_eq!(words[499], "w499");
    pool.join()?;
    println!("fork map: ok");
    Ok(())
}

/// The in-process task loop and slab writers.
fn thread_map() -> Result<(), pool::PoolError> {
    let mut threads = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Threading)
        .build()?;
    let names: Vec<String> = threads.map(|x: u32| format!("t{x}"), 0..3000u32)?;
    assert_eq!(names[2999], "t2999");
    threads.join()?;
    println!("thread map: ok");
    Ok(())
}
