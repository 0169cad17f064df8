//! What rank 0 sees of MPI workers beyond the shared suite: progress fed by the worker ranks'
//! counters, insights, and the configuration errors of `StartMethod::Mpi`.
//!
//! Run under mpirun by the outer run of each test, as in `faults.rs`.

use std::time::Duration;

use pool_core::{MapOptions, PoolError, WorkerPool};

mod common;
use common::{MpiOnly, PROGRESS, inside_mpirun, under_mpirun};

fn slow_double(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * 2
}

#[test]
fn progress_and_insights_on_rank_0() {
    let name = "progress_and_insights_on_rank_0";
    if !inside_mpirun() {
        under_mpirun(name, 3);
        return;
    }
    let mut pool = WorkerPool::<(), (), MpiOnly>::builder()
        .enable_insights(true)
        .build()
        .unwrap();
    assert_eq!(pool.n_jobs(), 2, "n_jobs defaults to the worker ranks");
    let out: Vec<u64> = pool
        .map_with(
            slow_double,
            0..60u64,
            MapOptions::default().progress_bar(true).chunk_size(5),
        )
        .unwrap();
    assert_eq!(out, (0..60).map(|x| x * 2).collect::<Vec<_>>());
    let seen = PROGRESS.lock().unwrap().clone();
    let last = seen.last().unwrap();
    assert_eq!(last.done, 60, "{last:?}");
    // Counted while running, from the ranks' reports: done grew through values between.
    assert!(
        seen.iter().any(|s| s.done > 0 && s.done < 60),
        "no intermediate progress: {:?}",
        seen.iter().map(|s| s.done).collect::<Vec<_>>()
    );
    assert!(
        seen.iter().any(|s| s.running > 0),
        "never saw a running task"
    );
    let insights = pool.get_insights().0;
    let tasks: u64 = insights.iter().map(|t| t.n_completed_tasks).sum();
    assert_eq!(tasks, 60, "{insights:?}");
    assert!(
        insights
            .iter()
            .all(|t| t.working >= Duration::from_millis(100))
    );
    println!("MPI-FAULT-OK {name}");
}

#[test]
fn configuration_errors_are_clear() {
    let name = "configuration_errors_are_clear";
    if !inside_mpirun() {
        under_mpirun(name, 3);
        return;
    }
    let err = WorkerPool::<(), (), MpiOnly>::builder()
        .n_jobs(3)
        .build()
        .unwrap_err();
    assert!(matches!(err, PoolError::InvalidConfig(_)), "{err}");
    assert!(err.to_string().contains("2 worker ranks"), "{err}");

    let mut pool = WorkerPool::<(), (), MpiOnly>::builder().build().unwrap();
    let offset = 7u64;
    let err = pool.map(move |x: u64| x + offset, 0..4u64).unwrap_err();
    assert!(err.to_string().contains("capture nothing"), "{err}");

    let err = WorkerPool::<(), (), MpiOnly>::builder()
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("another StartMethod::Mpi pool"),
        "{err}"
    );
    drop(pool);
    let mut again = WorkerPool::<(), (), MpiOnly>::builder().build().unwrap();
    let v: Vec<u64> = again.map(|x: u64| x + 1, 0..4u64).unwrap();
    assert_eq!(v, vec![1, 2, 3, 4]);
    println!("MPI-FAULT-OK {name}");
}
