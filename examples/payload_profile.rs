//! Profiling aid for 1 MiB round trips (the `payload` group of `benches/ipc.rs`): maps 64
//! `serde_bytes` blobs of 1 MiB, chunk size 1, over 2 workers, and reports the best wall time
//! and the CPU time (user + system) of the parent (timed part) and of the workers, which stays meaningful on
//! a busy machine.
//!
//! `cargo run --release --example payload_profile -- [fork|spawn|threading] [iterations]`
use std::time::{Duration, Instant};

use pool::{StartMethod, WorkerPool};
use serde::{Deserialize, Serialize};

#[ctor::ctor(unsafe)]
fn entry() {
    pool::entry();
}

#[derive(Clone, Serialize, Deserialize)]
struct Blob(#[serde(with = "serde_bytes")] Vec<u8>);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

/// CPU seconds (user + system) and minor page faults.
fn usage(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(u.ru_utime) + t(u.ru_stime), u.ru_minflt as f64)
}

fn main() {
    const MIB: usize = 1 << 20;
    let mut args = std::env::args().skip(1);
    let method = match args.next().as_deref() {
        None | Some("fork") => StartMethod::Fork,
        Some("spawn") => StartMethod::Spawn,
        Some("threading") => StartMethod::Threading,
        Some(m) => panic!("unknown start method {m}"),
    };
    let iters: usize = args.next().map_or(20, |s| s.parse().unwrap());
    let n = 64;
    let inputs: Vec<Blob> = (0..n).map(|i| Blob(vec![i as u8; MIB])).collect();
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(method)
        .keep_alive(true)
        .build()
        .unwrap();
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    let (mut parent, mut main_thread, mut faults) = (0.0, 0.0, 0.0);
    for _ in 0..iters {
        let batch = inputs.clone();
        let (t0, u0, m0) = (
            Instant::now(),
            usage(libc::RUSAGE_SELF),
            usage(libc::RUSAGE_THREAD),
        );
        let out = p
            .map_with(
                |mut b: Blob| {
                    b.0[0] ^= 1;
                    b
                },
                batch,
                pool::MapOptions::default().chunk_size(1),
            )
            .unwrap();
        let t = t0.elapsed();
        let u1 = usage(libc::RUSAGE_SELF);
        parent += u1.0 - u0.0;
        main_thread += usage(libc::RUSAGE_THREAD).0 - m0.0;
        faults += u1.1 - u0.1;
        best = best.min(t);
        total += t;
        assert_eq!(out.len(), n);
    }
    p.join().unwrap();
    let children = usage(libc::RUSAGE_CHILDREN);
    let bytes = (2 * n * MIB) as f64;
    println!(
        "{}: best {:?} ({:.2} GiB/s), mean {:?}; per iteration: parent cpu {:.1} ms (main thread {:.1} ms) and {:.0} page faults, workers cpu {:.1} ms and {:.0} faults",
        method.name(),
        best,
        bytes / best.as_secs_f64() / (1u64 << 30) as f64,
        total / iters as u32,
        parent * 1e3 / iters as f64,
        main_thread * 1e3 / iters as f64,
        faults / iters as f64,
        children.0 * 1e3 / iters as f64,
        children.1 / iters as f64,
    );
}
