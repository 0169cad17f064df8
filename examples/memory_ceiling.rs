//! What this machine's memory allows the big-payload rows (issue #17: `echo-trips`, 256 round
//! trips of 1 MiB, and `big-echo`, 8 of 64 MiB), with no pool at all.
//!
//! A process pool's caller must, at the least, read every input once (to put it where a worker
//! can see it) and write every result once (into the `Vec` it returns): two copies per round
//! trip on one thread, whatever the protocol. This times exactly that, on this thread: each
//! input (distinct buffers, as the caller's are) copied into one reused staging buffer (the
//! shared arena) and freed, then the result copied out of it into a fresh `Vec` (the result
//! the caller keeps, huge pages asked for as the pool does), as `map_with(f, inputs)` consumes
//! its inputs. The harness
//! counts the bytes of both directions, so GB/s here are `2 × payload bytes / time`, the
//! harness's unit. No pool under Fork can beat this figure while its caller copies once each
//! way; the threads back end moves the `Vec`s and copies nothing.
//!
//! Also printed, to explain the figure: a warm copy (the same 1 MiB again and again, all in
//! cache), a copy into distinct buffers written before (memory bandwidth), and the cost of
//! fresh pages (a page fault per 4 KiB).
//!
//! `cargo run --release --example memory_ceiling -- [ROUNDS]` (default 5; medians).
use std::hint::black_box;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Minor page faults of this process so far.
fn minor_faults() -> u64 {
    // SAFETY: getrusage fills the struct we pass; an all-zero rusage is a valid value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_minflt as u64
}

/// The median time of `rounds` runs of `work`.
fn median_time(rounds: usize, mut work: impl FnMut()) -> Duration {
    median(
        (0..rounds)
            .map(|_| {
                let t0 = Instant::now();
                work();
                t0.elapsed()
            })
            .collect(),
    )
}

fn gbs(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

/// The caller's least work for round trips of its `inputs`: copy each in, free it (the call
/// consumes its inputs), copy the result out into a fresh `Vec`. Results dropped untimed.
fn caller_minimum(inputs: Vec<Vec<u8>>, staging: &mut [u8]) -> Duration {
    let t0 = Instant::now();
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        staging.copy_from_slice(&input);
        drop(input);
        out.push(fresh_copy(black_box(staging)));
    }
    let t = t0.elapsed();
    black_box(out);
    t
}

/// A fresh `Vec` holding `bytes`, asking for huge pages first when it is big, as the pool does
/// for the results it decodes (`pool_core::huge_pages`).
fn fresh_copy(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len());
    pool_core::huge_pages::advise(v.as_mut_ptr(), v.capacity());
    v.extend_from_slice(bytes);
    v
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(5, |s| s.parse().expect("ROUNDS: a number"));
    for (n, size, row) in [(256, MIB, "echo-trips"), (8, 64 * MIB, "big-echo")] {
        let inputs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; size]).collect();
        let mut staging = vec![0u8; size];
        let times: Vec<Duration> = (0..rounds)
            .map(|_| caller_minimum(inputs.clone(), &mut staging))
            .collect();
        println!(
            "{row}: {n} × {} MiB, copy in + copy out on one thread: {:.2} GB/s (counting both directions)",
            size / MIB,
            gbs(2 * n * size, median(times))
        );
    }

    let src = vec![1u8; MIB];
    let mut dst = vec![0u8; MIB];
    let warm = median_time(rounds, || {
        for _ in 0..256 {
            dst.copy_from_slice(black_box(&src));
        }
    });
    println!(
        "1 MiB copied 256 times into the same buffer (cache): {:.1} GB/s",
        gbs(256 * MIB, warm)
    );

    let mut written: Vec<Vec<u8>> = (0..256).map(|_| vec![0u8; MIB]).collect();
    let memory = median_time(rounds, || {
        for d in &mut written {
            d.copy_from_slice(black_box(&src));
        }
    });
    println!(
        "1 MiB copied into 256 distinct buffers written before (memory): {:.1} GB/s",
        gbs(256 * MIB, memory)
    );

    let (mut times, mut faults) = (Vec::new(), 0);
    for _ in 0..rounds {
        let (t0, f0) = (Instant::now(), minor_faults());
        let out: Vec<Vec<u8>> = (0..256).map(|_| black_box(&src).to_vec()).collect();
        times.push(t0.elapsed());
        faults += minor_faults() - f0;
        black_box(out);
    }
    let fresh = median(times);
    let faults = faults / rounds as u64;
    let per_fault = fresh.saturating_sub(memory).as_secs_f64() / faults.max(1) as f64 * 1e6;
    println!(
        "1 MiB copied into 256 fresh Vecs: {:.1} GB/s, {faults} page faults, ~{per_fault:.1} µs each",
        gbs(256 * MIB, fresh)
    );
}
