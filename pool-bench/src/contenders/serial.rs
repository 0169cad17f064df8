//! One thread, no pool: the work itself, for scale. Parallel contenders on `n` cores should
//! approach this time divided by `n`.

use anyhow::Result;

use super::{Contender, U64Task};
use crate::kernels;
use crate::workload::WorkloadKind;

/// Runs every task in order on the calling thread.
#[derive(Debug, Clone, Copy)]
pub struct Serial;

impl Contender for Serial {
    fn name(&self) -> String {
        "serial".into()
    }

    fn supports(&self, kind: WorkloadKind) -> bool {
        kind != WorkloadKind::Startup && (kind.python_peers() || kind.form_variant())
    }

    fn map_u64(&self, task: U64Task, inputs: &[u64]) -> Result<Vec<u64>> {
        let table = task.init_table();
        Ok(inputs.iter().map(|&x| task.apply_with(&table, x)).collect())
    }

    fn stateful(&self, inputs: &[u64], k: u64) -> Result<Vec<u64>> {
        let mut state = vec![0u64; kernels::STATE_BINS];
        inputs
            .iter()
            .for_each(|&i| kernels::stateful_step(&mut state, i, k));
        Ok(state)
    }

    fn payload(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        Ok(inputs.iter().map(|i| kernels::payload_task(i)).collect())
    }
}
