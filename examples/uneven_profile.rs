//! Profiling aid for uneven work: 2 workers, tasks that keep a CPU busy for a set time, in two
//! mixes: `skewed` (392 × 0.2 ms and 8 × 50 ms, the slow ones spread out) and `lognormal`
//! (median 0.5 ms, σ = 1.2, capped at 50 ms, fixed seed). Parallel efficiency is the busy time of
//! all tasks over twice the wall time; tasks spin against the wall clock, so a loaded machine
//! lowers the efficiency of every contender alike only through preemption of the scheduler.
//!
//! On a machine shared with other work, `UNEVEN_TASKS=sleep` makes the tasks sleep instead of
//! spin: the figures then show how well the scheduler keeps workers fed, whatever the load.
//!
//! `cargo run --release --example uneven_profile [-- ROUNDS]`. Contenders, interleaved round by
//! round: two plain threads on a shared counter, rayon, and the pool's `map`, `imap`,
//! `map_unordered` and `imap_unordered` under Fork, Spawn and Threading. Prints the median
//! efficiency of each.
//!
//! `cargo run --release --example uneven_profile -- timeline [ROUNDS]`: where the time of a
//! whole run goes (build a pool, one call, join, as the harness times it), from the start and
//! end of every task on the wall clock: *start-up* (build to the first task), *gaps* (a worker
//! idle between two of its tasks), *tail* (a worker done while the other still runs), *end*
//! (the last task to the call's return) and *join*; in ms, medians over the rounds. With
//! `UNEVEN_EACH_ROUND=1` it also prints every round, with the longest idle stretch of a worker
//! (where a stall hides when only some rounds are slow).
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pool::{StartMethod, WorkerPool};
use rayon::prelude::*;

/// Keeps the CPU busy for `us` microseconds (or sleeps, see the module docs); returns `us`.
fn busy(us: u64) -> u64 {
    if std::env::var_os("UNEVEN_TASKS").is_some_and(|v| v == "sleep") {
        std::thread::sleep(Duration::from_micros(us));
        return us;
    }
    let end = Instant::now() + Duration::from_micros(us);
    let mut x = us;
    while Instant::now() < end {
        for _ in 0..64 {
            x = std::hint::black_box(x.rotate_left(5) ^ 0x9E37_79B9);
        }
    }
    std::hint::black_box(x);
    us
}

fn skewed() -> Vec<u64> {
    (0..400)
        .map(|i| if i % 50 == 25 { 50_000 } else { 200 })
        .collect()
}

fn lognormal() -> Vec<u64> {
    let mut s = 0x5EEDu64;
    let mut uniform = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) + 1) as f64 / (1u64 << 53) as f64
    };
    (0..400)
        .map(|_| {
            // Box-Muller: one standard normal draw.
            let n = (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
            ((500.0 * (1.2 * n).exp()) as u64).clamp(20, 50_000)
        })
        .collect()
}

fn two_threads(tasks: &[u64]) -> u64 {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let worker = || {
            let mut sum = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&t) = tasks.get(i) else { break sum };
                sum += busy(t);
            }
        };
        let a = s.spawn(worker);
        let b = s.spawn(worker);
        a.join().unwrap() + b.join().unwrap()
    })
}

/// Microseconds on the wall clock, comparable across processes.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as u64
}

/// One task that says when it ran and where: `(worker, start µs, end µs)`.
fn timed(ctx: &mut pool::WorkerContext<'_, (), ()>, us: u64) -> (usize, u64, u64) {
    let start = now_us();
    busy(us);
    (ctx.worker_id(), start, now_us())
}

/// CPU time of every thread of this process so far, in ms (`/proc/self/task/*/schedstat`):
/// under Fork and Spawn, what the call costs the parent, which on two cores is taken from the
/// workers.
fn own_cpu_ms() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e6
}

/// The `timeline` mode (see the module docs).
fn timeline(rounds: usize) {
    let methods = [
        ("fork", StartMethod::Fork),
        ("spawn", StartMethod::Spawn),
        ("threading", StartMethod::Threading),
    ];
    let forms = ["map", "imap", "map_unordered", "imap_unordered"];
    let mut rows: BTreeMap<String, Vec<[f64; 8]>> = BTreeMap::new();
    for _ in 0..rounds {
        for (mix, tasks) in [("skewed", skewed()), ("lognormal", lognormal())] {
            let busy_total: u64 = tasks.iter().sum();
            for &(name, method) in &methods {
                for form in forms {
                    let cpu0 = own_cpu_ms();
                    let t0 = now_us();
                    let mut p = WorkerPool::builder()
                        .n_jobs(2)
                        .start_method(method)
                        .build()
                        .unwrap();
                    let t = tasks.clone();
                    let spans: Vec<(usize, u64, u64)> = match form {
                        "map" => p.map_ctx(timed, t).unwrap(),
                        "imap" => p.imap_ctx(timed, t).unwrap().map(Result::unwrap).collect(),
                        "map_unordered" => p.map_unordered_ctx(timed, t).unwrap(),
                        _ => p
                            .imap_unordered_ctx(timed, t)
                            .unwrap()
                            .map(Result::unwrap)
                            .collect(),
                    };
                    let returned = now_us();
                    p.join().unwrap();
                    let joined = now_us();
                    let cpu = own_cpu_ms() - cpu0;
                    let first = spans.iter().map(|s| s.1).min().unwrap();
                    let mut gaps = 0u64;
                    let mut ends = Vec::new();
                    // The longest idle stretch of a worker: (idle µs, worker, after µs, task).
                    let mut longest = (0u64, 0usize, 0u64, 0usize);
                    for w in 0..2 {
                        let mut mine: Vec<_> = spans
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| s.0 == w)
                            .map(|(i, s)| (i, s.1, s.2))
                            .collect();
                        mine.sort_by_key(|s| s.1);
                        for p in mine.windows(2) {
                            let idle = p[1].1.saturating_sub(p[0].2);
                            if idle > longest.0 {
                                longest = (idle, w, p[0].2 - first, p[1].0);
                            }
                        }
                        let mine: Vec<_> = mine.iter().map(|&(_, s, e)| (w, s, e)).collect();
                        gaps += mine
                            .windows(2)
                            .map(|p| p[1].1.saturating_sub(p[0].2))
                            .sum::<u64>();
                        gaps += mine.first().map_or(0, |s| s.1 - first);
                        ends.push(mine.last().map_or(first, |s| s.2));
                    }
                    let last = *ends.iter().max().unwrap();
                    let tail: u64 = ends.iter().map(|e| last - e).sum();
                    let wall = (joined - t0) as f64;
                    let ms = |us: u64| us as f64 / 1000.0;
                    if std::env::var_os("UNEVEN_EACH_ROUND").is_some() {
                        println!(
                            "{mix:9} {name:9} {form:14} wall {:6.1} start-up {:5.2} gaps {:5.2} \
                             tail {:5.2} end {:5.2} join {:5.2}; longest idle {:5.2} ms of \
                             worker {} at {:6.1} ms, before the task at position {}",
                            wall / 1000.0,
                            ms(first - t0),
                            ms(gaps),
                            ms(tail),
                            ms(returned - last),
                            ms(joined - returned),
                            ms(longest.0),
                            longest.1,
                            ms(longest.2),
                            longest.3,
                        );
                    }
                    rows.entry(format!("{mix:9} {name:9} {form:14}"))
                        .or_default()
                        .push([
                            busy_total as f64 / (2.0 * wall),
                            ms(first - t0),
                            ms(gaps),
                            ms(tail),
                            ms(returned - last),
                            ms(joined - returned),
                            wall / 1000.0,
                            cpu,
                        ]);
                }
            }
        }
    }
    println!(
        "{:36} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "median over rounds", "eff", "start-up", "gaps", "tail", "end", "join", "wall", "own cpu"
    );
    for (name, v) in rows {
        let med = |i: usize| {
            let mut c: Vec<f64> = v.iter().map(|r| r[i]).collect();
            c.sort_by(f64::total_cmp);
            c[c.len() / 2]
        };
        println!(
            "{name:36} {:>5.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>8.2}",
            med(0),
            med(1),
            med(2),
            med(3),
            med(4),
            med(5),
            med(6),
            med(7)
        );
    }
}

fn main() {
    pool::entry();
    if std::env::args().nth(1).as_deref() == Some("timeline") {
        let rounds = std::env::args()
            .nth(2)
            .map_or(3, |r| r.parse().expect("ROUNDS is a number"));
        return timeline(rounds);
    }
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(3, |r| r.parse().expect("ROUNDS is a number"));
    let rp = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let methods = [
        ("fork", StartMethod::Fork),
        ("spawn", StartMethod::Spawn),
        ("threading", StartMethod::Threading),
    ];
    let mut pools: Vec<(&str, WorkerPool)> = methods
        .iter()
        .map(|&(name, m)| {
            let p = WorkerPool::builder()
                .n_jobs(2)
                .start_method(m)
                .keep_alive(true)
                .build()
                .unwrap();
            (name, p)
        })
        .collect();
    let mut eff: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for round in 0..rounds {
        for (mix, tasks) in [("skewed", skewed()), ("lognormal", lognormal())] {
            let busy_total: u64 = tasks.iter().sum();
            let expect = busy_total;
            let mut record = |name: String, f: &mut dyn FnMut() -> u64| {
                let t0 = Instant::now();
                let sum = f();
                let wall = t0.elapsed();
                assert_eq!(sum, expect, "{name} lost results");
                let e = busy_total as f64 / 1e6 / (2.0 * wall.as_secs_f64());
                println!("round {round} {mix:9} {name:26} {wall:>10.1?} eff {e:.2}");
                eff.entry(format!("{mix:9} {name}")).or_default().push(e);
            };
            record("threads".into(), &mut || two_threads(&tasks));
            record("rayon".into(), &mut || {
                rp.install(|| tasks.par_iter().map(|&t| busy(t)).collect::<Vec<u64>>())
                    .iter()
                    .sum()
            });
            for (name, p) in pools.iter_mut() {
                let t = tasks.clone();
                record(format!("{name} map"), &mut || {
                    p.map(busy, t.clone()).unwrap().iter().sum()
                });
                record(format!("{name} imap"), &mut || {
                    p.imap(busy, t.clone()).unwrap().map(Result::unwrap).sum()
                });
                record(format!("{name} map_unordered"), &mut || {
                    p.map_unordered(busy, t.clone()).unwrap().iter().sum()
                });
                record(format!("{name} imap_unordered"), &mut || {
                    p.imap_unordered(busy, t.clone())
                        .unwrap()
                        .map(Result::unwrap)
                        .sum()
                });
            }
        }
    }
    println!("\nmedian parallel efficiency over {rounds} rounds:");
    for (name, mut v) in eff {
        v.sort_by(f64::total_cmp);
        println!("{name:36} {:.2}", v[v.len() / 2]);
    }
}
