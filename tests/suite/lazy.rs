//! imap is lazy: endless inputs, bounded memory, and a dropped iterator stops the work.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pool::{MapOptions, StartMethod};

use super::pool;

fn imap_over_an_endless_input(m: StartMethod) {
    let mut p = pool(m, 2);
    let first: Vec<u64> = p
        .imap_with(|x: u64| x * 10, 0u64.., MapOptions::default().chunk_size(3))
        .unwrap()
        .take(25)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (0..25u64).map(|x| x * 10).collect::<Vec<_>>());
    // The pool is usable again once the iterator is gone.
    assert_eq!(p.map(|x: u8| x, 0..3u8).unwrap(), vec![0, 1, 2]);
}

fn imap_unordered_over_an_endless_input(m: StartMethod) {
    let mut p = pool(m, 2);
    let mut got: Vec<u64> = p
        .imap_unordered(|x: u64| x, (0u64..).map(|x| x * 2))
        .unwrap()
        .take(10)
        .map(Result::unwrap)
        .collect();
    got.sort();
    assert!(got.iter().all(|x| x % 2 == 0));
    assert_eq!(got.len(), 10);
}

/// Never more than `max_tasks_active` tasks are taken from the input and not yet finished.
/// (Unordered, so that no result waits for its turn: in an ordered call, finished results
/// waiting behind a slow one are buffered apart, see `pool_core`'s scheduler tests.)
fn back_pressure_bounds_tasks_in_flight(m: StartMethod) {
    let mut p = pool(m, 2);
    let pulled = Arc::new(AtomicU64::new(0));
    let max_seen = Arc::new(AtomicU64::new(0));
    let (pl, ms) = (pulled.clone(), max_seen.clone());
    let returned = Arc::new(AtomicU64::new(0));
    let rt = returned.clone();
    let input = (0..400u64).inspect(move |_| {
        let now = pl.fetch_add(1, Ordering::SeqCst) + 1;
        let in_flight = now - rt.load(Ordering::SeqCst);
        ms.fetch_max(in_flight, Ordering::SeqCst);
    });
    let opts = MapOptions::default().chunk_size(2).max_tasks_active(6);
    let mut n = 0;
    for r in p.imap_unordered_with(|x: u64| x, input, opts).unwrap() {
        r.unwrap();
        returned.fetch_add(1, Ordering::SeqCst);
        n += 1;
    }
    assert_eq!(n, 400);
    let max = max_seen.load(Ordering::SeqCst);
    assert!(
        max <= 6,
        "{max} tasks were in flight with max_tasks_active = 6"
    );
    assert!(max >= 4, "the pool should use its allowance, saw {max}");
}

/// Dropping a lazy map early stops it: the input is not drained.
fn dropping_imap_stops_the_call(m: StartMethod) {
    let mut p = pool(m, 2);
    let pulled = Arc::new(AtomicU64::new(0));
    let pl = pulled.clone();
    {
        let mut it = p
            .imap_with(
                |x: u64| x,
                (0..1_000_000u64).inspect(move |_| {
                    pl.fetch_add(1, Ordering::SeqCst);
                }),
                MapOptions::default().chunk_size(10),
            )
            .unwrap();
        assert_eq!(it.next().unwrap().unwrap(), 0);
    }
    // Results may run ahead of the ordered output by `max_tasks_active × 64` (40 × 64 here)
    // while the caller holds the first one: the call stops there, far from draining the input.
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(
        pulled <= 40 * 64 + 40,
        "pulled {pulled} of 1,000,000 inputs"
    );
    assert_eq!(p.map(|x: u8| x + 1, 0..2u8).unwrap(), vec![1, 2]);
}

/// Task 3, the first of the second worker's chunk, runs 150 ms.
fn slow_fourth(x: u64) -> u64 {
    if x == 3 {
        std::thread::sleep(Duration::from_millis(150));
    }
    x
}

/// Tasks 0 and 1 run at once; the others wait (10 s at most) for the file named with them.
fn gated((x, gate): (u64, String)) -> u64 {
    let t0 = Instant::now();
    while x >= 2 && !Path::new(&gate).exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    x
}

/// A dropped `imap` can leave a chunk running (a thread cannot be killed); what it finishes
/// after the next call began is no progress of that call.
fn a_dropped_calls_chunk_is_no_progress_of_the_next_call(m: StartMethod) {
    let mut p = pool(m, 2);
    let status = p.status_handle();
    {
        let mut it = p
            .imap_with(slow_fourth, 0..6u64, MapOptions::default().chunk_size(3))
            .unwrap();
        assert_eq!(it.next().map(Result::unwrap), Some(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let gate = std::env::temp_dir().join(format!("pool-gate-{}-{m:?}", std::process::id()));
    let inputs: Vec<(u64, String)> = (0..6).map(|x| (x, gate.display().to_string())).collect();
    let runner =
        std::thread::spawn(move || p.map_with(gated, inputs, MapOptions::default().chunk_size(1)));
    // Tasks 0 and 1 are done and 2 and 3 wait at the gate, once the workers are free (on a
    // loaded machine, later than the dropped call's 150 ms); 300 ms on, whatever the dropped
    // call left running has ended, and added nothing.
    let until = Instant::now() + Duration::from_secs(5);
    let mut seen = status.snapshot();
    while (seen.done, seen.running) != (2, 2) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        seen = status.snapshot();
    }
    std::thread::sleep(Duration::from_millis(300));
    let later = status.snapshot();
    std::fs::write(&gate, b"").unwrap();
    let out = runner.join().unwrap();
    let _ = std::fs::remove_file(&gate);
    assert_eq!(out.unwrap(), (0..6).collect::<Vec<u64>>());
    assert_eq!((seen.done, seen.running), (2, 2), "{seen:?}");
    assert_eq!((later.done, later.running), (2, 2), "{later:?}");
}

for_each_start_method!(
    a_dropped_calls_chunk_is_no_progress_of_the_next_call,
    imap_over_an_endless_input,
    imap_unordered_over_an_endless_input,
    back_pressure_bounds_tasks_in_flight,
    dropping_imap_stops_the_call,
);
