//! The plainest dynamic schedule: `n_jobs` threads take the next task from a shared counter,
//! one at a time. No chunks, no queue: on uneven work it is the reference a pool's scheduler
//! should reach (the tail is the longest task's, nothing more).

use anyhow::{Result, bail};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Contender, U64Task};
use crate::workload::WorkloadKind;

/// Threads pulling task indices from one atomic counter.
#[derive(Debug, Clone, Copy)]
pub struct SharedCounter {
    n_jobs: usize,
}

impl SharedCounter {
    /// A contender with `n_jobs` threads.
    pub fn new(n_jobs: usize) -> Self {
        Self { n_jobs }
    }
}

impl Contender for SharedCounter {
    fn name(&self) -> String {
        "shared-counter".into()
    }

    /// Only where scheduling is the question: the workloads of uneven task lengths.
    fn supports(&self, kind: WorkloadKind) -> bool {
        matches!(
            kind,
            WorkloadKind::Skewed | WorkloadKind::Uneven | WorkloadKind::Lognormal
        )
    }

    fn map_u64(&self, task: U64Task, inputs: &[u64]) -> Result<Vec<u64>> {
        let next = AtomicUsize::new(0);
        let parts: Vec<Vec<(usize, u64)>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..self.n_jobs)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&x) = inputs.get(i) else { break done };
                            done.push((i, task.apply(x)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_default())
                .collect()
        });
        let mut out = vec![0; inputs.len()];
        for (i, r) in parts.into_iter().flatten() {
            out[i] = r;
        }
        Ok(out)
    }

    fn stateful(&self, _: &[u64], _: u64) -> Result<Vec<u64>> {
        bail!("shared-counter runs the uneven workloads only")
    }

    fn payload(&self, _: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        bail!("shared-counter runs the uneven workloads only")
    }
}
