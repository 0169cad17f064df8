//! Measures the ring parent ⇄ forked child: 64-byte stream, 64-byte ping-pong, typed `u64`
//! messages, and 1 MiB frames. Run: `cargo run --release -p pool-ipc --example ring_throughput`
//! (set `PIN=1` to pin the streaming parent and child to CPUs 0 and 1; `ONLY_PP=1` runs only
//! the ping-pong rows).

use std::time::Instant;

use pool_ipc::channel::Link;
use pool_ipc::child::ChildOptions;
use pool_ipc::process::WorkerProcess;
use pool_ipc::ring::WaitPolicy;

fn fork(f: impl FnOnce() -> i32) -> WorkerProcess {
    // SAFETY: this example forks before it starts any thread.
    unsafe { pool_ipc::fork::fork_worker(ChildOptions::default(), f) }.expect("fork")
}

/// Parent streams `n` frames of `size` bytes; the child counts them and answers once at the end.
fn stream(cap: usize, size: usize, n: u64, batch: u64) -> f64 {
    let pinned = std::env::var_os("PIN").is_some();
    let link = Link::new(cap).unwrap();
    let l2 = link.clone();
    let mut w = fork(move || {
        if pinned {
            pool_ipc::affinity::pin_current_thread(&[1]).unwrap();
        }
        let mut ch = l2.worker_end(WaitPolicy::default());
        let mut buf = Vec::new();
        let mut bytes = 0u64;
        for _ in 0..n {
            ch.recv_bytes(&mut buf).unwrap();
            bytes += buf.len() as u64;
        }
        ch.send(&bytes).unwrap();
        0
    });
    if pinned {
        pool_ipc::affinity::pin_current_thread(&[0]).unwrap();
    }
    let ch = link.parent_end(WaitPolicy::default());
    let payload = vec![7u8; size];
    let t = Instant::now();
    let (mut tx, mut rx) = ch.split();
    for i in 0..n {
        if batch > 1 {
            tx.send_bytes_deferred(&payload).unwrap();
            if i % batch == batch - 1 {
                tx.flush();
            }
        } else {
            tx.send_bytes(&payload).unwrap();
        }
    }
    tx.flush();
    let total: u64 = rx.recv().unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(total, n * size as u64);
    if pinned {
        let all = pool_ipc::affinity::online_cpus().unwrap();
        pool_ipc::affinity::pin_current_thread(&all).unwrap();
    }
    assert!(w.wait().unwrap().success());
    secs
}

fn typed(n: u64) -> f64 {
    let link = Link::new(1 << 16).unwrap();
    let l2 = link.clone();
    let mut w = fork(move || {
        let mut ch = l2.worker_end(WaitPolicy::default());
        let mut sum = 0u64;
        for _ in 0..n {
            sum = sum.wrapping_add(ch.recv::<u64>().unwrap());
        }
        ch.send(&sum).unwrap();
        0
    });
    let mut ch = link.parent_end(WaitPolicy::default());
    let t = Instant::now();
    for i in 0..n {
        ch.send(&i).unwrap();
    }
    let sum: u64 = ch.recv().unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(sum, n * (n - 1) / 2);
    assert!(w.wait().unwrap().success());
    secs
}

fn ping_pong(n: u64, policy: WaitPolicy, pinned: bool) -> f64 {
    let link = Link::new(1 << 12).unwrap();
    let l2 = link.clone();
    let mut w = fork(move || {
        if pinned {
            pool_ipc::affinity::pin_current_thread(&[1]).unwrap();
        }
        let mut ch = l2.worker_end(policy);
        let mut buf = Vec::new();
        while ch.recv_bytes(&mut buf).is_ok() {
            ch.send_bytes(&buf).unwrap();
        }
        0
    });
    if pinned {
        pool_ipc::affinity::pin_current_thread(&[0]).unwrap();
    }
    let mut ch = link.parent_end(policy);
    let payload = [1u8; 64];
    let mut buf = Vec::new();
    let t = Instant::now();
    for _ in 0..n {
        ch.send_bytes(&payload).unwrap();
        ch.recv_bytes(&mut buf).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    drop(ch);
    if pinned {
        let all = pool_ipc::affinity::online_cpus().unwrap();
        pool_ipc::affinity::pin_current_thread(&all).unwrap();
    }
    assert!(w.wait().unwrap().success());
    secs
}

/// Median of three runs of `f` (timings on a shared 2-vCPU VM vary 2-3x between runs).
fn median3(mut f: impl FnMut() -> f64) -> f64 {
    let mut v = [f(), f(), f()];
    v.sort_by(f64::total_cmp);
    v[1]
}

fn main() {
    let n = 2_000_000;
    let only_pp = std::env::var_os("ONLY_PP").is_some();
    println!(
        "(medians of 3 runs; PIN={})",
        std::env::var_os("PIN").is_some()
    );
    if !only_pp {
        streams(n);
    }
    ping_pongs();
}

fn streams(n: u64) {
    let rate = |s: f64| n as f64 / s / 1e6;
    let s = median3(|| stream(1 << 16, 64, n, 1));
    println!(
        "64 B stream, 64 KiB ring:       {:7.2} M msg/s ({:.0} MB/s)",
        rate(s),
        rate(s) * 64.0
    );
    let s = median3(|| stream(1 << 16, 64, n, 256));
    println!("64 B stream, flush every 256:   {:7.2} M msg/s", rate(s));
    let s = median3(|| stream(1 << 20, 64, n, 1));
    println!("64 B stream, 1 MiB ring:        {:7.2} M msg/s", rate(s));
    let s = median3(|| typed(n));
    println!("u64 postcard msgs, 64 KiB ring: {:7.2} M msg/s", rate(s));
    for cap in [1 << 18, 1 << 20, 1 << 22] {
        let frames = 500;
        let s = median3(|| stream(cap, 1 << 20, frames, 1));
        println!(
            "1 MiB frames, {:>4} KiB ring:    {:7.2} GB/s ({:.0} frames/s)",
            cap >> 10,
            frames as f64 * (1 << 20) as f64 / s / 1e9,
            frames as f64 / s
        );
    }
}

fn ping_pongs() {
    let rt = 50_000;
    let spin = |spins| WaitPolicy { spins, yields: 0 };
    let cases = [
        ("default policy", WaitPolicy::default(), false),
        ("futex only", spin(0), false),
        ("spin 200, no yield", spin(200), false),
        ("spin 2000, no yield", spin(2000), false),
        (
            "spin 0, yield 10",
            WaitPolicy {
                spins: 0,
                yields: 10,
            },
            false,
        ),
        ("long spin", spin(100_000), false),
        ("default, pinned 0/1", WaitPolicy::default(), true),
        ("long spin, pinned 0/1", spin(100_000), true),
    ];
    for (name, policy, pinned) in cases {
        let s = median3(|| ping_pong(rt, policy, pinned));
        println!(
            "64 B ping-pong, {name:<22} {:6.2} µs/round trip",
            s / rt as f64 * 1e6
        );
    }
}
