//! Task, init and exit timeouts; a timed-out task under keep-going does not stop the others.

use std::time::{Duration, Instant};

use pool::{Cause, MapOptions, Phase, StartMethod};

use super::pool;

const LIMIT: Duration = Duration::from_millis(300);

fn sleepy(x: u64) -> u64 {
    if x == 4 {
        std::thread::sleep(Duration::from_secs(3));
    }
    x
}

fn task_timeout_names_the_task(m: StartMethod) {
    let mut p = pool(m, 2);
    let t0 = Instant::now();
    let e = p
        .map_with(
            sleepy,
            0..8u64,
            MapOptions::default().chunk_size(1).task_timeout(LIMIT),
        )
        .unwrap_err();
    let f = e.failure().expect("a failure");
    assert_eq!(
        (f.phase, &f.cause, f.task),
        (Phase::Task, &Cause::Timeout(LIMIT), Some(4))
    );
    assert_eq!(f.args.as_deref(), Some("4"));
    assert!(e.to_string().contains("task #4 timed out"), "{e}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "the error comes before the task would end"
    );
    assert_eq!(p.map(|x: u8| x, 0..3u8).unwrap(), vec![0, 1, 2]);
}

fn task_timeout_with_keep_going_completes_the_rest(m: StartMethod) {
    let mut p = pool(m, 2);
    let out = p
        .map_results(
            sleepy,
            0..12u64,
            MapOptions::default()
                .chunk_size(3)
                .task_timeout(LIMIT)
                .keep_going(0),
        )
        .unwrap();
    assert_eq!(out.len(), 12);
    for (i, r) in out.iter().enumerate() {
        if i == 4 {
            let f = r.as_ref().unwrap_err().failure().unwrap().clone();
            assert_eq!(f.cause, Cause::Timeout(LIMIT));
        } else {
            assert_eq!(*r.as_ref().unwrap(), i as u64);
        }
    }
}

fn init_timeout(m: StartMethod) {
    let mut p = pool(m, 2);
    let opts = MapOptions::default()
        .worker_init(|_| std::thread::sleep(Duration::from_secs(3)))
        .worker_init_timeout(LIMIT);
    let e = p.map_with(|x: u8| x, 0..4u8, opts).unwrap_err();
    let f = e.failure().unwrap();
    assert_eq!(
        (f.phase, &f.cause),
        (Phase::Init, &Cause::Timeout(LIMIT)),
        "{e}"
    );
}

fn exit_timeout(m: StartMethod) {
    let mut p = pool(m, 2);
    let opts = MapOptions::default()
        .worker_exit(|_| std::thread::sleep(Duration::from_secs(3)))
        .worker_exit_timeout(LIMIT);
    let e = p.map_with(|x: u8| x, 0..4u8, opts).unwrap_err();
    let f = e.failure().unwrap();
    assert_eq!(
        (f.phase, &f.cause),
        (Phase::Exit, &Cause::Timeout(LIMIT)),
        "{e}"
    );
}

fn dropping_a_pool_with_a_stuck_task_does_not_hang(m: StartMethod) {
    let t0 = Instant::now();
    {
        let mut p = pool(m, 2);
        let _ = p.map_with(
            sleepy,
            0..8u64,
            MapOptions::default().chunk_size(1).task_timeout(LIMIT),
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(3));
}

/// The first call's task 1 runs 150 ms; the call is dropped 50 ms into it.
fn left_behind(x: u64) -> u64 {
    if x == 1 {
        std::thread::sleep(Duration::from_millis(150));
    }
    x
}

fn stuck(x: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(3));
    x
}

/// A dropped `imap` can leave its running task behind (a thread cannot be killed). When that
/// task ends, 100 ms into the next call, it must not touch the counters of the worker that took
/// its place: each of the next call's stuck tasks still times out.
fn a_task_left_behind_does_not_hide_the_next_calls_timeouts(m: StartMethod) {
    let mut p = pool(m, 2);
    {
        let timed = MapOptions::default()
            .chunk_size(1)
            .task_timeout(Duration::from_secs(5));
        let mut it = p.imap_with(left_behind, 0..2u64, timed).unwrap();
        assert_eq!(it.next().map(Result::unwrap), Some(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let t0 = Instant::now();
    let out = p
        .map_results(
            stuck,
            0..2u64,
            MapOptions::default()
                .chunk_size(1)
                .task_timeout(LIMIT)
                .keep_going(0),
        )
        .unwrap();
    for r in &out {
        let e = r.as_ref().expect_err("every task times out");
        assert_eq!(e.failure().unwrap().cause, Cause::Timeout(LIMIT), "{e}");
    }
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

for_each_start_method!(
    a_task_left_behind_does_not_hide_the_next_calls_timeouts,
    task_timeout_names_the_task,
    task_timeout_with_keep_going_completes_the_rest,
    init_timeout,
    exit_timeout,
    dropping_a_pool_with_a_stuck_task_does_not_hang,
);
