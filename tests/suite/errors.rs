//! Panics become errors naming the worker, the task and its arguments; keep-going collects
//! them in place, with retries; the pool is usable after an error.

use std::sync::atomic::{AtomicU32, Ordering};

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
    let out = p.map_results(
        |x: u32| if x % 10 == 3 { panic!("bad {x}") } else { x },
        0..40u32,
        MapOptions::default().keep_going(0).chunk_size(4),
    );
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
    let out = p.map_results(
        |x: u32| {
            if x == 5 && ATTEMPTS.fetch_add(1, Ordering::SeqCst) < 2 {
                panic!("flaky");
            }
            x
        },
        0..10u32,
        MapOptions::default().keep_going(2),
    );
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    let out = p.map_results(
        |x: u32| if x == 5 { panic!("always") } else { x },
        0..10u32,
        MapOptions::default().keep_going(2),
    );
    let e = out[5].as_ref().unwrap_err();
    assert_eq!(e.failure().unwrap().attempts, 3);
    assert!(e.to_string().contains("after 3 attempts"), "{e}");
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

for_each_start_method!(
    a_panic_names_task_arguments_and_message,
    keep_going_puts_errors_in_place,
    keep_going_retries_flaky_tasks,
    invalid_options_are_clear_errors,
    init_and_exit_panics_are_reported,
);
