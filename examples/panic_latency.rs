//! How long a task's panic takes to reach the caller as an error, per start method.
//!
//! The task panics with the time it panicked (`CLOCK_MONOTONIC`, the same clock in every
//! process); the caller subtracts it from the time the error arrived. The workers are warm
//! (started by a call before), the rounds of the start methods interleaved, and the median of
//! each printed with the range.
//!
//! `cargo run --release --example panic_latency [rounds]`

use std::time::Duration;

use pool::{StartMethod, WorkerPool};

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec; CLOCK_MONOTONIC exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn panics_with_the_time(_: u32) -> u32 {
    panic!("panicked at {}", now_ns());
}

fn identity(x: u32) -> u32 {
    x
}

/// One round: warm workers, then a call whose only task panics.
fn round(m: StartMethod) -> Duration {
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(m)
        .keep_alive(true)
        .build()
        .expect("pool builds");
    p.map(identity, 0..2u32).expect("warm-up call");
    let e = p.map(panics_with_the_time, 0..1u32).unwrap_err();
    let arrived = now_ns();
    let f = e.failure().expect("a task failure");
    let at: u64 = f
        .message
        .strip_prefix("panicked at ")
        .and_then(|t| t.parse().ok())
        .expect("the panic's time");
    Duration::from_nanos(arrived - at)
}

fn main() {
    pool::entry();
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let methods = [
        StartMethod::Fork,
        StartMethod::Spawn,
        StartMethod::Threading,
    ];
    let mut times = vec![Vec::new(); methods.len()];
    for _ in 0..rounds {
        for (m, t) in methods.iter().zip(&mut times) {
            t.push(round(*m));
        }
    }
    println!("panic -> error, {rounds} rounds (median [min, max]):");
    for (m, t) in methods.iter().zip(&mut times) {
        t.sort();
        println!(
            "  {:<9} {:>8.2} ms  [{:.2}, {:.2}]",
            m.name(),
            t[t.len() / 2].as_secs_f64() * 1e3,
            t[0].as_secs_f64() * 1e3,
            t[t.len() - 1].as_secs_f64() * 1e3
        );
    }
}
