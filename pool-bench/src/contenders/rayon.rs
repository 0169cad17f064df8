//! rayon: the in-process ceiling. Work stealing, no serialization, no copies.
//!
//! A fresh `ThreadPool` per run (not the global one), so rayon pays its start and join like
//! every other contender; on this workload set that costs it well under a millisecond. The
//! steady rows of issue #17 reuse one `ThreadPool`, made on the first call.

use std::sync::OnceLock;

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::{Contender, U64Task};
use crate::kernels;
use crate::workload::WorkloadKind;

/// `par_iter().map().collect()` on a pool of `n_jobs` threads.
#[derive(Debug)]
pub struct Rayon {
    n_jobs: usize,
    steady: OnceLock<rayon::ThreadPool>,
}

impl Rayon {
    /// A contender with `n_jobs` threads.
    pub fn new(n_jobs: usize) -> Self {
        Self {
            n_jobs,
            steady: OnceLock::new(),
        }
    }

    /// The steady rows' pool, made on first use.
    fn steady(&self) -> Result<&rayon::ThreadPool> {
        if let Some(p) = self.steady.get() {
            return Ok(p);
        }
        let _ = self.steady.set(self.pool()?);
        Ok(self.steady.get().expect("just set"))
    }

    fn pool(&self) -> Result<rayon::ThreadPool> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.n_jobs)
            .build()
            .context("building a rayon thread pool")
    }
}

impl Contender for Rayon {
    fn name(&self) -> String {
        "rayon".into()
    }

    fn note(&self, kind: WorkloadKind) -> Option<String> {
        match kind {
            WorkloadKind::ExpensiveInit => Some("one table shared by all threads".into()),
            WorkloadKind::Stateful => Some("fold per split, reduce".into()),
            _ => None,
        }
    }

    fn map_u64(&self, task: U64Task, inputs: &[u64]) -> Result<Vec<u64>> {
        let pool = self.pool()?;
        let table = task.init_table();
        Ok(pool.install(|| {
            inputs
                .par_iter()
                .map(|&x| task.apply_with(&table, x))
                .collect()
        }))
    }

    fn stateful(&self, inputs: &[u64], k: u64) -> Result<Vec<u64>> {
        let pool = self.pool()?;
        Ok(pool.install(|| {
            inputs
                .par_iter()
                .fold(
                    || vec![0u64; kernels::STATE_BINS],
                    |mut state, &i| {
                        kernels::stateful_step(&mut state, i, k);
                        state
                    },
                )
                .reduce(
                    || vec![0u64; kernels::STATE_BINS],
                    |mut a, b| {
                        kernels::merge_state(&mut a, &b);
                        a
                    },
                )
        }))
    }

    fn payload(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        let pool = self.pool()?;
        Ok(pool.install(|| {
            inputs
                .par_iter()
                .map(|i| kernels::payload_task(i))
                .collect()
        }))
    }

    fn supports(&self, kind: WorkloadKind) -> bool {
        // One task per chunk has no rayon equivalent worth timing (rayon splits as it likes).
        kind != WorkloadKind::PerTask && (cfg!(feature = "pool-contenders") || !kind.shared())
    }

    #[cfg(feature = "pool-contenders")]
    fn shared(&self) -> Option<&dyn super::SharedContender> {
        Some(self)
    }

    fn steady_range(&self, n: u64) -> Result<Vec<u64>> {
        Ok(self
            .steady()?
            .install(|| (0..n).into_par_iter().map(kernels::square).collect()))
    }

    fn steady_slice(&self, inputs: &[u64]) -> Result<Vec<u64>> {
        Ok(self
            .steady()?
            .install(|| inputs.par_iter().map(|&x| kernels::square(x)).collect()))
    }

    fn steady_owned(&self, inputs: Vec<u64>) -> Result<Vec<u64>> {
        Ok(self
            .steady()?
            .install(|| inputs.into_par_iter().map(kernels::square).collect()))
    }

    fn steady_words(&self, inputs: Vec<String>) -> Result<Vec<u64>> {
        Ok(self
            .steady()?
            .install(|| inputs.into_par_iter().map(kernels::word_sum).collect()))
    }

    fn fresh_range(&self, n: u64) -> Result<Vec<u64>> {
        let pool = self.pool()?;
        Ok(pool.install(|| (0..n).into_par_iter().map(kernels::square).collect()))
    }

    fn round_trips(&self, inputs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        Ok(self.steady()?.install(|| {
            inputs
                .into_par_iter()
                .map(|i| kernels::payload_task(&i))
                .collect()
        }))
    }

    fn big_results(&self, count: u64, bytes: u64) -> Result<Vec<Vec<u8>>> {
        Ok(self.steady()?.install(|| {
            (0..count)
                .into_par_iter()
                .map(|i| kernels::big_result(i, bytes))
                .collect()
        }))
    }

    fn echo(&self, inputs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .steady()?
            .install(|| inputs.into_par_iter().map(|v| v).collect()))
    }
}

#[cfg(feature = "pool-contenders")]
impl super::SharedContender for Rayon {
    fn shared_trips(&self, inputs: Vec<pool::SharedBytes>) -> Result<Vec<pool::SharedBytes>> {
        Ok(self.steady()?.install(|| {
            inputs
                .into_par_iter()
                .map(|i| kernels::shared_payload_task(&i))
                .collect()
        }))
    }

    fn shared_big_results(&self, count: u64, bytes: u64) -> Result<Vec<pool::SharedBytes>> {
        Ok(self.steady()?.install(|| {
            (0..count)
                .into_par_iter()
                .map(|i| kernels::shared_big_result(i, bytes))
                .collect()
        }))
    }

    fn shared_echo(&self, inputs: Vec<pool::SharedBytes>) -> Result<Vec<pool::SharedBytes>> {
        Ok(self
            .steady()?
            .install(|| inputs.into_par_iter().map(|v| v).collect()))
    }
}
