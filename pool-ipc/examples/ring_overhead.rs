//! The ring's code-path cost without any cross-core traffic: one thread sends 100 frames of
//! 64 bytes, then receives them. Run: `cargo run --release -p pool-ipc --example ring_overhead`.

use pool_ipc::ring::{self, RingReceiver, RingSender, WaitPolicy};
use pool_ipc::shm::SharedRegion;
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let cap = 1 << 16;
    let region = Arc::new(SharedRegion::create("t", ring::ring_len(cap)).unwrap());
    ring::init(&region, 0, cap);
    let mut tx = RingSender::attach(Arc::clone(&region), 0, WaitPolicy::default());
    let mut rx = RingReceiver::attach(region, 0, WaitPolicy::default());
    let p = [1u8; 64];
    let mut buf = Vec::with_capacity(128);
    let n = 20_000_000u64;
    let t = Instant::now();
    for _ in 0..n / 100 {
        for _ in 0..100 {
            tx.send(&p, 1).unwrap();
        }
        for _ in 0..100 {
            rx.recv(&mut buf).unwrap();
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!("single thread send+recv: {:.1} ns/msg", s / n as f64 * 1e9);
    let t = Instant::now();
    for _ in 0..n / 100 {
        for _ in 0..100 {
            tx.send_deferred(&p, 1).unwrap();
        }
        tx.flush();
        for _ in 0..100 {
            rx.recv(&mut buf).unwrap();
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "single thread deferred send+recv: {:.1} ns/msg",
        s / n as f64 * 1e9
    );
}
