//! Insights computed from known raw timings: totals, means, standard deviations, ratios, the
//! slowest tasks across workers, percentiles, the table and the JSON schema.

use std::time::Duration;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use pool_core::{SlowTask, WorkerTimings};
use pool_insights::Insights;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn worker(id: usize, tasks_ms: &[u64], waiting: u64) -> WorkerTimings {
    let mut w = WorkerTimings::new(id);
    w.n_completed_tasks = tasks_ms.len() as u64;
    w.start_up = ms(10 * (id as u64 + 1));
    w.init = ms(5);
    w.waiting = ms(waiting);
    w.working = ms(tasks_ms.iter().sum());
    w.exit = ms(1);
    w.data_transfer = ms(2);
    let mut h = Histogram::<u64>::new(3).unwrap();
    for (i, t) in tasks_ms.iter().enumerate() {
        h.record(t * 1_000_000).unwrap();
        w.slowest.push(SlowTask {
            duration: ms(*t),
            task: (id * 100 + i) as u64,
            args: format!("({id}, {i})"),
        });
    }
    w.slowest.sort_by_key(|s| std::cmp::Reverse(s.duration));
    w.slowest.truncate(5);
    V2Serializer::new()
        .serialize(&h, &mut w.histogram_v2)
        .unwrap();
    w
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn sample() -> Insights {
    // Worker 1 listed first: insights order by worker id.
    Insights::from_timings(&[
        worker(1, &[100, 10, 10, 10], 40),
        worker(0, &[50, 60, 70, 80, 90, 5], 20),
    ])
}

#[test]
fn totals_means_stds_and_ratios() {
    let i = sample();
    assert_eq!(i.n_workers, 2);
    assert_eq!(i.n_completed_tasks, [6, 4]);
    assert!(close(i.total_working_time, 0.485));
    assert_eq!(i.working_time.len(), 2);
    assert!(close(i.working_time[0], 0.355) && close(i.working_time[1], 0.130));
    assert!(close(i.working_time_mean, 0.2425));
    assert!(close(i.working_time_std, 0.1125));
    assert!(close(i.start_up_time_mean, 0.015) && close(i.start_up_time_std, 0.005));
    assert!(close(i.total_waiting_time, 0.060) && close(i.waiting_time_std, 0.010));
    assert!(close(i.total_init_time, 0.010) && close(i.init_time_std, 0.0));
    assert!(close(i.total_exit_time, 0.002));
    assert!(close(i.total_data_transfer_time, 0.004));
    let total = 0.030 + 0.010 + 0.060 + 0.485 + 0.002 + 0.004;
    assert!(close(i.total_time, total));
    assert!(close(i.working_ratio, 0.485 / total));
    let sum = i.start_up_ratio
        + i.init_ratio
        + i.waiting_ratio
        + i.working_ratio
        + i.exit_ratio
        + i.data_transfer_ratio;
    assert!(close(sum, 1.0));
}

#[test]
fn slowest_tasks_across_workers() {
    let i = sample();
    let d: Vec<u64> = i
        .top_5_max_task_durations
        .iter()
        .map(|s| (s * 1000.0).round() as u64)
        .collect();
    assert_eq!(d, [100, 90, 80, 70, 60]);
    assert_eq!(
        i.top_5_max_task_args,
        ["(1, 0)", "(0, 4)", "(0, 3)", "(0, 2)", "(0, 1)"]
    );
    assert_eq!(i.top_5_max_task_ids, [100, 4, 3, 2, 1]);
    assert_eq!(i.top_5_max_task_workers, [1, 0, 0, 0, 0]);
}

#[test]
fn percentiles_over_all_and_per_worker() {
    let i = sample();
    let p = i.task_duration_percentiles;
    assert_eq!(p.count, 10);
    // 10 tasks: 5 10 10 10 50 60 70 80 90 100 (ms); hdrhistogram keeps 3 significant figures.
    let near = |a: f64, ms: f64| (a * 1000.0 - ms).abs() <= ms * 0.001 + 1e-6;
    assert!(near(p.p50, 50.0), "{p:?}");
    assert!(near(p.p90, 90.0), "{p:?}");
    assert!(near(p.p99, 100.0) && near(p.max, 100.0), "{p:?}");
    assert!(near(p.mean, 48.5), "{p:?}");
    let w1 = i.worker_task_duration_percentiles[1];
    assert_eq!(w1.count, 4);
    assert!(near(w1.p50, 10.0) && near(w1.max, 100.0), "{w1:?}");
}

#[test]
fn no_timings_no_division_by_zero() {
    let i = Insights::from_timings(&[WorkerTimings::new(0), WorkerTimings::new(1)]);
    assert_eq!(i.total_time, 0.0);
    assert_eq!(i.working_ratio, 0.0);
    assert_eq!(i.task_duration_percentiles.count, 0);
    assert!(i.top_5_max_task_durations.is_empty());
    let empty = Insights::from_timings(&[]);
    assert_eq!(empty.n_workers, 0);
    let _ = format!("{i}{empty}");
}

#[test]
fn the_table_shows_every_worker_and_summary() {
    let text = sample().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Worker insights: 2 workers, 10 tasks, total time 591.0 ms"
    );
    assert!(lines[1].split_whitespace().eq([
        "tasks", "start-up", "init", "waiting", "working", "exit", "transfer", "p50", "p90", "p99",
        "max"
    ]));
    let cells = |prefix: &str| -> Vec<String> {
        let l = lines.iter().find(|l| l.starts_with(prefix)).unwrap();
        l[8..]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(
        cells("worker 0"),
        [
            "6", "10.0 ms", "5.0 ms", "20.0 ms", "355.0 ms", "1.0 ms", "2.0 ms", "60.0 ms",
            "90.0 ms", "90.0 ms", "90.0 ms"
        ]
    );
    assert_eq!(
        cells("total")[..2],
        ["10".to_string(), "30.0 ms".to_string()]
    );
    assert_eq!(cells("ratio")[3], format!("{:.1}%", 48.5 / 59.1 * 100.0));
    assert!(text.contains("task durations: mean 48.5 ms, p50 50.0 ms, p90 90.0 ms"));
    assert!(
        text.contains("  1.  100.0 ms  task #100 on worker 1  args: (1, 0)"),
        "{text}"
    );
}

#[test]
fn json_schema() {
    let i = sample();
    let v: serde_json::Value = serde_json::from_str(&i.to_json()).unwrap();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = vec![
        "schema_version",
        "enabled",
        "n_workers",
        "n_completed_tasks",
        "total_time",
        "top_5_max_task_durations",
        "top_5_max_task_args",
        "top_5_max_task_ids",
        "top_5_max_task_workers",
        "task_duration_percentiles",
        "worker_task_duration_percentiles",
    ];
    let phases = [
        "start_up",
        "init",
        "waiting",
        "working",
        "exit",
        "data_transfer",
    ];
    let per_phase: Vec<String> = phases
        .iter()
        .flat_map(|p| {
            [
                format!("total_{p}_time"),
                format!("{p}_time"),
                format!("{p}_time_mean"),
                format!("{p}_time_std"),
                format!("{p}_ratio"),
            ]
        })
        .collect();
    expected.extend(per_phase.iter().map(String::as_str));
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["n_completed_tasks"], serde_json::json!([6, 4]));
    assert!(v["total_working_time"].is_f64());
    assert!(
        v["working_time"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.is_f64())
    );
    assert!(v["top_5_max_task_args"][0].is_string());
    let p = v["task_duration_percentiles"].as_object().unwrap();
    let mut pk: Vec<&str> = p.keys().map(String::as_str).collect();
    pk.sort_unstable();
    assert_eq!(pk, ["count", "max", "mean", "p50", "p90", "p99"]);
    assert_eq!(
        v["worker_task_duration_percentiles"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // And back.
    let back: Insights = serde_json::from_str(&i.to_json_pretty()).unwrap();
    assert_eq!(back.n_completed_tasks, i.n_completed_tasks);
    assert_eq!(back.top_5_max_task_args, i.top_5_max_task_args);
    assert!(close(back.working_time_std, i.working_time_std));
}

#[test]
fn a_pool_that_mostly_works_gets_no_warning() {
    let i = sample();
    assert!(i.working_ratio > 0.5);
    assert!(i.warnings().is_empty(), "{:?}", i.warnings());
    assert!(!i.to_string().contains("warning"), "{i}");
}

#[test]
fn transfer_that_dominates_is_warned_with_a_hint() {
    // Two workers whose tasks take 10 ms in all while moving their data took 60 ms.
    let mut workers = [worker(0, &[5], 3), worker(1, &[5], 3)];
    for w in &mut workers {
        w.data_transfer = ms(30);
    }
    let i = Insights::from_timings(&workers);
    assert!(i.data_transfer_ratio > i.working_ratio, "{i}");
    let w = i.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("warning: moving arguments and results took "),
        "{}",
        w[0]
    );
    assert!(
        w[0].contains("shared_objects"),
        "the hint names what to try: {}",
        w[0]
    );
    let text = i.to_string();
    assert_eq!(text.lines().last(), Some(w[0].as_str()), "{text}");
}
