//! Worker insights for pool: statistics over the raw per-worker timings. (Being built: see
//! issue #4.)

use pool_core::WorkerTimings;

/// Insights of a pool's calls.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Insights {
    /// Raw per-worker timings.
    pub workers: Vec<WorkerTimings>,
}

impl Insights {
    /// Computes insights from raw timings.
    pub fn from_timings(timings: &[WorkerTimings]) -> Self {
        Insights {
            workers: timings.to_vec(),
        }
    }
}

impl std::fmt::Display for Insights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for w in &self.workers {
            writeln!(
                f,
                "worker {}: {} tasks, working {:?}, waiting {:?}",
                w.worker, w.n_completed_tasks, w.working, w.waiting
            )?;
        }
        Ok(())
    }
}
