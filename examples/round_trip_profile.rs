//! Profiling aid for one-task chunks: a steady pool (one worker unless told) maps `x*x` over `0..N` with
//! `chunk_size(1)`, so every task is a full round trip caller → worker → caller. The start
//! methods run interleaved, round after round; each run prints its time per task and the CPU
//! time per task of this process (user + system; the workers' time is not in it under Fork),
//! which stays meaningful on a busy machine. Ends with the median of each.
//!
//! `cargo run --release --example round_trip_profile -- [ROUNDS] [N] [METHODS] [N_JOBS]`
//! (defaults: 5 rounds, N = 100000, methods `threading,fork,forkserver`, one worker). A method written
//! `fork:2` runs with `max_tasks_active(2)`: at most two tasks in flight, no pipeline (the
//! scheduling before pipelining), for an A/B comparison in the same run; `fork@async` submits
//! the N tasks with `apply_async` instead, then waits for all of them; `fork@apply` runs them
//! one after another with the blocking `apply` (the pool idle between tasks).
use std::time::Instant;

use pool::{MapOptions, StartMethod, WorkerPool};

fn cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    pool::entry();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().map_or(5, |s| s.parse().expect("ROUNDS"));
    let n: u64 = args.get(1).map_or(100_000, |s| s.parse().expect("N"));
    let methods = args
        .get(2)
        .map_or("threading,fork,forkserver", String::as_str);
    let n_jobs: usize = args.get(3).map_or(1, |s| s.parse().expect("N_JOBS"));
    let mut pools: Vec<(&str, WorkerPool, Option<usize>, Vec<f64>)> = methods
        .split(',')
        .map(|spec| {
            let m = spec.trim_end_matches("@async").trim_end_matches("@apply");
            let (m, cap) = match m.split_once(':') {
                Some((m, cap)) => (m, Some(cap.parse::<usize>().expect("a number after ':'"))),
                None => (m, None),
            };
            let method = StartMethod::from_name(m).unwrap_or_else(|| panic!("unknown method {m}"));
            let p = WorkerPool::builder()
                .n_jobs(n_jobs)
                .start_method(method)
                .keep_alive(true)
                .build()
                .unwrap();
            (spec, p, cap, Vec::new())
        })
        .collect();
    for _ in 0..rounds {
        for (name, p, cap, times) in &mut pools {
            let mut opts = MapOptions::default().chunk_size(1);
            if let Some(cap) = *cap {
                opts = opts.max_tasks_active(cap);
            }
            let (t0, c0) = (Instant::now(), cpu());
            let out = if name.ends_with("@apply") {
                (0..n).map(|x| p.apply(square, x).unwrap()).collect()
            } else if name.ends_with("@async") {
                let pending: Vec<_> = (0..n).map(|x| p.apply_async(square, x).unwrap()).collect();
                pending.into_iter().map(|r| r.get(None).unwrap()).collect()
            } else {
                p.map_with(square, 0..n, opts).unwrap()
            };
            let per = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
            let cpu_per = (cpu() - c0) * 1e6 / n as f64;
            assert_eq!(out.len() as u64, n);
            println!("{name:13} {per:7.3} µs/task  cpu {cpu_per:7.3} µs/task");
            times.push(per);
        }
    }
    for (name, _, _, times) in &mut pools {
        times.sort_by(f64::total_cmp);
        println!("{name:13} median {:.3} µs/task", times[times.len() / 2]);
    }
}
