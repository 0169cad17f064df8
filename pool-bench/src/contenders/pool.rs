//! The `pool` contenders: one per start method (fork, spawn, forkserver, threading), all in this file so
//! they are added, changed or removed in one place.
//!
//! Compiled with the `pool-contenders` feature (on by default). A start method that fails shows
//! as a failed row with its error.
//!
//! Every task is a non-capturing closure (what `StartMethod::Spawn` requires): values a task
//! needs travel in its input, e.g. `(i, k)` for cpu-1ms instead of capturing `k`. The table of
//! expensive-init and the histogram of stateful live in the worker state, made once per worker;
//! the histograms come back through `worker_exit` and are merged here.
//!
//! Issue #17's steady rows use a keep-alive pool made on the first call (the untimed warm-up)
//! and kept by the contender; `per-task` keeps its own pool of one worker.

use std::sync::Mutex;

use anyhow::{Result, anyhow};
use pool::{MapOptions, SharedBytes, StartMethod, WorkerContext, WorkerPool};

use super::{Contender, U64Task};
use crate::kernels;
use crate::workload::{Form, WorkloadKind};

/// Every `pool` contender, in report order.
pub fn contenders(n_jobs: usize) -> Vec<Box<dyn Contender>> {
    [
        StartMethod::Fork,
        StartMethod::Spawn,
        StartMethod::Forkserver,
        StartMethod::Threading,
    ]
    .into_iter()
    .map(|method| {
        Box::new(PoolContender {
            n_jobs,
            method,
            steady: Mutex::new(None),
            single: Mutex::new(None),
        }) as Box<dyn Contender>
    })
    .collect()
}

/// `pool` with one start method.
struct PoolContender {
    n_jobs: usize,
    method: StartMethod,
    /// The steady rows' keep-alive pool of `n_jobs` workers.
    steady: Mutex<Option<WorkerPool>>,
    /// `per-task`'s keep-alive pool of one worker.
    single: Mutex<Option<WorkerPool>>,
}

impl PoolContender {
    fn builder(&self) -> pool::Builder {
        WorkerPool::builder()
            .n_jobs(self.n_jobs)
            .start_method(self.method)
    }

    /// Runs `call` on the keep-alive pool in `slot` (of `n_jobs` workers), made on first use.
    fn with_steady<R>(
        &self,
        slot: &Mutex<Option<WorkerPool>>,
        n_jobs: usize,
        call: impl FnOnce(&mut WorkerPool) -> Result<R, pool::PoolError>,
    ) -> Result<R> {
        let mut guard = slot
            .lock()
            .map_err(|_| anyhow!("a steady pool's lock was poisoned"))?;
        if guard.is_none() {
            *guard = Some(self.builder().n_jobs(n_jobs).keep_alive(true).build()?);
        }
        Ok(call(guard.as_mut().expect("just made"))?)
    }

    /// Starts a pool, maps `f` over `inputs`, joins: one whole run.
    /// `f` is generic (not a `fn` pointer) so that fn items stay zero-sized, as Spawn needs.
    /// Inputs borrowed from the harness are passed as `slice.iter().copied()`, as a user would:
    /// the pool copies them a chunk at a time, where `to_vec()` would first copy all of them
    /// into fresh memory (10M `u64`s: ~110 ms against ~65 ms for the whole map).
    fn run<T, R, F>(&self, f: F, inputs: impl IntoIterator<Item = T>) -> Result<Vec<R>>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        T: serde::Serialize
            + serde::de::DeserializeOwned
            + Clone
            + std::fmt::Debug
            + Send
            + 'static,
        R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
        let mut p = self.builder().build()?;
        let out = p.map(f, inputs)?;
        p.join()?;
        Ok(out)
    }
}

impl Contender for PoolContender {
    fn name(&self) -> String {
        format!("pool-{}", self.method.name())
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
        match task {
            U64Task::Square => self.run(kernels::square, inputs.iter().copied()),
            U64Task::SpinPacked => self.run(kernels::spin_packed, inputs.iter().copied()),
            U64Task::Spin { k } => {
                self.run(|(x, k): (u64, u64)| kernels::spin(x, k), with(inputs, k))
            }
            U64Task::TableLookup { entries } => {
                // The state starts empty and the first task on each worker fills it: the table
                // is built once per worker, and the closures capture nothing.
                let mut p = self.builder().worker_state(Vec::<u64>::new).build()?;
                let out = p.map_ctx(
                    |ctx, (i, entries): (u64, u64)| {
                        if ctx.state().is_empty() {
                            *ctx.state_mut() = kernels::build_table(entries as usize);
                        }
                        kernels::table_lookup(ctx.state(), i)
                    },
                    with(inputs, entries),
                )?;
                p.join()?;
                Ok(out)
            }
        }
    }

    fn map_u64_as(&self, task: U64Task, inputs: &[u64], form: Form) -> Result<Vec<u64>> {
        // The index of each input travels in its upper half (`kernels::pack_skewed`), so the
        // unordered forms' results are put back in input order after the call.
        let with_index = |x: u64| (x >> 32, kernels::spin_packed(x));
        let in_order = |mut v: Vec<(u64, u64)>| {
            v.sort_unstable_by_key(|&(i, _)| i);
            v.into_iter().map(|(_, r)| r).collect()
        };
        if task != U64Task::SpinPacked || form == Form::Map {
            return self.map_u64(task, inputs);
        }
        let mut p = self.builder().build()?;
        let inputs = inputs.iter().copied();
        let out = match form {
            Form::Map => unreachable!("handled above"),
            Form::Imap => p
                .imap(kernels::spin_packed, inputs)?
                .collect::<Result<Vec<u64>, _>>()?,
            Form::MapUnordered => in_order(p.map_unordered(with_index, inputs)?),
            Form::ImapUnordered => in_order(
                p.imap_unordered(with_index, inputs)?
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        p.join()?;
        Ok(out)
    }

    fn stateful(&self, inputs: &[u64], k: u64) -> Result<Vec<u64>> {
        let mut p = self
            .builder()
            .worker_state(|| vec![0u64; kernels::STATE_BINS])
            .build()?;
        p.map_ctx_with(
            |ctx, (i, k): (u64, u64)| kernels::stateful_step(ctx.state_mut(), i, k),
            with(inputs, k),
            MapOptions::default()
                .worker_exit(|ctx: &mut WorkerContext<'_, (), Vec<u64>>| ctx.state().clone()),
        )?;
        p.join()?;
        let mut merged = vec![0u64; kernels::STATE_BINS];
        for state in p.get_exit_results::<Vec<u64>>()? {
            kernels::merge_state(&mut merged, &state);
        }
        Ok(merged)
    }

    fn payload(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        self.run(
            |v: Vec<u8>| kernels::payload_task(&v),
            inputs.iter().cloned(),
        )
    }

    fn supports(&self, _kind: WorkloadKind) -> bool {
        true
    }

    fn shared(&self) -> Option<&dyn super::SharedContender> {
        Some(self)
    }

    fn steady_range(&self, n: u64) -> Result<Vec<u64>> {
        self.with_steady(&self.steady, self.n_jobs, |p| p.map(kernels::square, 0..n))
    }

    fn steady_slice(&self, inputs: &[u64]) -> Result<Vec<u64>> {
        self.with_steady(&self.steady, self.n_jobs, |p| {
            p.map(kernels::square, inputs.iter().copied())
        })
    }

    fn steady_owned(&self, inputs: Vec<u64>) -> Result<Vec<u64>> {
        self.with_steady(&self.steady, self.n_jobs, |p| {
            p.map(kernels::square, inputs)
        })
    }

    fn steady_words(&self, inputs: Vec<String>) -> Result<Vec<u64>> {
        self.with_steady(&self.steady, self.n_jobs, |p| {
            p.map(kernels::word_sum, inputs)
        })
    }

    fn fresh_range(&self, n: u64) -> Result<Vec<u64>> {
        self.run(kernels::square, 0..n)
    }

    fn per_task(&self, n: u64) -> Result<Vec<u64>> {
        self.with_steady(&self.single, 1, |p| {
            p.map_with(kernels::square, 0..n, MapOptions::default().chunk_size(1))
        })
    }

    fn round_trips(&self, inputs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        self.with_steady(&self.steady, self.n_jobs, |p| {
            p.map_with(
                |v: Vec<u8>| kernels::payload_task(&v),
                inputs,
                MapOptions::default().chunk_size(1),
            )
        })
    }

    fn big_results(&self, count: u64, bytes: u64) -> Result<Vec<Vec<u8>>> {
        self.with_steady(&self.steady, self.n_jobs, |p| {
            p.map_with(
                |(i, bytes): (u64, u64)| kernels::big_result(i, bytes),
                (0..count).map(move |i| (i, bytes)),
                MapOptions::default().chunk_size(1),
            )
        })
    }

    fn echo(&self, inputs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        self.with_steady(&self.steady, self.n_jobs, |p| {
            p.map_with(|v: Vec<u8>| v, inputs, MapOptions::default().chunk_size(1))
        })
    }
}

impl super::SharedContender for PoolContender {
    fn shared_trips(&self, inputs: Vec<SharedBytes>) -> Result<Vec<SharedBytes>> {
        self.with_steady(&self.steady, self.n_jobs, |p| {
            p.map_with(
                |v: SharedBytes| kernels::shared_payload_task(&v),
                inputs,
                MapOptions::default().chunk_size(1),
            )
        })
    }

    fn shared_big_results(&self, count: u64, bytes: u64) -> Result<Vec<SharedBytes>> {
        self.with_steady(&self.steady, self.n_jobs, |p| {
            p.map_with(
                |(i, bytes): (u64, u64)| kernels::shared_big_result(i, bytes),
                (0..count).map(move |i| (i, bytes)),
                MapOptions::default().chunk_size(1),
            )
        })
    }

    fn shared_echo(&self, inputs: Vec<SharedBytes>) -> Result<Vec<SharedBytes>> {
        self.with_steady(&self.steady, self.n_jobs, |p| {
            p.map_with(
                |v: SharedBytes| v,
                inputs,
                MapOptions::default().chunk_size(1),
            )
        })
    }
}

/// Pairs every input with a parameter the task would otherwise capture.
fn with(inputs: &[u64], param: u64) -> impl ExactSizeIterator<Item = (u64, u64)> + '_ {
    inputs.iter().map(move |&x| (x, param))
}
