//! The `pool` contenders: one per start method (fork, spawn, threading), all in this file so
//! they are added, changed or removed in one place.
//!
//! Compiled only with the `pool-contenders` feature, which is off until the facade's API lands:
//! this file is written against the API shape in DESIGN.md (`WorkerPool::builder()`,
//! `worker_state`, `map_ctx`, `map_with` + `MapOptions`, `get_exit_results`, `join`). When it
//! lands, enable the feature (`cargo run -p pool-bench --release --features pool-contenders`)
//! and fix what the compiler says here; nothing else in the harness needs to change.
//!
//! Each run builds a fresh pool, maps, collects in order and joins, like every other contender.
//! The expensive-init table lives in the worker state (built once per worker); the stateful
//! histogram too, returned by the worker-exit hook and merged here.

use anyhow::Result;
use pool::{MapOptions, StartMethod, WorkerPool};

use super::{Contender, U64Task};
use crate::kernels;
use crate::workload::WorkloadKind;

/// Every `pool` contender, in report order.
pub fn contenders(n_jobs: usize) -> Vec<Box<dyn Contender>> {
    [
        (StartMethod::Fork, "fork"),
        (StartMethod::Spawn, "spawn"),
        (StartMethod::Threading, "threading"),
    ]
    .into_iter()
    .map(|(method, label)| {
        Box::new(PoolContender {
            n_jobs,
            method,
            label,
        }) as Box<dyn Contender>
    })
    .collect()
}

/// `pool` with one start method.
#[derive(Debug, Clone)]
struct PoolContender {
    n_jobs: usize,
    method: StartMethod,
    label: &'static str,
}

impl PoolContender {
    fn builder(&self) -> pool::WorkerPoolBuilder {
        WorkerPool::builder()
            .n_jobs(self.n_jobs)
            .start_method(self.method)
    }
}

impl Contender for PoolContender {
    fn name(&self) -> String {
        format!("pool-{}", self.label)
    }

    fn note(&self, kind: WorkloadKind) -> Option<String> {
        match kind {
            WorkloadKind::ExpensiveInit => {
                Some("table built once per worker (worker_state)".into())
            }
            WorkloadKind::Stateful => Some("worker_state, returned by worker_exit".into()),
            _ => None,
        }
    }

    fn map_u64(&self, task: U64Task, inputs: &[u64]) -> Result<Vec<u64>> {
        let out = match task {
            U64Task::TableLookup { entries } => {
                let mut p = self
                    .builder()
                    .worker_state(move || kernels::build_table(entries as usize))
                    .build()?;
                let out = p.map_ctx(
                    |ctx, i: u64| kernels::table_lookup(ctx.state(), i),
                    inputs.to_vec(),
                )?;
                p.join()?;
                out
            }
            // Spawn re-executes the binary and may need a non-capturing function per task
            // kind; if so, match on `task` here and pass `kernels::square` etc. directly.
            _ => {
                let mut p = self.builder().build()?;
                let out = p.map(move |x: u64| task.apply(x), inputs.to_vec())?;
                p.join()?;
                out
            }
        };
        Ok(out)
    }

    fn stateful(&self, inputs: &[u64], k: u64) -> Result<Vec<u64>> {
        let mut p = self
            .builder()
            .worker_state(|| vec![0u64; kernels::STATE_BINS])
            .build()?;
        p.map_with(
            move |ctx, i: u64| kernels::stateful_step(ctx.state_mut(), i, k),
            inputs.to_vec(),
            MapOptions::default().worker_exit(|ctx| ctx.state().clone()),
        )?;
        let mut merged = vec![0u64; kernels::STATE_BINS];
        for state in p.get_exit_results() {
            kernels::merge_state(&mut merged, &state);
        }
        p.join()?;
        Ok(merged)
    }

    fn payload(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        let mut p = self.builder().build()?;
        let out = p.map(|v: Vec<u8>| kernels::payload_task(&v), inputs.to_vec())?;
        p.join()?;
        Ok(out)
    }
}
