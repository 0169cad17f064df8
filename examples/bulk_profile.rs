//! Profiling aid for big payloads (issue #17, the harness rows `round-trips` and `big-results`):
//! `big` maps 8 tasks that each return 64 MiB of bytes; `rt` maps 256 tasks of 1 MiB in, 1 MiB
//! out; `echo` and `bigecho` return their input as it came (`|v| v`; 256 × 1 MiB and 8 × 64 MiB):
//! the transport alone, as the harness rows `echo-trips` and `big-echo`; chunk size 1, 2 workers. Reports the best and median wall time as GB/s, and the CPU time
//! and page faults of the parent and of the workers per iteration (meaningful on a busy machine),
//! after one untimed call.
//!
//! `cargo run --release --example bulk_profile -- [big|rt|echo|bigecho] [fork|spawn|forkserver|threading] [iterations]`
use std::time::{Duration, Instant};

use pool::{StartMethod, WorkerPool};

#[ctor::ctor(unsafe)]
fn entry() {
    pool::entry();
}

/// CPU seconds (user + system) and minor page faults.
fn usage(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage fills the struct we pass; an all-zero rusage is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid out pointer.
    unsafe { libc::getrusage(who, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(u.ru_utime) + t(u.ru_stime), u.ru_minflt as f64)
}

fn main() {
    const MIB: usize = 1 << 20;
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "big".into());
    let (big, echo_size) = match workload.as_str() {
        "big" => (true, 0),
        "rt" => (false, 0),
        "echo" => (false, MIB),
        "bigecho" => (false, 64 * MIB),
        w => panic!("unknown workload {w}: big, rt, echo or bigecho"),
    };
    let method = match args.next().as_deref() {
        None | Some("fork") => StartMethod::Fork,
        Some("spawn") => StartMethod::Spawn,
        Some("forkserver") => StartMethod::Forkserver,
        Some("threading") => StartMethod::Threading,
        Some(m) => panic!("unknown start method {m}"),
    };
    let iters: usize = args.next().map_or(7, |s| s.parse().unwrap());
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(method)
        .keep_alive(true)
        .build()
        .unwrap();
    let inputs: Vec<Vec<u8>> = match echo_size {
        0 => (0..256).map(|i| vec![i as u8; MIB]).collect(),
        n => (0..(256 * MIB / n)).map(|i| vec![i as u8; n]).collect(),
    };
    let mut times = Vec::new();
    let (mut parent, mut faults) = (0.0, 0.0);
    let opts = || pool::MapOptions::default().chunk_size(1);
    let mut bytes = 0.0;
    // One untimed call first, as the harness does: the first call grows the heap for its
    // results (a page fault per 4 KiB), the next ones reuse it.
    for i in 0..=iters {
        let batch = if big { Vec::new() } else { inputs.clone() };
        let (t0, u0) = (Instant::now(), usage(libc::RUSAGE_SELF));
        let moved = if big {
            let out = p
                .map_with(|i: u64| vec![i as u8; 64 * MIB], 0..8u64, opts())
                .unwrap();
            assert!(
                out.iter()
                    .enumerate()
                    .all(|(i, v)| v.len() == 64 * MIB && v[MIB] == i as u8)
            );
            out.len() * 64 * MIB
        } else if echo_size > 0 {
            let out = p.map_with(|v: Vec<u8>| v, batch, opts()).unwrap();
            assert!(
                out.iter()
                    .enumerate()
                    .all(|(i, v)| v.len() == echo_size && v[7] == i as u8)
            );
            2 * out.len() * echo_size
        } else {
            let out = p
                .map_with(
                    |v: Vec<u8>| v.iter().map(|b| b.wrapping_add(1)).collect::<Vec<u8>>(),
                    batch,
                    opts(),
                )
                .unwrap();
            assert!(
                out.iter()
                    .enumerate()
                    .all(|(i, v)| v.len() == MIB && v[7] == (i as u8).wrapping_add(1))
            );
            2 * out.len() * MIB
        };
        let t = t0.elapsed();
        let u1 = usage(libc::RUSAGE_SELF);
        if i == 0 {
            continue;
        }
        parent += u1.0 - u0.0;
        faults += u1.1 - u0.1;
        times.push(t);
        bytes = moved as f64;
    }
    p.join().unwrap();
    times.sort();
    let gbs = |t: Duration| bytes / t.as_secs_f64() / 1e9;
    let children = usage(libc::RUSAGE_CHILDREN);
    let n = iters as f64;
    println!(
        "{} {}: best {:.2} GB/s, median {:.2} GB/s; per iteration: parent cpu {:.1} ms, {:.0} faults; workers cpu {:.1} ms, {:.0} faults",
        workload,
        method.name(),
        gbs(times[0]),
        gbs(times[times.len() / 2]),
        parent * 1e3 / n,
        faults / n,
        children.0 * 1e3 / n,
        children.1 / n,
    );
}
