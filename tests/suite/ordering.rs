//! map keeps input order; map_unordered returns in completion order; order_tasks is round-robin.

use std::time::Duration;

use pool::{MapOptions, StartMethod};

use super::{builder, pool};

fn map_keeps_input_order(m: StartMethod) {
    let mut p = pool(m, 2);
    let out = p.map(|x: u64| x * x, 0..10_000u64).unwrap();
    assert_eq!(out, (0..10_000u64).map(|x| x * x).collect::<Vec<_>>());
    // Inputs that finish in reverse order still come back in input order.
    let out = p
        .map_with(
            |x: u64| {
                std::thread::sleep(Duration::from_millis(40 - 10 * x));
                x
            },
            0..4u64,
            MapOptions::default().chunk_size(1),
        )
        .unwrap();
    assert_eq!(out, vec![0, 1, 2, 3]);
}

fn map_unordered_returns_in_completion_order(m: StartMethod) {
    let mut p = pool(m, 2);
    // Task 0 is slow; with two workers, 1..4 finish before it.
    let out = p
        .map_unordered_with(
            |x: u64| {
                std::thread::sleep(Duration::from_millis(if x == 0 { 300 } else { 10 }));
                x
            },
            0..4u64,
            MapOptions::default().chunk_size(1),
        )
        .unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(*out.last().unwrap(), 0, "the slow task comes last: {out:?}");
    let mut sorted = out.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 1, 2, 3]);
}

fn order_tasks_is_round_robin(m: StartMethod) {
    let mut p = builder(m, 2).order_tasks(true).build().unwrap();
    let ids = p
        .map_ctx_with(
            |ctx, _x: u32| ctx.worker_id(),
            0..12u32,
            MapOptions::default().chunk_size(1),
        )
        .unwrap();
    assert_eq!(ids, (0..12).map(|i| i % 2).collect::<Vec<_>>());
    // With chunks of 2, tasks go to workers two at a time.
    let ids = p
        .map_ctx_with(
            |ctx, _x: u32| ctx.worker_id(),
            0..12u32,
            MapOptions::default().chunk_size(2),
        )
        .unwrap();
    assert_eq!(ids, (0..12).map(|i| (i / 2) % 2).collect::<Vec<_>>());
}

fn chunking_options_give_the_same_results(m: StartMethod) {
    let mut p = pool(m, 2);
    let expect: Vec<u32> = (0..1000u32).map(|x| x + 1).collect();
    for opts in [
        MapOptions::default().chunk_size(1),
        MapOptions::default().chunk_size(7),
        MapOptions::default().n_splits(3),
        MapOptions::default().iterable_len(1000).n_splits(5),
        MapOptions::default().max_tasks_active(1),
    ] {
        let out = p
            .map_with(|x: u32| x + 1, (0..1000u32).filter(|_| true), opts.clone())
            .unwrap();
        assert_eq!(out, expect, "{opts:?}");
    }
    let empty: Vec<u32> = p.map(|x: u32| x, Vec::<u32>::new()).unwrap();
    assert!(empty.is_empty());
}

fn cpu_ids_pin_workers(m: StartMethod) {
    let cpus = pool_core::current_affinity();
    let last = *cpus.last().unwrap();
    let mut p = builder(m, 2).cpu_ids(vec![vec![last]]).build().unwrap();
    let seen = p
        .map(|_: u8| pool_core::current_affinity(), 0..4u8)
        .unwrap();
    assert!(seen.iter().all(|s| s == &vec![last]), "{seen:?}");
    let bad = builder(m, 2).cpu_ids(vec![vec![100_000]]).build();
    assert!(bad.unwrap_err().to_string().contains("CPU 100000"));
}

/// Tiny one-task chunks travel in a pipeline (several in a worker's hand); a slow task now and
/// then empties it. Results still come back in input order, or all of them once, unordered.
fn pipelined_one_task_chunks_keep_order(m: StartMethod) {
    let mut p = pool(m, 2);
    let task = |x: u64| {
        if x % 2500 == 1234 {
            std::thread::sleep(Duration::from_millis(5));
        }
        x * 3
    };
    let n = 20_000u64;
    let expect: Vec<u64> = (0..n).map(|x| x * 3).collect();
    let out = p
        .map_with(task, 0..n, MapOptions::default().chunk_size(1))
        .unwrap();
    assert_eq!(out, expect);
    let lazy: Vec<u64> = p
        .imap_with(task, 0..n, MapOptions::default().chunk_size(1))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(lazy, expect);
    let mut unordered = p
        .map_unordered_with(task, 0..n, MapOptions::default().chunk_size(1))
        .unwrap();
    unordered.sort_unstable();
    assert_eq!(unordered, expect);
}

/// One-task results that arrive together are taken together (several events per wake-up):
/// failures among them keep their places, and under Stop the first one ends the call with
/// its task named, the results queued behind it dropped, the pool still usable.
fn one_task_results_taken_together_keep_failures_in_place(m: StartMethod) {
    let mut p = pool(m, 1);
    let n = 3000u64;
    let task = |x: u64| {
        if x % 97 == 50 {
            panic!("bad {x}");
        }
        x + 1
    };
    let out = p
        .map_results(
            task,
            0..n,
            MapOptions::default().chunk_size(1).keep_going(0),
        )
        .unwrap();
    assert_eq!(out.len() as u64, n);
    for (i, r) in out.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, i as u64 + 1),
            Err(e) => {
                assert_eq!(i % 97, 50, "task {i} failed: {e}");
                assert!(e.to_string().contains(&format!("bad {i}")), "{e}");
            }
        }
    }
    assert_eq!(out.iter().filter(|r| r.is_err()).count(), 31);
    let err = p
        .map_with(
            |x: u64| if x == 2000 { panic!("stop at {x}") } else { x },
            0..n,
            MapOptions::default().chunk_size(1),
        )
        .unwrap_err();
    assert_eq!(err.failure().and_then(|f| f.task), Some(2000), "{err}");
    assert_eq!(p.map(|x: u64| x, 0..3u64).unwrap(), vec![0, 1, 2]);
}

/// An iterator that claims an exact length it does not have.
struct Liar {
    next: u64,
    end: u64,
    claim: usize,
}

impl Iterator for Liar {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claim, Some(self.claim))
    }
}

fn map_survives_a_wrong_size_hint(m: StartMethod) {
    let mut p = pool(m, 2);
    for (end, claim) in [(500, 1000), (1000, 500), (1000, 0)] {
        let liar = Liar {
            next: 0,
            end,
            claim,
        };
        let out = p.map(|x: u64| x + 1, liar).unwrap();
        assert_eq!(
            out,
            (1..=end).collect::<Vec<_>>(),
            "{end} items, {claim} claimed"
        );
    }
}

for_each_start_method!(
    map_survives_a_wrong_size_hint,
    map_keeps_input_order,
    pipelined_one_task_chunks_keep_order,
    one_task_results_taken_together_keep_failures_in_place,
    map_unordered_returns_in_completion_order,
    order_tasks_is_round_robin,
    chunking_options_give_the_same_results,
    cpu_ids_pin_workers,
);
