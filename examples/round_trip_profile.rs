//! Profiling aid for one-task chunks: a steady pool of one worker maps `x*x` over `0..N` with
//! `chunk_size(1)`, so every task is a full round trip caller → worker → caller. The start
//! methods run interleaved, round after round; each run prints its time per task and the CPU
//! time per task of this process (user + system; the workers' time is not in it under Fork),
//! which stays meaningful on a busy machine. Ends with the median of each.
//!
//! `cargo run --release --example round_trip_profile -- [ROUNDS] [N] [METHODS]`
//! (defaults: 5 rounds, N = 100000, methods `threading,fork,forkserver`). A method written
//! `fork:2` runs with `max_tasks_active(2)`: at most two tasks in flight, no pipeline (the
//! scheduling before pipelining), for an A/B comparison in the same run.
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
    let mut pools: Vec<(&str, WorkerPool, Option<usize>, Vec<f64>)> = methods
        .split(',')
        .map(|spec| {
            let (m, cap) = match spec.split_once(':') {
                Some((m, cap)) => (m, Some(cap.parse::<usize>().expect("a number after ':'"))),
                None => (spec, None),
            };
            let method = StartMethod::from_name(m).unwrap_or_else(|| panic!("unknown method {m}"));
            let p = WorkerPool::builder()
                .n_jobs(1)
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
            let out = p.map_with(square, 0..n, opts).unwrap();
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
