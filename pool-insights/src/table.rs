//! The printed form of [`Insights`]: one row per worker, then totals, means, standard
//! deviations and ratios, percentiles, and the slowest tasks.

use std::fmt;

use crate::Insights;

/// `0`, `850 ns`, `12.3 µs`, `45.6 ms`, `1.234 s`, `1:02:03`.
pub(crate) fn secs(s: f64) -> String {
    if s <= 0.0 {
        "0".into()
    } else if s < 1e-6 {
        format!("{:.0} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 60.0 {
        format!("{s:.3} s")
    } else {
        let t = s as u64;
        format!("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60)
    }
}

fn pct(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

const HEAD: [&str; 12] = [
    "", "tasks", "start-up", "init", "waiting", "working", "exit", "transfer", "p50", "p90", "p99",
    "max",
];

fn row(f: &mut fmt::Formatter<'_>, cells: &[String]) -> fmt::Result {
    let mut line = format!("{:<8}", cells[0]);
    for c in &cells[1..] {
        line.push_str(&format!(" {c:>9}"));
    }
    writeln!(f, "{}", line.trim_end())
}

pub(crate) fn write(i: &Insights, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "Worker insights: {} workers, {} tasks, total time {}",
        i.n_workers,
        i.total_completed_tasks(),
        secs(i.total_time)
    )?;
    row(f, &HEAD.map(String::from))?;
    for w in 0..i.n_workers {
        let p = i
            .worker_task_duration_percentiles
            .get(w)
            .copied()
            .unwrap_or_default();
        row(
            f,
            &[
                match i.worker_locations.get(w) {
                    Some(Some(at)) => format!("worker {w} ({at})"),
                    _ => format!("worker {w}"),
                },
                i.n_completed_tasks[w].to_string(),
                secs(i.start_up_time[w]),
                secs(i.init_time[w]),
                secs(i.waiting_time[w]),
                secs(i.working_time[w]),
                secs(i.exit_time[w]),
                secs(i.data_transfer_time[w]),
                secs(p.p50),
                secs(p.p90),
                secs(p.p99),
                secs(p.max),
            ],
        )?;
    }
    let p = i.task_duration_percentiles;
    let phases = |a: [f64; 6]| a.map(secs);
    let [s, n, w, k, e, d] = phases([
        i.total_start_up_time,
        i.total_init_time,
        i.total_waiting_time,
        i.total_working_time,
        i.total_exit_time,
        i.total_data_transfer_time,
    ]);
    let total = i.total_completed_tasks().to_string();
    row(
        f,
        &[
            "total".into(),
            total,
            s,
            n,
            w,
            k,
            e,
            d,
            secs(p.p50),
            secs(p.p90),
            secs(p.p99),
            secs(p.max),
        ],
    )?;
    let [s, n, w, k, e, d] = phases([
        i.start_up_time_mean,
        i.init_time_mean,
        i.waiting_time_mean,
        i.working_time_mean,
        i.exit_time_mean,
        i.data_transfer_time_mean,
    ]);
    row(f, &["mean".into(), String::new(), s, n, w, k, e, d])?;
    let [s, n, w, k, e, d] = phases([
        i.start_up_time_std,
        i.init_time_std,
        i.waiting_time_std,
        i.working_time_std,
        i.exit_time_std,
        i.data_transfer_time_std,
    ]);
    row(f, &["std".into(), String::new(), s, n, w, k, e, d])?;
    let ratios = [
        i.start_up_ratio,
        i.init_ratio,
        i.waiting_ratio,
        i.working_ratio,
        i.exit_ratio,
        i.data_transfer_ratio,
    ]
    .map(pct);
    let mut cells = vec!["ratio".to_string(), String::new()];
    cells.extend(ratios);
    row(f, &cells)?;
    if p.count > 0 {
        writeln!(
            f,
            "task durations: mean {}, p50 {}, p90 {}, p99 {}, max {} ({} tasks)",
            secs(p.mean),
            secs(p.p50),
            secs(p.p90),
            secs(p.p99),
            secs(p.max),
            p.count
        )?;
    }
    if !i.top_5_max_task_durations.is_empty() {
        writeln!(f, "slowest tasks:")?;
        for (k, d) in i.top_5_max_task_durations.iter().enumerate() {
            writeln!(
                f,
                "  {}. {:>9}  task #{} on worker {}  args: {}",
                k + 1,
                secs(*d),
                i.top_5_max_task_ids.get(k).copied().unwrap_or_default(),
                i.top_5_max_task_workers.get(k).copied().unwrap_or_default(),
                i.top_5_max_task_args.get(k).map_or("", String::as_str)
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::secs;

    #[test]
    fn durations_read_well() {
        assert_eq!(secs(0.0), "0");
        assert_eq!(secs(8.5e-7), "850 ns");
        assert_eq!(secs(1.23e-5), "12.3 µs");
        assert_eq!(secs(0.0456), "45.6 ms");
        assert_eq!(secs(1.2344), "1.234 s");
        assert_eq!(secs(3723.0), "1:02:03");
    }
}
