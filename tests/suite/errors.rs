//! Panics become errors naming the worker, the task and its arguments; keep-going collects
//! them in place, with retries; the pool is usable after an error.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use pool::{Cause, MapOptions, Phase, PoolError, StartMethod};

use super::pool;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Job {
    name: String,
    n: u32,
}

fn a_panic_names_task_arguments_and_message(m: StartMethod) {
    let mut p = pool(m, 2);
    let jobs: Vec<Job> = (0..50)
        .map(|n| Job {
            name: format!("job-{n}"),
            n,
        })
        .collect();
    let err = p
        .map(
            |j: Job| {
                if j.n == 17 {
                    panic!("cannot handle {}", j.name)
                } else {
                    j.n
                }
            },
            jobs,
        )
        .unwrap_err();
    let f = err.failure().expect("a worker failure");
    assert_eq!(
        (f.phase, &f.cause, f.task),
        (Phase::Task, &Cause::Panic, Some(17))
    );
    assert!(f.worker < 2);
    let text = err.to_string();
    assert!(text.contains("task #17 panicked in worker"), "{text}");
    assert!(text.contains(r#"Job { name: "job-17", n: 17 }"#), "{text}");
    assert!(text.contains("cannot handle job-17"), "{text}");
    // The pool recovers.
    assert_eq!(p.map(|x: u32| x, 0..3u32).unwrap(), vec![0, 1, 2]);
}

fn keep_going_puts_errors_in_place(m: StartMethod) {
    let mut p = pool(m, 2);
    let out = p
        .map_results(
            |x: u32| if x % 10 == 3 { panic!("bad {x}") } else { x },
            0..40u32,
            MapOptions::default().keep_going(0).chunk_size(4),
        )
        .unwrap();
    assert_eq!(out.len(), 40);
    for (i, r) in out.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v as usize, i),
            Err(e) => {
                assert_eq!(i % 10, 3);
                assert!(e.to_string().contains(&format!("bad {i}")), "{e}");
            }
        }
    }
    assert_eq!(out.iter().filter(|r| r.is_err()).count(), 4);
}

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

fn keep_going_retries_flaky_tasks(m: StartMethod) {
    let mut p = pool(m, 1);
    // Fails on the first two attempts of task 5, in whichever worker runs it.
    ATTEMPTS.store(0, Ordering::SeqCst);
    let out = p
        .map_results(
            |x: u32| {
                if x == 5 && ATTEMPTS.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("flaky");
                }
                x
            },
            0..10u32,
            MapOptions::default().keep_going(2),
        )
        .unwrap();
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    let out = p
        .map_results(
            |x: u32| if x == 5 { panic!("always") } else { x },
            0..10u32,
            MapOptions::default().keep_going(2),
        )
        .unwrap();
    let e = out[5].as_ref().unwrap_err();
    assert_eq!(e.failure().unwrap().attempts, 3);
    assert!(e.to_string().contains("after 3 attempts"), "{e}");
}

static WORD_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// Thread workers keep a copy of each argument that owns memory while its task runs, written
/// over the last one's; a short word after a long one must come back as itself, in the error
/// that names it and in the retry that reruns it.
fn string_arguments_are_named_and_retried_exactly(m: StartMethod) {
    let mut p = pool(m, 1);
    WORD_ATTEMPTS.store(0, Ordering::SeqCst);
    let words: Vec<String> = (0..40)
        .map(|i| match i % 2 {
            0 => format!("a-rather-long-word-number-{i}"),
            _ => format!("w{i}"),
        })
        .collect();
    let out = p
        .map_results(
            |w: String| {
                if w == "w21" && WORD_ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("once");
                }
                if w == "w33" || w.ends_with("-30") {
                    panic!("bad {w}");
                }
                w
            },
            words.clone(),
            MapOptions::default().keep_going(1).chunk_size(40),
        )
        .unwrap();
    for (i, (r, w)) in out.iter().zip(&words).enumerate() {
        match (i, r) {
            (30 | 33, Err(e)) => {
                let text = e.to_string();
                assert!(text.contains(&format!("(args: {w:?})")), "{text}");
                assert!(text.contains(&format!("bad {w}")), "{text}");
            }
            (_, Ok(back)) => assert_eq!(back, w),
            (_, Err(e)) => panic!("task {i} failed: {e}"),
        }
    }
}

fn invalid_options_are_clear_errors(m: StartMethod) {
    let mut p = pool(m, 2);
    let e = p
        .map_with(|x: u8| x, 0..3u8, MapOptions::default().chunk_size(0))
        .unwrap_err();
    assert!(
        matches!(e, PoolError::InvalidConfig(_)) && e.to_string().contains("chunk_size"),
        "{e}"
    );
    let e = pool::WorkerPool::builder()
        .n_jobs(0)
        .start_method(m)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("n_jobs"), "{e}");
}

fn init_and_exit_panics_are_reported(m: StartMethod) {
    let mut p = pool(m, 2);
    let e = p
        .map_with(
            |x: u8| x,
            0..10u8,
            MapOptions::default().worker_init(|_| panic!("no model file")),
        )
        .unwrap_err();
    let f = e.failure().unwrap();
    assert_eq!(f.phase, Phase::Init);
    assert!(
        e.to_string().contains("worker_init panicked") && e.to_string().contains("no model file"),
        "{e}"
    );
    let e = p
        .map_with(
            |x: u8| x,
            0..10u8,
            MapOptions::default().worker_exit(|_| -> u8 { panic!("flush failed") }),
        )
        .unwrap_err();
    assert_eq!(e.failure().unwrap().phase, Phase::Exit);
    assert!(e.to_string().contains("flush failed"), "{e}");
    assert_eq!(p.map(|x: u8| x, 0..2u8).unwrap(), vec![0, 1]);
}

/// Values alive in this process, per test and start method (they run concurrently).
static LIVE: [AtomicI64; 24] = [const { AtomicI64::new(0) }; 24];

/// A result that counts its live copies in [`LIVE`]: made by a task (in this process on
/// threads) or by deserialization (process workers).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(from = "(usize, u64)", into = "(usize, u64)")]
struct Tracked(usize, u64);

impl Tracked {
    fn new(tag: usize, v: u64) -> Self {
        LIVE[tag].fetch_add(1, Ordering::SeqCst);
        Tracked(tag, v)
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Tracked::new(self.0, self.1)
    }
}

/// Tags from here on are slow to drop (20 µs each).
const SLOW_DROPS: usize = 16;

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.0 >= SLOW_DROPS {
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
        LIVE[self.0].fetch_sub(1, Ordering::SeqCst);
    }
}

impl From<(usize, u64)> for Tracked {
    fn from((tag, v): (usize, u64)) -> Self {
        Tracked::new(tag, v)
    }
}

impl From<Tracked> for (usize, u64) {
    fn from(t: Tracked) -> Self {
        (t.0, t.1)
    }
}

/// The values of `tag` still alive once they stop changing toward zero (workers still finishing
/// their chunks hold values until they stop), or after 10 s.
fn live_once_settled(tag: usize) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while LIVE[tag].load(Ordering::SeqCst) != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    LIVE[tag].load(Ordering::SeqCst)
}

fn a_failed_map_drops_each_result_once(m: StartMethod) {
    let tag = m as usize;
    let mut p = pool(m, 2);
    let inputs = move || (0..20_000u64).map(move |x| (tag, x));
    let err = p
        .map(
            |(tag, x): (usize, u64)| {
                if x == 12_345 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    panic!("bad input {x}");
                }
                Tracked::new(tag, x)
            },
            inputs(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("bad input 12345"), "{err}");
    assert_eq!(live_once_settled(tag), 0, "results leaked or dropped twice");
    let out = p
        .map(|(tag, x): (usize, u64)| Tracked::new(tag, x), inputs())
        .unwrap();
    assert_eq!(out.len(), 20_000);
    assert!(out.iter().enumerate().all(|(i, t)| t.1 == i as u64));
    assert_eq!(LIVE[tag].load(Ordering::SeqCst), 20_000);
    drop(out);
    assert_eq!(LIVE[tag].load(Ordering::SeqCst), 0);
}

/// The inputs of a failed call are dropped once each, wherever they were: never handed out,
/// in a chunk in flight, or run.
fn a_failed_map_drops_each_input_once(m: StartMethod) {
    // Its own counters: the results' test runs at the same time.
    let tag = 8 + m as usize;
    let mut p = pool(m, 2);
    let inputs: Vec<Tracked> = (0..20_000u64).map(|x| Tracked::new(tag, x)).collect();
    // Chunks longer than a worker reads at once: the failed one still holds unread inputs.
    let err = p
        .map_with(
            |t: Tracked| {
                if t.1 == 12_345 {
                    panic!("bad input {}", t.1);
                }
                t.1
            },
            inputs,
            MapOptions::default().chunk_size(3000),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("Tracked(") && err.to_string().contains("12345"),
        "{err}"
    );
    assert_eq!(live_once_settled(tag), 0, "inputs leaked or dropped twice");
}

/// The inputs a call keeps while their chunk is out (process workers) are dropped once each,
/// and all of them before the call returns, though big chunks of them are dropped on a thread
/// of the call's own (slow drops: a call that did not wait for that thread would return first).
fn a_map_drops_each_input_once_before_it_returns(m: StartMethod) {
    let tag = SLOW_DROPS + m as usize;
    let mut p = pool(m, 2);
    let inputs: Vec<Tracked> = (0..20_000u64).map(|x| Tracked::new(tag, x)).collect();
    let out = p
        .map_with(
            |t: Tracked| t.1,
            inputs,
            MapOptions::default().chunk_size(1000),
        )
        .unwrap();
    assert_eq!(out.len(), 20_000);
    assert_eq!(
        LIVE[tag].load(Ordering::SeqCst),
        0,
        "inputs leaked or not yet dropped"
    );
}

for_each_start_method!(
    a_failed_map_drops_each_input_once,
    a_map_drops_each_input_once_before_it_returns,
    a_failed_map_drops_each_result_once,
    a_panic_names_task_arguments_and_message,
    keep_going_puts_errors_in_place,
    keep_going_retries_flaky_tasks,
    string_arguments_are_named_and_retried_exactly,
    invalid_options_are_clear_errors,
    init_and_exit_panics_are_reported,
);
