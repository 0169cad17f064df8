//! `keep_going(retries)` retries every kind of failure (panics, timeouts; worker deaths are in
//! `tests/faults`), the user may narrow the kinds, and the final error tells every attempt.
//!
//! Tasks remember their first attempt with a marker file (workers may be other processes), so
//! a task can fail once and then succeed.

use std::path::PathBuf;
use std::time::Duration;

use pool::{Cause, MapOptions, RetryOn, StartMethod};

use super::pool;

const LIMIT: Duration = Duration::from_millis(300);

/// A fresh directory for one test's markers.
fn markers() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().to_string_lossy().into_owned();
    (dir, path)
}

/// Whether this is the first attempt at task `x` (creates its marker).
fn first_attempt(x: u32, dir: &str) -> bool {
    std::fs::File::create_new(PathBuf::from(dir).join(format!("task-{x}"))).is_ok()
}

/// Task 3 hangs on its first attempt and succeeds after.
fn hangs_once((x, dir): (u32, String)) -> u32 {
    if x == 3 && first_attempt(x, &dir) {
        std::thread::sleep(Duration::from_secs(10));
    }
    x
}

/// Task 3 hangs on its first attempt and panics on every later one.
fn hangs_then_panics((x, dir): (u32, String)) -> u32 {
    if x == 3 {
        if first_attempt(x, &dir) {
            std::thread::sleep(Duration::from_secs(10));
        }
        panic!("record {x} is corrupt");
    }
    x
}

fn a_timed_out_task_is_retried(m: StartMethod) {
    let (_dir, path) = markers();
    let mut p = pool(m, 2);
    let inputs: Vec<(u32, String)> = (0..8).map(|x| (x, path.clone())).collect();
    let out = p
        .map_results(
            hangs_once,
            inputs,
            MapOptions::default()
                .chunk_size(2)
                .task_timeout(LIMIT)
                .keep_going(1),
        )
        .expect("the call runs");
    let got: Vec<u32> = out
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert_eq!(got, (0..8).collect::<Vec<_>>());
}

fn the_final_error_tells_every_attempt(m: StartMethod) {
    // Longer than a panic takes to report on a loaded machine.
    const LIMIT: Duration = Duration::from_secs(1);
    let (_dir, path) = markers();
    let mut p = pool(m, 2);
    let inputs: Vec<(u32, String)> = (0..6).map(|x| (x, path.clone())).collect();
    let out = p
        .map_results(
            hangs_then_panics,
            inputs,
            MapOptions::default()
                .chunk_size(1)
                .task_timeout(LIMIT)
                .keep_going(2),
        )
        .expect("the call runs");
    let e = out[3].as_ref().expect_err("task 3 fails every attempt");
    let f = e.failure().expect("a worker failure");
    assert_eq!(
        (f.task, &f.cause, f.attempts),
        (Some(3), &Cause::Panic, 3),
        "{e}"
    );
    assert_eq!(f.earlier.len(), 2, "{e}");
    assert!(f.earlier[0].contains("timed out after 1s"), "{e}");
    assert!(f.earlier[1].contains("record 3 is corrupt"), "{e}");
    let text = e.to_string();
    assert!(text.contains("after 3 attempts"), "{text}");
    assert!(text.contains("timed out after 1s"), "{text}");
    for (i, r) in out.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert_eq!(*r.as_ref().unwrap(), i as u32);
    }
}

fn retries_can_be_narrowed_to_some_kinds(m: StartMethod) {
    let (_dir, path) = markers();
    let mut p = pool(m, 2);
    let inputs: Vec<(u32, String)> = (0..6).map(|x| (x, path.clone())).collect();
    let out = p
        .map_results(
            hangs_once,
            inputs,
            MapOptions::default()
                .chunk_size(1)
                .task_timeout(LIMIT)
                .keep_going(3)
                .retry_on(RetryOn::PANICS),
        )
        .expect("the call runs");
    let e = out[3].as_ref().expect_err("timeouts are not retried");
    let f = e.failure().unwrap();
    assert_eq!((&f.cause, f.attempts), (&Cause::Timeout(LIMIT), 1), "{e}");
    // Panics still are: a task that panics once succeeds on its second attempt.
    let (_dir2, path2) = markers();
    let inputs: Vec<(u32, String)> = (0..6).map(|x| (x, path2.clone())).collect();
    let out = p
        .map_results(
            |(x, dir): (u32, String)| {
                if x == 2 && first_attempt(x, &dir) {
                    panic!("first try of {x}");
                }
                x
            },
            inputs,
            MapOptions::default()
                .keep_going(1)
                .retry_on(RetryOn::PANICS),
        )
        .expect("the call runs");
    assert!(out.iter().all(Result::is_ok), "{out:?}");
}

for_each_start_method!(
    a_timed_out_task_is_retried,
    the_final_error_tells_every_attempt,
    retries_can_be_narrowed_to_some_kinds,
);
