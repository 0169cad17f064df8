//! Profiling aid: 10M trivial tasks, pool's thread back end against rayon, interleaved round
//! by round, reporting wall time and CPU time (user + system), which stays meaningful on a
//! busy machine. Ends with the median and best of each side.
//!
//! `cargo run --release --example trivial_profile [-- rayon|pool] [ROUNDS]`: `rayon` or
//! `pool` runs one side only (for `perf stat`); `POOL_START=fork` runs the pool's side under
//! `StartMethod::Fork`.
use std::time::{Duration, Instant};

use pool::{StartMethod, WorkerPool};
use rayon::prelude::*;

fn cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Runs `f`, printing and recording its wall and CPU time.
fn timed(name: &str, walls: &mut Vec<Duration>, f: impl FnOnce() -> usize) {
    let (t0, c0) = (Instant::now(), cpu());
    let n = f();
    let wall = t0.elapsed();
    println!("{name:5} {wall:?} cpu {:.3}s {n}", cpu() - c0);
    walls.push(wall);
}

fn summary(name: &str, walls: &mut [Duration]) -> Option<Duration> {
    walls.sort();
    let median = *walls.get(walls.len() / 2)?;
    println!("{name:5} median {median:?} best {:?}", walls[0]);
    Some(median)
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
    let mut args = std::env::args().skip(1).peekable();
    let only = args.next_if(|a| a == "rayon" || a == "pool");
    let rounds: usize = args
        .next()
        .map_or(3, |r| r.parse().expect("ROUNDS is a number"));
    let run = |side: &str| only.as_deref().is_none_or(|o| o == side);
    let (mut rayon_walls, mut pool_walls) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        if run("rayon") {
            timed("rayon", &mut rayon_walls, || {
                rp.install(|| (0..n).into_par_iter().map(|x| x * x).collect::<Vec<u64>>())
                    .len()
            });
        }
        if run("pool") {
            timed("pool", &mut pool_walls, || {
                p.map(|x: u64| x * x, 0..n).unwrap().len()
            });
        }
    }
    let r = summary("rayon", &mut rayon_walls);
    let p = summary("pool", &mut pool_walls);
    if let (Some(r), Some(p)) = (r, p) {
        println!(
            "pool / rayon: {:.2}x (medians)",
            p.as_secs_f64() / r.as_secs_f64()
        );
    }
}
