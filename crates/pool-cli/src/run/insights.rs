//! `--insights`: where the time went, per job slot, and the slowest jobs.

use std::fmt::Write as _;
use std::time::Duration;

/// The insights table as text.
pub(crate) fn table(insights: &pool::Insights, wall: Duration) -> String {
    let mut s = String::new();
    let workers = &insights.workers;
    let jobs: u64 = workers.iter().map(|w| w.n_completed_tasks).sum();
    let working: Duration = workers.iter().map(|w| w.working).sum();
    let _ = writeln!(
        s,
        "pool run insights: {jobs} jobs on {} slots in {:.3}s (slots busy {:.1}%)",
        workers.len(),
        wall.as_secs_f64(),
        if wall.is_zero() || workers.is_empty() {
            0.0
        } else {
            100.0 * working.as_secs_f64() / (wall.as_secs_f64() * workers.len() as f64)
        }
    );
    let _ = writeln!(
        s,
        "{:>5} {:>8} {:>11} {:>11} {:>11}",
        "slot", "jobs", "working", "waiting", "mean/job"
    );
    for w in workers {
        let mean = if w.n_completed_tasks == 0 {
            Duration::ZERO
        } else {
            w.working / w.n_completed_tasks as u32
        };
        let _ = writeln!(
            s,
            "{:>5} {:>8} {:>10.3}s {:>10.3}s {:>9.3}ms",
            w.worker + 1,
            w.n_completed_tasks,
            w.working.as_secs_f64(),
            w.waiting.as_secs_f64(),
            mean.as_secs_f64() * 1000.0
        );
    }
    let mut slowest: Vec<_> = workers.iter().flat_map(|w| w.slowest.iter()).collect();
    slowest.sort_by_key(|t| std::cmp::Reverse(t.duration));
    if !slowest.is_empty() {
        let _ = writeln!(s, "slowest jobs:");
        for t in slowest.iter().take(5) {
            let _ = writeln!(s, "  {:>9.3}s  {}", t.duration.as_secs_f64(), t.args);
        }
    }
    s
}
