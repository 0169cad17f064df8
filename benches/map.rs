//! `map` against rayon's `par_iter` on the same work, side by side in one run, for each start
//! method: 10M trivial tasks (u64 → u64) and 10k tasks of ~1 ms of arithmetic.
//!
//! `cargo bench --bench map` (add `-- --quick` for a fast look).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pool::{StartMethod, WorkerPool};
use rayon::prelude::*;

/// Integer work that the optimizer cannot remove: `iters` rounds of xorshift.
fn spin(seed: u64, iters: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// Rounds of `spin` that take about `target` on this machine.
fn calibrate(target: Duration) -> u64 {
    let mut iters = 1_000;
    loop {
        let t0 = Instant::now();
        black_box(spin(black_box(7), iters));
        let e = t0.elapsed();
        if e >= Duration::from_millis(20) {
            return (iters as f64 * target.as_secs_f64() / e.as_secs_f64()) as u64;
        }
        iters *= 2;
    }
}

fn n_jobs() -> usize {
    pool::cpu_count()
}

fn trivial(c: &mut Criterion) {
    let n = 10_000_000u64;
    let mut g = c.benchmark_group("trivial_10M");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n_jobs())
        .build()
        .unwrap();
    g.bench_function("rayon", |b| {
        b.iter(|| {
            rayon_pool.install(|| (0..n).into_par_iter().map(|x| x * x).collect::<Vec<u64>>())
        })
    });
    for m in [StartMethod::Threading, StartMethod::Fork] {
        let mut p = WorkerPool::builder()
            .n_jobs(n_jobs())
            .start_method(m)
            .keep_alive(true)
            .build()
            .unwrap();
        g.bench_function(format!("pool_{}", m.name()), |b| {
            b.iter(|| p.map(|x: u64| x * x, 0..n).unwrap())
        });
    }
    g.finish();
}

fn cpu_1ms(c: &mut Criterion) {
    let iters = calibrate(Duration::from_millis(1));
    let n = 10_000u64;
    let mut g = c.benchmark_group("cpu_1ms_10k");
    g.sample_size(10).measurement_time(Duration::from_secs(60));
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n_jobs())
        .build()
        .unwrap();
    g.bench_function("rayon", |b| {
        b.iter(|| {
            rayon_pool.install(|| {
                (0..n)
                    .into_par_iter()
                    .map(|x| spin(x, iters))
                    .collect::<Vec<u64>>()
            })
        })
    });
    for m in [StartMethod::Threading, StartMethod::Fork] {
        let mut p = WorkerPool::builder()
            .n_jobs(n_jobs())
            .start_method(m)
            .keep_alive(true)
            .shared_objects(iters)
            .build()
            .unwrap();
        g.bench_function(format!("pool_{}", m.name()), |b| {
            b.iter(|| {
                p.map_ctx(|ctx, x: u64| spin(x, *ctx.shared()), 0..n)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, trivial, cpu_1ms);
criterion_main!(benches);
