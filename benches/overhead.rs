//! What progress bars and insights cost: the same map with both off, with a progress bar, and
//! with insights, side by side (thread back end, keep-alive pool).
//!
//! `cargo bench --bench overhead`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use pool::{MapOptions, StartMethod, WorkerPool};

fn spin(seed: u64, iters: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

fn variants(c: &mut Criterion, name: &str, n: u64, iters: u64, time: Duration) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).measurement_time(time);
    for (label, insights, bar) in [
        ("off", false, false),
        ("progress_bar", false, true),
        ("insights", true, false),
    ] {
        let mut p = WorkerPool::builder()
            .n_jobs(pool::cpu_count())
            .start_method(StartMethod::Threading)
            .keep_alive(true)
            .enable_insights(insights)
            .shared_objects(iters)
            .build()
            .unwrap();
        g.bench_function(label, |b| {
            b.iter(|| {
                let opts = MapOptions::default().progress_bar(bar);
                black_box(
                    p.map_ctx_with(|ctx, x: u64| spin(x, *ctx.shared()), 0..n, opts)
                        .unwrap(),
                )
            })
        });
    }
    g.finish();
}

fn overhead(c: &mut Criterion) {
    variants(c, "trivial_10M", 10_000_000, 0, Duration::from_secs(10));
    // ~0.5 M xorshift rounds per ms on these machines.
    variants(c, "cpu_1ms_2k", 2_000, 500_000, Duration::from_secs(20));
}

criterion_group!(benches, overhead);
criterion_main!(benches);
