//! `--insights`: where the time went, per job slot, and the slowest jobs.

use std::fmt::Write as _;
use std::time::Duration;

/// The insights table as text: a summary line, pool's insights table, the slowest jobs.
pub(crate) fn table(insights: &pool::Insights, wall: Duration) -> String {
    let mut s = String::new();
    let slots = insights.n_workers;
    let busy = if wall.is_zero() || slots == 0 {
        0.0
    } else {
        100.0 * insights.total_working_time / (wall.as_secs_f64() * slots as f64)
    };
    let _ = writeln!(
        s,
        "pool run insights: {} jobs on {slots} slots in {:.3}s (slots busy {busy:.1}%)",
        insights.total_completed_tasks(),
        wall.as_secs_f64(),
    );
    let _ = write!(s, "{insights}");
    let slowest = insights
        .top_5_max_task_durations
        .iter()
        .zip(&insights.top_5_max_task_args);
    if !insights.top_5_max_task_durations.is_empty() {
        let _ = writeln!(s, "slowest jobs:");
        for (d, args) in slowest {
            let _ = writeln!(s, "  {d:>9.3}s  {args}");
        }
    }
    s
}
