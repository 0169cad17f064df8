//! The Rust contenders, all behind one trait so the runner treats them alike.
//!
//! Every contender does a whole run per call: start its workers, map the tasks, collect the
//! results in input order, stop its workers. That is what a user pays, and it is what the Python
//! peers are timed doing too. Inputs are prepared before the call and checksums are taken after
//! it, both outside the timed region.

use anyhow::Result;

use crate::kernels;
use crate::workload::{Form, WorkloadKind};

pub mod counter;
pub mod process;
pub mod rayon;
pub mod serial;
pub mod threads;

#[cfg(feature = "pool-contenders")]
pub mod pool;

/// A task that maps one `u64` to one `u64`; the shape of most workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum U64Task {
    /// [`kernels::square`] (trivial, startup).
    Square,
    /// [`kernels::spin`] with a fixed iteration count (cpu-1ms).
    Spin {
        /// Iterations per task.
        k: u64,
    },
    /// [`kernels::spin_packed`]: the iteration count travels in the input (skewed).
    SpinPacked,
    /// [`kernels::table_lookup`] into a table of `entries` words that the worker must build
    /// first (expensive-init).
    TableLookup {
        /// Words in the table.
        entries: u64,
    },
}

impl U64Task {
    /// Runs the task in this process. `TableLookup` needs its table: see [`Self::apply_with`].
    pub fn apply(self, x: u64) -> u64 {
        match self {
            Self::Square => kernels::square(x),
            Self::Spin { k } => kernels::spin(x, k),
            Self::SpinPacked => kernels::spin_packed(x),
            Self::TableLookup { .. } => panic!("TableLookup needs a table: use apply_with"),
        }
    }

    /// Runs the task with a table built beforehand (ignored by the tasks that need none).
    pub fn apply_with(self, table: &[u64], x: u64) -> u64 {
        match self {
            Self::TableLookup { .. } => kernels::table_lookup(table, x),
            other => other.apply(x),
        }
    }

    /// Builds the table this task needs, once; empty for tasks that need none.
    pub fn init_table(self) -> Vec<u64> {
        match self {
            Self::TableLookup { entries } => kernels::build_table(entries as usize),
            _ => Vec::new(),
        }
    }
}

/// One way of running the workloads in parallel.
pub trait Contender: Send + Sync {
    /// Name in the report, e.g. `rayon`.
    fn name(&self) -> String;

    /// What this contender does differently on a workload, for the report (e.g. "one process
    /// per batch"). `None` when it runs the workload the obvious way.
    fn note(&self, _kind: WorkloadKind) -> Option<String> {
        None
    }

    /// Whether this contender runs `kind` at all (the serial loop has no pool to start).
    /// By default: issue #5's workloads (the ones the Python peers run too).
    fn supports(&self, kind: WorkloadKind) -> bool {
        kind.python_peers()
    }

    /// The `shared-*` workloads, for a contender that runs them.
    #[cfg(feature = "pool-contenders")]
    fn shared(&self) -> Option<&dyn SharedContender> {
        None
    }

    /// Maps `task` over `inputs`, results in input order.
    fn map_u64(&self, task: U64Task, inputs: &[u64]) -> Result<Vec<u64>>;

    /// Maps `task` over `inputs` through the call `form` names (`imap`, `map_unordered`, ...),
    /// results put back in input order for the checksum. Contenders with one way to map use
    /// [`Contender::map_u64`].
    fn map_u64_as(&self, task: U64Task, inputs: &[u64], _form: Form) -> Result<Vec<u64>> {
        self.map_u64(task, inputs)
    }

    /// Runs [`kernels::stateful_step`] for every input against a per-worker histogram, and
    /// returns the histograms merged with [`kernels::merge_state`].
    fn stateful(&self, inputs: &[u64], k: u64) -> Result<Vec<u64>>;

    /// Maps [`kernels::payload_task`] over 1 MiB inputs, results in input order.
    fn payload(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>>;

    // Issue #17's rows. "Steady" means a keep-alive pool made on the first call (the untimed
    // warm-up) and reused by the later ones. Only contenders whose `supports` says so are
    // called; the defaults say what is missing.

    /// Steady pool: [`kernels::square`] over `0..n`, passed as the range itself.
    fn steady_range(&self, _n: u64) -> Result<Vec<u64>> {
        unsupported(self, WorkloadKind::SteadyRange)
    }

    /// Steady pool: [`kernels::square`] over a borrowed slice.
    fn steady_slice(&self, _inputs: &[u64]) -> Result<Vec<u64>> {
        unsupported(self, WorkloadKind::SteadySlice)
    }

    /// Steady pool: [`kernels::square`] over an owned vector, moved in.
    fn steady_owned(&self, _inputs: Vec<u64>) -> Result<Vec<u64>> {
        unsupported(self, WorkloadKind::SteadyOwned)
    }

    /// Steady pool: [`kernels::word_sum`] over owned words, moved in.
    fn steady_words(&self, _inputs: Vec<String>) -> Result<Vec<u64>> {
        unsupported(self, WorkloadKind::SteadyWords)
    }

    /// Build a pool, [`kernels::square`] over `0..n`, join.
    fn fresh_range(&self, _n: u64) -> Result<Vec<u64>> {
        unsupported(self, WorkloadKind::FreshRange)
    }

    /// Steady pool of one worker: [`kernels::square`] over `0..n`, one task per chunk.
    fn per_task(&self, _n: u64) -> Result<Vec<u64>> {
        unsupported(self, WorkloadKind::PerTask)
    }

    /// Steady pool, one task per chunk: [`kernels::payload_task`] over owned 1 MiB inputs.
    fn round_trips(&self, _inputs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        unsupported(self, WorkloadKind::RoundTrips)
    }

    /// Steady pool: [`kernels::big_result`]`(i, bytes)` for `i` in `0..count`.
    fn big_results(&self, _count: u64, _bytes: u64) -> Result<Vec<Vec<u8>>> {
        unsupported(self, WorkloadKind::BigResults)
    }

    /// Steady pool, one task per chunk: each owned buffer returned as it came (`|v| v`), so
    /// only moving it in and out is timed (`echo-trips`, `big-echo`).
    fn echo(&self, _inputs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
        unsupported(self, WorkloadKind::EchoTrips)
    }
}

/// The `SharedBytes` workloads (`shared-*`): the pools' own buffer type, so only contenders
/// that can name it run them.
#[cfg(feature = "pool-contenders")]
pub trait SharedContender {
    /// `round-trips` with `SharedBytes`: [`kernels::shared_payload_task`] over owned inputs.
    fn shared_trips(&self, inputs: Vec<::pool::SharedBytes>) -> Result<Vec<::pool::SharedBytes>>;
    /// `big-results` with `SharedBytes`: [`kernels::shared_big_result`] for `i` in `0..count`.
    fn shared_big_results(&self, count: u64, bytes: u64) -> Result<Vec<::pool::SharedBytes>>;
    /// `echo-trips` and `big-echo` with `SharedBytes` (`|v| v`).
    fn shared_echo(&self, inputs: Vec<::pool::SharedBytes>) -> Result<Vec<::pool::SharedBytes>>;
}

fn unsupported<C: Contender + ?Sized, T>(c: &C, kind: WorkloadKind) -> Result<T> {
    anyhow::bail!("{} does not run the {} workload", c.name(), kind.name())
}

/// Chunk size for `len` tasks over `n_jobs` workers: MPIRE's and `multiprocessing.Pool`'s
/// default rule (about four chunks per worker), so chunked contenders batch alike.
pub fn default_chunk_size(len: usize, n_jobs: usize) -> usize {
    len.div_ceil(4 * n_jobs.max(1)).max(1)
}

/// The contender called `name` in the report (`rayon`, `pool-fork`, ...).
pub fn by_name(name: &str, n_jobs: usize) -> Result<Box<dyn Contender>> {
    let mut all = all(n_jobs)?;
    match all.iter().position(|c| c.name() == name) {
        Some(i) => Ok(all.swap_remove(i)),
        None => {
            let names: Vec<_> = all.iter().map(|c| c.name()).collect();
            anyhow::bail!("no contender {name:?}; this build has {}", names.join(", "))
        }
    }
}

/// The contenders of this build, in report order (the `pool` ones first when enabled).
pub fn all(n_jobs: usize) -> Result<Vec<Box<dyn Contender>>> {
    let baselines: Vec<Box<dyn Contender>> = vec![
        Box::new(rayon::Rayon::new(n_jobs)),
        Box::new(threads::Threads::new(n_jobs)),
        Box::new(counter::SharedCounter::new(n_jobs)),
        Box::new(process::ProcessPerTask::new(n_jobs)?),
        Box::new(serial::Serial),
    ];
    #[cfg(feature = "pool-contenders")]
    let baselines = pool::contenders(n_jobs)
        .into_iter()
        .chain(baselines)
        .collect();
    Ok(baselines)
}
