//! A hand-written thread pool: `std::thread` workers fed chunks over crossbeam channels.
//!
//! This is what a Rust programmer writes without a pool crate: `n_jobs` scoped threads, one
//! channel of chunks (MPIRE's default chunk size), one channel of results reassembled in order.
//! It shows what rayon's work stealing buys over static chunking, e.g. on skewed tasks.

use anyhow::{Result, anyhow};
use crossbeam_channel::unbounded;

use super::{Contender, U64Task, default_chunk_size};
use crate::kernels;
use crate::workload::WorkloadKind;

/// `n_jobs` threads, chunked tasks, results reordered by chunk index.
#[derive(Debug, Clone, Copy)]
pub struct Threads {
    n_jobs: usize,
}

impl Threads {
    /// A contender with `n_jobs` threads.
    pub fn new(n_jobs: usize) -> Self {
        Self { n_jobs }
    }
}

/// Maps `f` over `inputs` on `n_jobs` scoped threads, in chunks, keeping input order.
pub fn map_chunked<T, R, F>(n_jobs: usize, inputs: &[T], f: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let chunk = default_chunk_size(inputs.len(), n_jobs);
    let (task_tx, task_rx) = unbounded::<(usize, &[T])>();
    let (result_tx, result_rx) = unbounded::<(usize, Vec<R>)>();
    let n_chunks = inputs.chunks(chunk).len();
    for c in inputs.chunks(chunk).enumerate() {
        task_tx.send(c).expect("receiver alive");
    }
    drop(task_tx);
    let f = &f;
    let mut slots: Vec<Option<Vec<R>>> = (0..n_chunks).map(|_| None).collect();
    std::thread::scope(|s| {
        for _ in 0..n_jobs {
            let task_rx = task_rx.clone();
            let result_tx = result_tx.clone();
            s.spawn(move || {
                for (index, chunk) in task_rx {
                    let out: Vec<R> = chunk.iter().map(f).collect();
                    if result_tx.send((index, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(result_tx);
        for (index, out) in result_rx {
            slots[index] = Some(out);
        }
    });
    let mut results = Vec::with_capacity(inputs.len());
    for (index, slot) in slots.into_iter().enumerate() {
        results.extend(slot.ok_or_else(|| anyhow!("chunk {index} lost (a worker panicked?)"))?);
    }
    Ok(results)
}

impl Contender for Threads {
    fn name(&self) -> String {
        "threads+crossbeam".into()
    }

    fn note(&self, kind: WorkloadKind) -> Option<String> {
        match kind {
            WorkloadKind::ExpensiveInit => Some("one table shared by all threads".into()),
            _ => None,
        }
    }

    fn map_u64(&self, task: U64Task, inputs: &[u64]) -> Result<Vec<u64>> {
        let table = task.init_table();
        map_chunked(self.n_jobs, inputs, |&x| task.apply_with(&table, x))
    }

    fn stateful(&self, inputs: &[u64], k: u64) -> Result<Vec<u64>> {
        let chunk = default_chunk_size(inputs.len(), self.n_jobs);
        let (task_tx, task_rx) = unbounded::<&[u64]>();
        for c in inputs.chunks(chunk) {
            task_tx.send(c).expect("receiver alive");
        }
        drop(task_tx);
        let mut merged = vec![0u64; kernels::STATE_BINS];
        std::thread::scope(|s| -> Result<()> {
            let workers: Vec<_> = (0..self.n_jobs)
                .map(|_| {
                    let task_rx = task_rx.clone();
                    s.spawn(move || {
                        // The worker's state lives as long as the worker, across chunks.
                        let mut state = vec![0u64; kernels::STATE_BINS];
                        for chunk in task_rx {
                            chunk
                                .iter()
                                .for_each(|&i| kernels::stateful_step(&mut state, i, k));
                        }
                        state
                    })
                })
                .collect();
            for w in workers {
                let state = w
                    .join()
                    .map_err(|_| anyhow!("a stateful worker panicked"))?;
                kernels::merge_state(&mut merged, &state);
            }
            Ok(())
        })?;
        Ok(merged)
    }

    fn payload(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        map_chunked(self.n_jobs, inputs, |i| kernels::payload_task(i))
    }
}
