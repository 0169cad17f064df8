//! The process-per-task baseline: what `std::process` gives without a pool.
//!
//! Each task re-executes this binary in its hidden worker mode ([`crate::worker`]); `n_jobs`
//! driver threads keep `n_jobs` children alive at a time. Tiny tasks (trivial, stateful) go one
//! batch per process instead (MPIRE's default chunk size), or the run would take hours; the
//! report says so. The expensive-init table is built once per task, since a process per task has
//! nowhere to keep it: that is the cost per-worker init avoids.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};

use super::{Contender, U64Task, default_chunk_size};
use crate::kernels;
use crate::worker::{WORKER_ARG, decode_words};
use crate::workload::WorkloadKind;

/// One child process per task (or per batch of tiny tasks).
#[derive(Debug, Clone)]
pub struct ProcessPerTask {
    n_jobs: usize,
    exe: PathBuf,
}

/// One child invocation: arguments after the task kind, and bytes for its stdin.
#[derive(Debug)]
struct Job {
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
}

impl ProcessPerTask {
    /// A contender running up to `n_jobs` children at a time.
    pub fn new(n_jobs: usize) -> Result<Self> {
        let exe = std::env::current_exe().context("locating this binary to re-execute it")?;
        Ok(Self::with_exe(n_jobs, exe))
    }

    /// A contender that runs `exe` (a `pool-bench` binary) as its worker, e.g. from tests.
    pub fn with_exe(n_jobs: usize, exe: impl Into<PathBuf>) -> Self {
        Self {
            n_jobs,
            exe: exe.into(),
        }
    }

    fn spawn(&self, job: &Job) -> Result<Vec<u8>> {
        let mut child = Command::new(&self.exe)
            .arg(WORKER_ARG)
            .args(&job.args)
            .stdin(if job.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning {}", self.exe.display()))?;
        if let Some(bytes) = &job.stdin {
            // The child reads all of stdin before it writes, so writing first cannot deadlock.
            let mut stdin = child.stdin.take().expect("piped");
            stdin
                .write_all(bytes)
                .context("writing a task to a worker")?;
        }
        let out = child.wait_with_output().context("waiting for a worker")?;
        if !out.status.success() {
            bail!("worker {:?} failed: {}", job.args, out.status);
        }
        Ok(out.stdout)
    }

    /// Runs all jobs, `n_jobs` at a time, and returns their outputs in job order.
    fn run_all(&self, jobs: Vec<Job>) -> Result<Vec<Vec<u8>>> {
        let next = AtomicUsize::new(0);
        let slots: Mutex<Vec<Option<Vec<u8>>>> =
            Mutex::new((0..jobs.len()).map(|_| None).collect());
        std::thread::scope(|s| -> Result<()> {
            let drivers: Vec<_> = (0..self.n_jobs)
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else {
                                return Ok(());
                            };
                            let out = self.spawn(job)?;
                            slots.lock().expect("not poisoned")[i] = Some(out);
                        }
                    })
                })
                .collect();
            for d in drivers {
                d.join()
                    .map_err(|_| anyhow!("a driver thread panicked"))??;
            }
            Ok(())
        })?;
        slots
            .into_inner()
            .expect("not poisoned")
            .into_iter()
            .enumerate()
            .map(|(i, o)| o.ok_or_else(|| anyhow!("job {i} produced no output")))
            .collect()
    }

    fn batches(&self, len: usize) -> Vec<(u64, u64)> {
        let chunk = default_chunk_size(len, self.n_jobs);
        (0..len)
            .step_by(chunk)
            .map(|start| (start as u64, (start + chunk).min(len) as u64))
            .collect()
    }
}

fn contiguous(inputs: &[u64]) -> bool {
    inputs.windows(2).all(|w| w[1] == w[0] + 1)
}

impl Contender for ProcessPerTask {
    fn name(&self) -> String {
        "process-per-task".into()
    }

    fn note(&self, kind: WorkloadKind) -> Option<String> {
        match kind {
            WorkloadKind::Trivial | WorkloadKind::Stateful => {
                Some("one process per batch (default chunk size), not per task".into())
            }
            WorkloadKind::ExpensiveInit => Some("table built once per task".into()),
            _ => None,
        }
    }

    fn map_u64(&self, task: U64Task, inputs: &[u64]) -> Result<Vec<u64>> {
        let jobs: Vec<Job> = match task {
            U64Task::Square => {
                if !contiguous(inputs) {
                    bail!("process-per-task batches square ranges; inputs must be contiguous");
                }
                let first = inputs.first().copied().unwrap_or(0);
                self.batches(inputs.len())
                    .into_iter()
                    .map(|(a, b)| Job {
                        args: vec![
                            "square".into(),
                            (first + a).to_string(),
                            (first + b).to_string(),
                        ],
                        stdin: None,
                    })
                    .collect()
            }
            U64Task::Spin { k } => inputs
                .iter()
                .map(|x| Job {
                    args: vec!["spin".into(), x.to_string(), k.to_string()],
                    stdin: None,
                })
                .collect(),
            U64Task::SpinPacked => inputs
                .iter()
                .map(|x| Job {
                    args: vec!["spin-packed".into(), x.to_string()],
                    stdin: None,
                })
                .collect(),
            U64Task::TableLookup { entries } => inputs
                .iter()
                .map(|x| Job {
                    args: vec!["table".into(), entries.to_string(), x.to_string()],
                    stdin: None,
                })
                .collect(),
        };
        let mut out = Vec::with_capacity(inputs.len());
        for bytes in self.run_all(jobs)? {
            out.extend(decode_words(&bytes)?);
        }
        Ok(out)
    }

    fn stateful(&self, inputs: &[u64], k: u64) -> Result<Vec<u64>> {
        if !contiguous(inputs) {
            bail!("process-per-task batches stateful ranges; inputs must be contiguous");
        }
        let first = inputs.first().copied().unwrap_or(0);
        let jobs = self
            .batches(inputs.len())
            .into_iter()
            .map(|(a, b)| Job {
                args: vec![
                    "stateful".into(),
                    (first + a).to_string(),
                    (first + b).to_string(),
                    k.to_string(),
                ],
                stdin: None,
            })
            .collect();
        let mut merged = vec![0u64; kernels::STATE_BINS];
        for bytes in self.run_all(jobs)? {
            kernels::merge_state(&mut merged, &decode_words(&bytes)?);
        }
        Ok(merged)
    }

    fn payload(&self, inputs: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        // The copy into each job is the parent's serialization step; every contender that
        // crosses a process boundary pays one.
        let jobs = inputs
            .iter()
            .map(|i| Job {
                args: vec!["payload".into()],
                stdin: Some(i.clone()),
            })
            .collect();
        self.run_all(jobs)
    }
}
