//! Insights of a real pool whose tasks, init and exit sleep for known times.

use std::thread::sleep;
use std::time::Duration;

use pool_core::{Layers, MapOptions, NoProgress, Threads};
use pool_insights::Insights;

/// Threads, no bars, this crate's insights.
type Pool = pool_core::WorkerPool<(), (), Layers<Threads, NoProgress, Insights>>;

/// Sleeps overshoot by a little, more on a busy machine: accept up to this much per sleep.
const SLACK: f64 = 0.015;

fn within(value: f64, expected: f64, n_sleeps: f64) -> bool {
    value >= expected * 0.999 && value <= expected + SLACK * n_sleeps
}

#[test]
fn known_sleeps_give_known_insights() {
    let mut pool = Pool::builder()
        .n_jobs(2)
        .enable_insights(true)
        .build()
        .unwrap();
    // 20 tasks: five each of 10, 20, 30 and 40 ms; init 30 ms and exit 20 ms per worker.
    let ms = |x: u64| (x % 4 + 1) * 10;
    pool.map_with(
        move |x: u64| sleep(Duration::from_millis(ms(x))),
        0..20u64,
        MapOptions::default()
            .chunk_size(1)
            .worker_init(|_| sleep(Duration::from_millis(30)))
            .worker_exit(|_| sleep(Duration::from_millis(20))),
    )
    .unwrap();
    let i = pool.get_insights();
    eprintln!("{i}");
    assert_eq!(i.n_workers, 2);
    assert_eq!(i.total_completed_tasks(), 20);
    assert!(within(i.total_working_time, 0.5, 20.0), "{i}");
    assert!(within(i.total_init_time, 0.06, 2.0), "{i}");
    assert!(within(i.total_exit_time, 0.04, 2.0), "{i}");
    assert!(i.init_time.iter().all(|t| within(*t, 0.03, 1.0)), "{i}");
    let p = i.task_duration_percentiles;
    assert_eq!(p.count, 20);
    // Sorted: 5×10, 5×20, 5×30, 5×40 ms: the 10th is 20 ms, the 18th and the last 40 ms.
    assert!(within(p.p50, 0.020, 1.0), "{p:?}");
    assert!(within(p.p90, 0.040, 1.0), "{p:?}");
    assert!(
        within(p.p99, 0.040, 1.0) && within(p.max, 0.040, 1.0),
        "{p:?}"
    );
    assert!(within(p.mean, 0.025, 1.0), "{p:?}");
    // The slowest five are all 40 ms tasks: x ≡ 3 (mod 4), shown with their arguments.
    assert_eq!(i.top_5_max_task_durations.len(), 5);
    assert!(
        i.top_5_max_task_durations
            .iter()
            .all(|d| within(*d, 0.040, 1.0)),
        "{i}"
    );
    let mut args = i.top_5_max_task_args.clone();
    args.sort_by_key(|a| a.parse::<u64>().unwrap());
    assert_eq!(args, ["3", "7", "11", "15", "19"]);
    let worker_counts: u64 = i
        .worker_task_duration_percentiles
        .iter()
        .map(|p| p.count)
        .sum();
    assert_eq!(worker_counts, 20);
    // Threads hand values over without copying: next to nothing.
    assert!(i.total_data_transfer_time < 0.005, "{i}");
    let sum = i.start_up_ratio
        + i.init_ratio
        + i.waiting_ratio
        + i.working_ratio
        + i.exit_ratio
        + i.data_transfer_ratio;
    assert!((sum - 1.0).abs() < 1e-9);
    assert!(i.working_ratio > 0.5, "{i}");
}

#[test]
fn insights_off_means_empty_numbers() {
    let mut pool = Pool::builder().n_jobs(2).build().unwrap();
    pool.map(|x: u64| x, 0..10u64).unwrap();
    let i = pool.get_insights();
    assert_eq!(i.total_completed_tasks(), 0);
    assert_eq!(i.total_time, 0.0);
    assert!(!i.enabled);
    // Not a table of zeros that reads like a measurement: say what to turn on.
    assert_eq!(
        i.to_string(),
        "insights not enabled (enable_insights(true))"
    );
}

#[test]
fn workers_that_mostly_wait_are_told_what_to_try() {
    let mut pool = Pool::builder()
        .n_jobs(2)
        .enable_insights(true)
        .build()
        .unwrap();
    // The input comes slowly (10 ms per item) and each task takes 1 ms: the workers wait.
    let slow_input = (0..20u64).inspect(|_| sleep(Duration::from_millis(10)));
    let out: Vec<u64> = pool
        .imap_with(
            |x: u64| {
                sleep(Duration::from_millis(1));
                x
            },
            slow_input,
            MapOptions::default().chunk_size(1),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out.len(), 20);
    let i = pool.get_insights();
    assert!(i.waiting_ratio > 0.5, "{i}");
    let text = i.to_string();
    let warning = text
        .lines()
        .find(|l| l.starts_with("warning: workers spent"))
        .unwrap_or_else(|| panic!("no waiting warning:\n{text}"));
    assert!(
        warning.contains("% of their time waiting for work"),
        "{warning}"
    );
    assert!(
        text.contains("chunk_size"),
        "the hint names what to try: {text}"
    );
    assert_eq!(i.warnings().len(), 1, "{text}");
}

#[test]
fn short_tasks_are_all_counted_and_a_slow_one_still_shows() {
    let mut pool = Pool::builder()
        .n_jobs(2)
        .enable_insights(true)
        .keep_alive(true)
        .build()
        .unwrap();
    // 200k tasks of nanoseconds: sampled, most of each chunk timed as a whole.
    let n = 200_000u64;
    pool.map(|x: u64| x.wrapping_mul(x), 0..n).unwrap();
    let i = pool.get_insights();
    assert_eq!(i.total_completed_tasks(), n);
    let p = i.task_duration_percentiles;
    assert!(
        p.count as f64 > 0.9 * n as f64 && p.count <= n,
        "every task is in the histogram, by weight: {p:?}"
    );
    assert!(p.p50 < 0.000_1, "nanosecond tasks: {p:?}");
    // After the short ones, a call with one 30 ms task among short ones: sampling must not
    // hide it, whether it was timed alone or inside a chunk's bulk.
    pool.map_with(
        |x: u64| {
            if x == 5_000 {
                sleep(Duration::from_millis(30));
            }
            x
        },
        0..10_000u64,
        MapOptions::default().chunk_size(1_000),
    )
    .unwrap();
    let i = pool.get_insights();
    assert_eq!(i.total_completed_tasks(), n + 10_000);
    assert!(i.total_working_time >= 0.03, "{i}");
    // Histograms of later calls merge in, even when they hold longer tasks than earlier ones.
    assert!(
        i.task_duration_percentiles.count as f64 > 0.9 * (n + 10_000) as f64,
        "{i}"
    );
    assert!(
        i.task_duration_percentiles.max >= 0.000_02,
        "the slow task raised the maximum: {i}"
    );
}
