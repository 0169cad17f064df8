//! What process workers cost: moving 1 MiB arguments and results, and starting a pool.
//!
//! `cargo bench --bench ipc`

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pool::{StartMethod, WorkerPool};
use serde::{Deserialize, Serialize};

/// Spawned workers re-execute this binary.
#[ctor::ctor(unsafe)]
fn entry() {
    pool::entry();
}

/// A 1 MiB payload that (de)serializes as one byte string, not byte by byte.
#[derive(Clone, Serialize, Deserialize)]
struct Blob(#[serde(with = "serde_bytes")] Vec<u8>);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

fn payload(c: &mut Criterion) {
    const MIB: usize = 1 << 20;
    let n = 64;
    let inputs: Vec<Blob> = (0..n).map(|i| Blob(vec![i as u8; MIB])).collect();
    let mut g = c.benchmark_group("payload_1MiB_round_trip");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // Bytes moved: each argument to a worker and each result back.
    g.throughput(Throughput::Bytes((2 * n * MIB) as u64));
    for m in [StartMethod::Threading, StartMethod::Fork] {
        let mut p = WorkerPool::builder()
            .n_jobs(2)
            .start_method(m)
            .keep_alive(true)
            .build()
            .unwrap();
        // The inputs are cloned outside the timed region: the copy is not part of the round trip.
        g.bench_function(m.name(), |b| {
            b.iter_batched(
                || inputs.clone(),
                |inputs| {
                    p.map_with(
                        |mut b: Blob| {
                            b.0[0] ^= 1;
                            b
                        },
                        inputs,
                        pool::MapOptions::default().chunk_size(1),
                    )
                    .unwrap()
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn startup(c: &mut Criterion) {
    let mut g = c.benchmark_group("startup_2_workers_one_task_join");
    g.sample_size(20);
    for m in [
        StartMethod::Threading,
        StartMethod::Fork,
        StartMethod::Spawn,
    ] {
        g.bench_function(m.name(), |b| {
            b.iter(|| {
                let mut p = WorkerPool::builder()
                    .n_jobs(2)
                    .start_method(m)
                    .build()
                    .unwrap();
                let r = p.map(|x: u32| x + 1, [1u32]).unwrap();
                p.join().unwrap();
                r
            })
        });
    }
    g.finish();
}

// Start-up first: fork's cost grows with the parent's resident memory (its page tables are
// copied), and the payload group leaves this process bigger.
criterion_group!(benches, startup, payload);
criterion_main!(benches);
