//! Shared by the test files: a pool wired to this crate's renderer, and call descriptions.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use pool_core::{CallInfo, Layers, ProgressSpec, RawInsights, StartMethod, Status, Threads};
use pool_progress::Bars;

/// The facade's wiring, minus process workers: progress from `pool_progress::sink_for`.
pub type WithBars = Layers<Threads, Bars, RawInsights>;

pub type Pool<Sh = (), St = ()> = pool_core::WorkerPool<Sh, St, WithBars>;

pub fn pool(n: usize) -> Pool {
    Pool::builder()
        .n_jobs(n)
        .start_method(StartMethod::Threading)
        .build()
        .unwrap()
}

pub fn info(spec: ProgressSpec) -> CallInfo {
    CallInfo {
        call_id: 1,
        pool_id: 1,
        method: "map".into(),
        function: "f".into(),
        location: "test".into(),
        n_jobs: 2,
        start_method: "threading".into(),
        spec,
    }
}

pub fn status(total: Option<u64>, done: u64, failed: u64, secs: u64, eta: Option<u64>) -> Status {
    let elapsed = Duration::from_secs(secs);
    Status {
        total,
        submitted: done,
        running: 0,
        done,
        failed,
        elapsed,
        rate: if secs > 0 {
            done as f64 / secs as f64
        } else {
            0.0
        },
        eta: eta.map(Duration::from_secs),
        active: true,
    }
}
