//! Faults under MPI: a worker rank killed in the middle of a map.
//!
//! Each test runs twice: the outer run (plain `cargo test`) launches
//! `mpirun --enable-recovery -n 3` on this same test binary with the test's name as filter;
//! inside mpirun, rank 0 runs the body and ranks 1..2 become workers (the constructor below).
//! Without `mpirun` on the PATH the outer run prints a loud skip (and fails when `CI` is set).

use std::time::{Duration, Instant};

use pool_core::{Cause, PoolError, WorkerPool};

mod common;
use common::{MpiOnly, inside_mpirun, under_mpirun, under_mpirun_with};

fn killer(x: u64) -> u64 {
    if x == 40 {
        // Die a while into the task, as a crash in real work would (the task in hand has been
        // reported to rank 0 by then).
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: plain syscalls; the rank dies at once, as an OOM kill or a segfault would.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(5));
    x * 2
}

#[test]
fn killed_rank_mid_map_is_a_clear_error_within_seconds() {
    let name = "killed_rank_mid_map_is_a_clear_error_within_seconds";
    if !inside_mpirun() {
        under_mpirun(name, 3);
        return;
    }
    let mut pool = WorkerPool::<(), (), MpiOnly>::builder()
        .n_jobs(2)
        .build()
        .unwrap();
    // The pool works before the fault.
    let ok: Vec<u64> = pool.map(|x: u64| x + 1, 0..10u64).unwrap();
    assert_eq!(ok, (1..11).collect::<Vec<_>>());

    let t0 = Instant::now();
    let err = pool
        .map_with(
            killer,
            0..200u64,
            pool_core::MapOptions::default().chunk_size(4),
        )
        .unwrap_err();
    let took = t0.elapsed();
    println!("error after {took:?}: {err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let PoolError::Failed(f) = &err else {
        panic!("expected a worker failure, got {err:?}")
    };
    assert_eq!(f.cause, Cause::WorkerDied, "{err}");
    assert!(f.message.contains("MPI rank"), "{err}");
    assert_eq!(f.task, Some(40), "the task the rank held: {err}");
    drop(pool);

    // The dead rank stays dead: a new pool over it fails at once, clearly.
    let mut again = WorkerPool::<(), (), MpiOnly>::builder()
        .n_jobs(2)
        .build()
        .unwrap();
    let err = again.map(|x: u64| x, 0..10u64).unwrap_err();
    println!("second pool: {err}");
    assert!(err.to_string().contains("dead"), "{err}");
    println!("MPI-FAULT-OK {name}");
}

/// Without `--enable-recovery`, Open MPI ends the job when a rank dies: no hang, mpirun says
/// which rank and how (rank 0 is terminated before it can report anything itself).
#[test]
fn killed_rank_without_recovery_ends_the_job_at_once() {
    let name = "killed_rank_without_recovery_ends_the_job_at_once";
    if !inside_mpirun() {
        under_mpirun_with(name, 3, false);
        return;
    }
    let mut pool = WorkerPool::<(), (), MpiOnly>::builder()
        .n_jobs(2)
        .build()
        .unwrap();
    let _ = pool.map_with(
        killer,
        0..200u64,
        pool_core::MapOptions::default().chunk_size(4),
    );
    // Not reached: mpirun terminates rank 0 when rank 2 dies.
    std::thread::sleep(Duration::from_secs(60));
}
