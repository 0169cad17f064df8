//! What a progress bar and insights cost, measured so that a busy machine cannot fake it: the
//! variants (off, progress bar, insights, and a second "off" pool as a control that shows the
//! noise floor) run interleaved, round after round, and each run reports its wall time and the
//! process's CPU time (user + system); the medians and the ratios against "off" are printed at
//! the end.
//!
//! `cargo run --release --example overhead_profile -- [rounds] [tasks] [spin rounds per task]`
//! (defaults: 15 rounds of 10M trivial tasks). The criterion bench `benches/overhead.rs` measures
//! the same variants one after the other.
use std::time::Instant;

use pool::{MapOptions, StartMethod, WorkerPool};

fn cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn spin(seed: u64, iters: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let arg = |i: usize, d: u64| std::env::args().nth(i).map_or(d, |s| s.parse().unwrap());
    let (rounds, n, iters) = (arg(1, 15) as usize, arg(2, 10_000_000), arg(3, 0));
    let variants = ["off", "off_again", "progress_bar", "insights"];
    let k = variants.len();
    let mut pools: Vec<_> = variants
        .iter()
        .map(|v| {
            WorkerPool::builder()
                .n_jobs(pool::cpu_count())
                .start_method(StartMethod::Threading)
                .keep_alive(true)
                .enable_insights(*v == "insights")
                .shared_objects(iters)
                .build()
                .unwrap()
        })
        .collect();
    let mut wall = vec![Vec::new(); k];
    let mut cpus = vec![Vec::new(); k];
    for r in 0..rounds {
        for j in 0..k {
            let i = (r + j) % k;
            // The default style: a bar on a terminal, plain lines otherwise.
            let opts = MapOptions::default().progress_bar(variants[i] == "progress_bar");
            let (t0, c0) = (Instant::now(), cpu());
            let out = pools[i]
                .map_ctx_with(|ctx, x: u64| spin(x, *ctx.shared()), 0..n, opts)
                .unwrap();
            wall[i].push(t0.elapsed().as_secs_f64());
            cpus[i].push(cpu() - c0);
            assert_eq!(out.len() as u64, n);
        }
    }
    let (w0, c0) = (median(&mut wall[0].clone()), median(&mut cpus[0].clone()));
    println!("{n} tasks of {iters} spin rounds, {rounds} interleaved rounds, medians:");
    for i in 0..k {
        let (w, c) = (median(&mut wall[i]), median(&mut cpus[i]));
        println!(
            "{:>13}: wall {:8.2} ms ({:+5.1}%)   cpu {:8.2} ms ({:+5.1}%)",
            variants[i],
            w * 1e3,
            (w / w0 - 1.0) * 100.0,
            c * 1e3,
            (c / c0 - 1.0) * 100.0
        );
    }
}
