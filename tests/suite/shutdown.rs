//! Ending a pool never waits for a stuck task: dropping a pool with an `apply_async` task
//! outstanding terminates it (as MPIRE's context-manager exit does), and on threads a
//! timed-out task's abandoned thread is never waited for.
//!
//! The bounds below are hang checks, far above the time the work should take (the stuck tasks
//! sleep 30 s), not speed targets.

use std::time::{Duration, Instant};

use pool::{MapOptions, PoolError, StartMethod};

use super::pool;

const LIMIT: Duration = Duration::from_millis(300);
const HANG: Duration = Duration::from_secs(4);

fn stuck(x: u64) -> u64 {
    if x == 1 {
        std::thread::sleep(Duration::from_secs(30));
    }
    x
}

fn dropping_a_pool_terminates_its_apply_tasks(m: StartMethod) {
    let t0 = Instant::now();
    let (quick, slow) = {
        let mut p = pool(m, 2);
        let quick = p.apply_async(stuck, 0).unwrap();
        let slow = p.apply_async(stuck, 1).unwrap();
        assert!(
            quick.wait(Some(Duration::from_secs(10))),
            "the quick task ends"
        );
        (quick, slow)
    };
    assert!(t0.elapsed() < HANG, "drop took {:?}", t0.elapsed());
    assert_eq!(quick.get(None).unwrap(), 0);
    match slow.get(Some(Duration::from_secs(1))) {
        Err(PoolError::Terminated) => {}
        other => panic!("the stuck task ends as Terminated, not {other:?}"),
    }
}

fn a_timed_out_task_is_not_waited_for(m: StartMethod) {
    let mut p = pool(m, 2);
    let t0 = Instant::now();
    let out = p
        .map_results(
            stuck,
            0..6u64,
            MapOptions::default()
                .chunk_size(1)
                .task_timeout(LIMIT)
                .keep_going(0),
        )
        .expect("the call runs");
    assert!(t0.elapsed() < HANG, "the call took {:?}", t0.elapsed());
    assert!(out[1].is_err() && out.iter().filter(|r| r.is_ok()).count() == 5);
}

fn join_does_not_wait_for_a_timed_out_task(m: StartMethod) {
    let mut p = super::builder(m, 2).keep_alive(true).build().unwrap();
    let out = p
        .map_results(
            stuck,
            0..4u64,
            MapOptions::default()
                .chunk_size(1)
                .task_timeout(LIMIT)
                .keep_going(0),
        )
        .expect("the call runs");
    assert!(out[1].is_err());
    let t0 = Instant::now();
    p.join().unwrap();
    assert!(t0.elapsed() < HANG, "join took {:?}", t0.elapsed());
}

for_each_start_method!(
    dropping_a_pool_terminates_its_apply_tasks,
    a_timed_out_task_is_not_waited_for,
    join_does_not_wait_for_a_timed_out_task,
);
