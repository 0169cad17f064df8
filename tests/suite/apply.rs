//! apply, apply_async, AsyncResult and callbacks.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pool::{ApplyOptions, PoolError, StartMethod};

use super::pool;

fn apply_and_async_results(m: StartMethod) {
    let mut p = pool(m, 2);
    assert_eq!(p.apply(|x: u64| x + 1, 41).unwrap(), 42);
    let slow = p
        .apply_async(
            |x: u64| {
                std::thread::sleep(Duration::from_millis(300));
                x
            },
            7,
        )
        .unwrap();
    assert!(!slow.ready());
    assert!(matches!(slow.successful(), Err(PoolError::NotReady)));
    assert!(!slow.wait(Some(Duration::from_millis(10))));
    assert!(slow.wait(Some(Duration::from_secs(10))));
    assert!(slow.successful().unwrap());
    assert_eq!(slow.get(None).unwrap(), 7);
    let many: Vec<_> = (0..20u64)
        .map(|i| p.apply_async(|x: u64| x * x, i).unwrap())
        .collect();
    let got: Vec<u64> = many
        .into_iter()
        .map(|r| r.get(Some(Duration::from_secs(10))).unwrap())
        .collect();
    assert_eq!(got, (0..20u64).map(|x| x * x).collect::<Vec<_>>());
}

fn apply_async_callbacks(m: StartMethod) {
    let mut p = pool(m, 2);
    let ok = Arc::new(Mutex::new(Vec::new()));
    let bad = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for i in 0..10u32 {
        let (ok, bad) = (ok.clone(), bad.clone());
        let opts = ApplyOptions::default()
            .callback(move |v: &u32| ok.lock().unwrap().push(*v))
            .error_callback(move |e: &PoolError| bad.lock().unwrap().push(e.to_string()));
        handles.push(
            p.apply_async_with(|x: u32| if x == 3 { panic!("three") } else { x }, i, opts)
                .unwrap(),
        );
    }
    p.join().unwrap();
    let mut ok = ok.lock().unwrap().clone();
    ok.sort();
    assert_eq!(ok, vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
    let bad = bad.lock().unwrap().clone();
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].contains("three") && bad[0].contains("(args: 3)"),
        "{bad:?}"
    );
    assert!(!handles.remove(3).successful().unwrap());
    // A map after apply tasks works on the same pool.
    assert_eq!(p.map(|x: u8| x, 0..3u8).unwrap(), vec![0, 1, 2]);
}

fn apply_async_timeout(m: StartMethod) {
    let mut p = pool(m, 2);
    let r = p
        .apply_async_with(
            |x: u64| {
                std::thread::sleep(Duration::from_secs(3));
                x
            },
            1,
            ApplyOptions::default().task_timeout(Duration::from_millis(200)),
        )
        .unwrap();
    let e = r.get(Some(Duration::from_secs(10))).unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    assert_eq!(p.apply(|x: u64| x, 5).unwrap(), 5);
}

/// Each `apply_async` task of a pool has its own number (in submission order), so errors say
/// which one failed.
fn apply_async_errors_name_their_task(m: StartMethod) {
    let mut p = pool(m, 2);
    let handles: Vec<_> = (0..6u32)
        .map(|i| {
            p.apply_async(|x: u32| if x % 3 == 2 { panic!("bad {x}") } else { x }, i)
                .unwrap()
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        match h.get(Some(Duration::from_secs(10))) {
            Ok(v) => assert_eq!(v as usize, i),
            Err(e) => {
                assert_eq!(i % 3, 2, "{e}");
                assert_eq!(e.failure().unwrap().task, Some(i as u64), "{e}");
                assert!(
                    e.to_string().contains(&format!("task #{i} panicked")),
                    "{e}"
                );
            }
        }
    }
    // Numbers go on across `apply` and later tasks.
    let e = p
        .apply(|x: u32| -> u32 { panic!("bad {x}") }, 6)
        .unwrap_err();
    assert!(e.to_string().contains("task #6 panicked"), "{e}");
}

/// `apply` waits for its one task, not for the collector's tick (20 ms): the collector's first
/// pass sent nothing before a 20 ms wait for events, and a task queued while it waited went out
/// at the next event or tick, however idle the workers. Ten applies of a trivial task took
/// 200 ms; the bound here is 150 ms.
fn apply_does_not_wait_for_the_collector_s_tick(m: StartMethod) {
    let mut p = pool(m, 2);
    assert_eq!(p.apply(|x: u64| x + 1, 0).unwrap(), 1);
    let t0 = std::time::Instant::now();
    for i in 0..10u64 {
        assert_eq!(p.apply(|x: u64| x + 1, i).unwrap(), i + 1);
    }
    let ten = t0.elapsed();
    assert!(ten < Duration::from_millis(150), "10 applies took {ten:?}");
}

/// Submits 20 quick tasks, then the one `doomed` submits (it loses its worker), then 3 more,
/// all at once, so that the worker's pace lets it hold the next task while it runs one:
/// every task but the doomed one gives its own result, and the doomed one an error that
/// names it and says `why`.
fn a_task_behind_a_lost_worker_still_runs(
    m: StartMethod,
    doomed: impl FnOnce(&mut pool::WorkerPool) -> pool::AsyncResult<u64>,
    why: &str,
) {
    let mut p = pool(m, 1);
    let quick: Vec<_> = (0..20u64)
        .map(|i| p.apply_async(|x: u64| x + 1, i).unwrap())
        .collect();
    let lost = doomed(&mut p);
    let after: Vec<_> = (0..3u64)
        .map(|i| p.apply_async(|x: u64| x * 10, i).unwrap())
        .collect();
    for (i, r) in quick.into_iter().enumerate() {
        assert_eq!(r.get(Some(Duration::from_secs(10))).unwrap(), i as u64 + 1);
    }
    let e = lost
        .get(Some(Duration::from_secs(10)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("task #20") && e.contains(why), "{e}");
    for (i, r) in after.into_iter().enumerate() {
        assert_eq!(r.get(Some(Duration::from_secs(10))).unwrap(), i as u64 * 10);
    }
}

/// A task held behind one that times out is not lost with that worker: it runs on the worker
/// started in its place.
fn a_task_behind_one_that_times_out_still_runs(m: StartMethod) {
    let slow = |p: &mut pool::WorkerPool| {
        let opts = ApplyOptions::default().task_timeout(Duration::from_millis(300));
        let sleep = |x: u64| {
            std::thread::sleep(Duration::from_secs(3));
            x
        };
        p.apply_async_with(sleep, 1, opts).unwrap()
    };
    a_task_behind_a_lost_worker_still_runs(m, slow, "timed out");
}

/// The same behind a task whose worker process dies.
fn a_task_behind_one_that_kills_its_worker_still_runs(m: StartMethod) {
    let fatal = |p: &mut pool::WorkerPool| {
        let exit = |_: u64| -> u64 {
            // SAFETY: ends this worker process at once, as a crash would.
            unsafe { libc::_exit(3) }
        };
        p.apply_async(exit, 1).unwrap()
    };
    a_task_behind_a_lost_worker_still_runs(m, fatal, "worker 0");
}

/// A worker process does not keep something for every call it ever ran: each `apply_async`
/// task is a call of its own, and a worker that cached each call's job grew by ~200 bytes a
/// task, forever (as did the parent's record of what each worker knows).
fn many_apply_async_tasks_do_not_grow_a_worker(m: StartMethod) {
    fn resident_kib(_: u64) -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    let mut p = pool(m, 1);
    let run = |p: &mut pool::WorkerPool, n: u64| {
        let handles: Vec<_> = (0..n)
            .map(|i| p.apply_async(|x: u64| x, i).unwrap())
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.get(None).unwrap(), i as u64);
        }
    };
    // Its heap first grows to what a stream of tasks needs (~8 MiB here, within 100,000
    // tasks); from there it must stay put (it grew ~8 MiB per 100,000 tasks, for ever).
    run(&mut p, 100_000);
    let before = p.apply(resident_kib, 0).unwrap();
    run(&mut p, 100_000);
    let after = p.apply(resident_kib, 0).unwrap();
    assert!(
        after < before + 3072,
        "the worker grew from {before} to {after} KiB over 100,000 more tasks"
    );
}

/// Process workers only: under threads, a crashing task would end the test process, and a
/// worker's memory would be the test process's, which other tests share.
macro_rules! for_each_process_method {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use pool::StartMethod;

                #[test]
                fn fork() {
                    super::$name(StartMethod::Fork);
                }
                #[test]
                fn spawn() {
                    super::$name(StartMethod::Spawn);
                }
                #[test]
                fn forkserver() {
                    super::$name(StartMethod::Forkserver);
                }
            }
        )*
    };
}

for_each_process_method!(
    a_task_behind_one_that_kills_its_worker_still_runs,
    many_apply_async_tasks_do_not_grow_a_worker
);

/// A blocking `apply` in a loop is a round trip each: one collector thread takes every
/// result, waiting between tasks, where a thread used to start and end for each (~45 µs).
/// The end of the run (here a map call) stops it; the next task starts another.
fn blocking_applies_share_one_collector(m: StartMethod) {
    let mut p = pool(m, 2);
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let apply = |p: &mut pool::WorkerPool, i: u32| {
        let seen = threads.clone();
        let opts = ApplyOptions::default().callback(move |_: &u32| {
            seen.lock().unwrap().insert(std::thread::current().id());
        });
        let r = p.apply_async_with(|x: u32| x + 1, i, opts).unwrap();
        assert_eq!(r.get(Some(Duration::from_secs(10))).unwrap(), i + 1);
    };
    for i in 0..20 {
        apply(&mut p, i);
    }
    assert_eq!(
        threads.lock().unwrap().len(),
        1,
        "one collector for the run"
    );
    assert_eq!(p.map(|x: u8| x, 0..3u8).unwrap(), vec![0, 1, 2]);
    apply(&mut p, 20);
    assert_eq!(
        threads.lock().unwrap().len(),
        2,
        "a new run, a new collector"
    );
    p.join().unwrap();
}

for_each_start_method!(
    blocking_applies_share_one_collector,
    a_task_behind_one_that_times_out_still_runs,
    apply_does_not_wait_for_the_collector_s_tick,
    apply_and_async_results,
    apply_async_callbacks,
    apply_async_timeout,
    apply_async_errors_name_their_task
);

/// Regression: a map with `worker_lifespan` after `apply_async` tasks hung, because the
/// workers the apply tasks started had no lifespan of their own.
fn lifespan_map_after_apply_async_does_not_hang(m: StartMethod) {
    let mut p = pool(m, 2);
    let handles: Vec<_> = (0..30u64)
        .map(|i| p.apply_async(|x: u64| x, i).unwrap())
        .collect();
    assert_eq!(
        handles
            .into_iter()
            .map(|h| h.get(None).unwrap())
            .sum::<u64>(),
        435
    );
    let opts = pool::MapOptions::default().worker_lifespan(5).chunk_size(1);
    let out = p.map_with(|x: u64| x * 2, 0..40u64, opts).unwrap();
    assert_eq!(out.len(), 40);
}

for_each_start_method!(lifespan_map_after_apply_async_does_not_hang);
