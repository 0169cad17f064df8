//! Measures how many [`crate::kernels::spin`] iterations make a millisecond on this machine.
//!
//! Task lengths ("~1 ms", "50 µs", the skewed draw in µs) are turned into iteration counts with
//! this number, once per run of the harness, so the workloads mean the same time on any machine.

use std::hint::black_box;
use std::time::Instant;

use crate::kernels;

/// Iterations of `spin` per millisecond: the fastest of 40 probes of ~0.5 ms each. Short probes
/// and the minimum keep the figure close to the uncontended speed even when other work shares
/// the CPUs (a probe that fits in one time slice is not slowed by the others).
pub fn spin_k_per_ms() -> u64 {
    const PROBE: u64 = 200_000;
    let best = (0..40)
        .map(|i| {
            let start = Instant::now();
            black_box(kernels::spin(black_box(i), black_box(PROBE)));
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    ((PROBE as f64 / (best * 1000.0)) as u64).max(1)
}
