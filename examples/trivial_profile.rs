//! Profiling aid: 10M trivial tasks, pool's thread back end against rayon, reporting wall
//! time and CPU time (user + system) of each run, which stays meaningful on a busy machine.
//! `-- rayon` or `-- pool` runs one side only (for `perf stat`); `POOL_START=fork` runs the
//! pool's side under `StartMethod::Fork`.
use std::time::Instant;

use pool::{StartMethod, WorkerPool};
use rayon::prelude::*;

fn cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let n = 10_000_000u64;
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(match std::env::var("POOL_START").as_deref() {
            Ok("fork") => StartMethod::Fork,
            _ => StartMethod::Threading,
        })
        .keep_alive(true)
        .build()
        .unwrap();
    let rp = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let only = std::env::args().nth(1);
    let run = |side: &str| only.as_deref().is_none_or(|o| o == side);
    for _ in 0..3 {
        if run("rayon") {
            let (t0, c0) = (Instant::now(), cpu());
            let v = rp.install(|| (0..n).into_par_iter().map(|x| x * x).collect::<Vec<u64>>());
            println!(
                "rayon {:?} cpu {:.3}s {}",
                t0.elapsed(),
                cpu() - c0,
                v.len()
            );
            drop(v);
        }
        if !run("pool") {
            continue;
        }
        let (t0, c0) = (Instant::now(), cpu());
        let v = p.map(|x: u64| x * x, 0..n).unwrap();
        println!(
            "pool  {:?} cpu {:.3}s {}",
            t0.elapsed(),
            cpu() - c0,
            v.len()
        );
    }
}
