//! Bars of real pool calls, drawn into an in-memory terminal: counts, totals, failures,
//! interruptions, unknown lengths, and task-by-task movement with big chunks.

mod common;

use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::Duration;

use common::pool;
use pool_core::{
    CallInfo, Layers, MapOptions, Outcome, Progress, ProgressSink, ProgressSpec, Status, Threads,
};
use pool_progress::{DrawTarget, MemoryTerm, with_draw_target};

fn screen() -> (MemoryTerm, DrawTarget) {
    let term = MemoryTerm::new(100, 20);
    let target = DrawTarget::term(term.clone());
    (term, target)
}

fn line_with(term: &MemoryTerm, needle: &str) -> String {
    term.lines()
        .into_iter()
        .rfind(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", term.contents()))
}

#[test]
fn map_draws_a_finished_bar_with_the_task_count() {
    let (term, target) = screen();
    let mut p = pool(2);
    let out = with_draw_target(target, || {
        p.map_with(
            |x: u64| x * 2,
            0..500u64,
            MapOptions::default().progress(ProgressSpec::default().desc("double")),
        )
    })
    .unwrap();
    assert_eq!(out.len(), 500);
    let line = line_with(&term, "double:");
    assert!(line.starts_with("double: 100%|"), "{line}");
    assert!(line.contains("| 500/500 ["), "{line}");
    assert!(line.ends_with(" tasks/s]"), "{line}");
    assert_eq!(term.lines().len(), 1, "{}", term.contents());
}

#[test]
fn a_failed_task_is_named_with_its_error() {
    let (term, target) = screen();
    let mut p = pool(2);
    let r = with_draw_target(target, || {
        p.map_with(
            |x: u64| {
                if x == 7 {
                    panic!("seven is unlucky")
                }
                x
            },
            0..100u64,
            MapOptions::default()
                .chunk_size(1)
                .progress(ProgressSpec::default().desc("luck")),
        )
    });
    assert!(r.is_err());
    let fail = line_with(&term, "✗ luck:");
    assert!(fail.contains("task #7 panicked"), "{fail}");
    assert!(fail.contains("seven is unlucky"), "{fail}");
    // (Other workers may finish every task before the failure stops the call.)
    let bar = term
        .lines()
        .into_iter()
        .find(|l| l.starts_with("luck: "))
        .unwrap_or_else(|| panic!("no bar in:\n{}", term.contents()));
    assert!(bar.ends_with("✗ failed"), "{bar}");
    assert!(bar.contains("/100 ["), "{bar}");
}

#[test]
fn keep_going_counts_failures_on_the_bar() {
    let (term, target) = screen();
    let mut p = pool(2);
    let out = with_draw_target(target, || {
        p.map_results(
            |x: u64| {
                if x % 10 == 3 {
                    panic!("bad {x}")
                }
                x
            },
            0..40u64,
            MapOptions::default()
                .keep_going(0)
                .progress(ProgressSpec::default().desc("kg")),
        )
    });
    assert_eq!(out.unwrap().iter().filter(|r| r.is_err()).count(), 4);
    let failures = term
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("✗ kg: task #"))
        .count();
    assert_eq!(failures, 4, "{}", term.contents());
    let bar = line_with(&term, "kg: 100%");
    assert!(
        bar.contains("| 40/40 [") && bar.ends_with(", 4 failed]"),
        "{bar}"
    );
}

#[test]
fn dropping_an_imap_shows_the_interruption() {
    let (term, target) = screen();
    let mut p = pool(2);
    with_draw_target(target, || {
        let mut it = p
            .imap_with(
                |x: u64| {
                    sleep(Duration::from_millis(2));
                    x
                },
                0..1000u64,
                MapOptions::default()
                    .chunk_size(1)
                    .progress(ProgressSpec::default().desc("cut")),
            )
            .unwrap();
        for _ in 0..5 {
            it.next().unwrap().unwrap();
        }
    });
    let bar = line_with(&term, "cut:");
    assert!(bar.ends_with("⚠ interrupted"), "{bar}");
    assert!(bar.contains("/1000 ["), "{bar}");
}

#[test]
fn unknown_length_input_gets_a_counter() {
    let (term, target) = screen();
    let mut p = pool(2);
    let mut n = 0u64;
    let inputs = std::iter::from_fn(move || {
        n += 1;
        (n <= 30).then_some(n)
    });
    let out = with_draw_target(target, || {
        p.map_with(
            |x: u64| x,
            inputs,
            MapOptions::default().progress(ProgressSpec::default().desc("gen").unit("items")),
        )
    })
    .unwrap();
    assert_eq!(out.len(), 30);
    let line = line_with(&term, "gen:");
    assert!(line.starts_with("gen: 30 items ["), "{line}");
    assert!(!line.contains('%'), "{line}");
}

#[test]
fn a_given_total_overrides_an_unknown_length() {
    let (term, target) = screen();
    let mut p = pool(2);
    let inputs = (0..20u64).filter(|_| true); // no exact size hint
    with_draw_target(target, || {
        p.map_with(
            |x: u64| x,
            inputs,
            MapOptions::default().progress(ProgressSpec::default().desc("tot").total(20)),
        )
    })
    .unwrap();
    let line = line_with(&term, "tot:");
    assert!(
        line.starts_with("tot: 100%|") && line.contains("| 20/20 ["),
        "{line}"
    );
}

// --- Counting tasks, not chunks ---------------------------------------------------------------

static SEEN: Mutex<Vec<u64>> = Mutex::new(Vec::new());

struct Recorder;

impl ProgressSink for Recorder {
    fn start(&mut self, _: &CallInfo) {}
    fn update(&mut self, s: &Status) {
        SEEN.lock().unwrap().push(s.done);
    }
    fn finish(&mut self, s: &Status, _: &Outcome) {
        SEEN.lock().unwrap().push(s.done);
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Recording;

impl Progress for Recording {
    fn sink(_: &CallInfo) -> Option<Box<dyn ProgressSink>> {
        Some(Box::new(Recorder))
    }
}

#[test]
fn progress_moves_task_by_task_inside_big_skewed_chunks() {
    let mut p = pool_core::WorkerPool::<(), (), Layers<Threads, Recording>>::builder()
        .n_jobs(2)
        .build()
        .unwrap();
    // Two chunks of 40 tasks; the first task of each is slow, the rest take 5 ms.
    p.map_with(
        |x: u64| {
            sleep(Duration::from_millis(if x.is_multiple_of(40) {
                100
            } else {
                5
            }))
        },
        0..80u64,
        MapOptions::default().chunk_size(40).progress_bar(true),
    )
    .unwrap();
    let seen = Arc::new(SEEN.lock().unwrap().clone());
    assert_eq!(seen.last(), Some(&80));
    let distinct: std::collections::BTreeSet<_> = seen.iter().copied().collect();
    let steps = seen.windows(2).map(|w| w[1].saturating_sub(w[0])).max();
    assert!(
        distinct.len() >= 6 && steps < Some(40),
        "updates should move within chunks: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "never backwards: {seen:?}"
    );
}

#[test]
fn apply_async_tasks_have_a_bar_whose_total_grows() {
    let (term, target) = screen();
    let mut p = pool(2);
    p.apply_progress_bar(Some(ProgressSpec::default().desc("apply")));
    with_draw_target(target, || {
        let handles: Vec<_> = (0..30u64)
            .map(|i| {
                p.apply_async(
                    |x: u64| {
                        if x == 4 {
                            panic!("four")
                        }
                        x
                    },
                    i,
                )
                .unwrap()
            })
            .collect();
        let ok = handles.into_iter().filter_map(|h| h.get(None).ok()).count();
        assert_eq!(ok, 29);
        p.join().unwrap();
    });
    // The total is not known up front, so the bar counts (and shows the failure).
    let line = line_with(&term, "apply:");
    assert!(line.starts_with("apply: 30 tasks ["), "{}", term.contents());
    assert!(line.contains("1 failed"), "{}", term.contents());
}

#[test]
fn apply_async_tasks_slower_to_come_than_to_run_count_on_as_one_run() {
    // Each task is done before the next is submitted: the pool is idle between them. The bar
    // pauses each time (its line finished, so output printed meanwhile comes below it), and
    // the next task's line counts on: the run's last line counts all of it, its clock stopped
    // at the last task (not at `join`, a second and a half later).
    let (term, target) = screen();
    let mut p = pool(2);
    p.apply_progress_bar(Some(ProgressSpec::default().desc("slow apply")));
    with_draw_target(target, || {
        for i in 0..8u64 {
            assert_eq!(p.apply_async(|x: u64| x, i).unwrap().get(None).unwrap(), i);
            sleep(Duration::from_millis(30));
        }
        sleep(Duration::from_millis(1_500));
        p.join().unwrap();
    });
    let counts: Vec<String> = term
        .lines()
        .into_iter()
        .filter_map(|l| {
            Some(
                l.strip_prefix("slow apply: ")?
                    .split(" tasks")
                    .next()?
                    .to_owned(),
            )
        })
        .collect();
    let want: Vec<String> = (1..=8).map(|n| n.to_string()).collect();
    assert_eq!(counts, want, "{}", term.contents());
    let last = line_with(&term, "slow apply:");
    assert!(
        last.starts_with("slow apply: 8 tasks [00:00, "),
        "{}",
        term.contents()
    );
}

#[test]
fn an_apply_async_bar_ends_before_a_map_bar_starts() {
    let (term, target) = screen();
    let mut p = pool(2);
    p.apply_progress_bar(Some(ProgressSpec::default().desc("apply")));
    with_draw_target(target, || {
        let r = p.apply_async(|x: u64| x + 1, 1).unwrap();
        assert_eq!(r.get(None).unwrap(), 2);
        p.map_with(
            |x: u64| x,
            0..10u64,
            MapOptions::default().progress(ProgressSpec::default().desc("map")),
        )
        .unwrap();
    });
    let lines = term.lines();
    assert_eq!(lines.len(), 2, "{}", term.contents());
    assert!(
        lines[0].starts_with("apply: 1 tasks ["),
        "{}",
        term.contents()
    );
    assert!(lines[1].starts_with("map: 100%|"), "{}", term.contents());
}
