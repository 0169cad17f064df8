//! The Markdown report: a header on how the run was made, then one table row per contender per
//! workload with median, range and the two ratios (against rayon, the in-process ceiling, and
//! against MPIRE). `BENCHMARKS.md` includes this file's table and embeds the SVG.

use std::fmt::Write;

use super::human_time;
use crate::results::{Report, Status};

/// A ratio with about three significant digits: `1.00×`, `717×`, `0.0014×`.
fn ratio(r: Option<f64>) -> String {
    match r {
        None => "–".into(),
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) if r >= 0.1 => format!("{r:.2}×"),
        Some(r) if r > 0.0 => {
            let decimals = (-r.log10().floor()) as usize + 1;
            format!("{r:.decimals$}×")
        }
        Some(r) => format!("{r}×"),
    }
}

/// Python's serial cpu-1ms median over Rust's: how well the two calibrations agree.
fn calibration_check(report: &Report) -> Option<f64> {
    let w = report.workloads.iter().find(|w| w.workload == "cpu-1ms")?;
    let median = |name: &str| {
        w.rows
            .iter()
            .find(|r| r.contender == name && r.status == Status::Ok)
            .and_then(|r| r.summary)
            .map(|s| s.median_s)
    };
    Some(median("python-serial")? / median("serial")?)
}

/// Renders the whole report as Markdown.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let m = &report.machine;
    let _ = writeln!(s, "# pool benchmark results\n");
    let _ = writeln!(
        s,
        "{} on {} {} ({} CPUs{}), {} workers per contender, {} timed runs each after one checked \
         warm-up{}.\n",
        report.generator,
        m.os,
        m.arch,
        m.cpus,
        m.cpu_model
            .as_deref()
            .map(|c| format!(", {c}"))
            .unwrap_or_default(),
        report.n_jobs,
        report.runs,
        if report.quick {
            ", `--quick` sizes"
        } else {
            ""
        },
    );
    if let Some(load) = m.load_before.filter(|l| *l > 0.5) {
        let _ = writeln!(
            s,
            "**The machine was busy when the run started (load average {load:.2}): other work \
             shared the CPUs, so the figures are noisier than usual.**"
        );
    }
    if let Some(py) = &report.python {
        let _ = writeln!(
            s,
            "\nPython {} with MPIRE {} and numpy {}; pools use the `fork` start method.",
            py.python, py.mpire, py.numpy
        );
    }
    let c = &report.calibration;
    let _ = writeln!(
        s,
        "\nSpin kernel: Rust {} iterations/ms{}.",
        c.rust_k_per_ms,
        c.python_k_per_ms
            .map(|k| format!(", Python {k} iterations/ms ({})", c.python_work))
            .unwrap_or_default()
    );
    if c.python_work == "same-time" {
        let _ = writeln!(
            s,
            "\nCPU tasks are sized in time: a 1 ms task runs 1 ms in each language, so the Python rows \
             compare pools, not interpreters. Each language's checksums are checked against a Rust \
             serial reference computed with that language's iteration counts."
        );
        if let Some(r) = calibration_check(report) {
            let _ = writeln!(
                s,
                "Calibration check: `python-serial` took {r:.2}× as long as Rust's `serial` on \
                 cpu-1ms (1.00× = the two calibrations agree; they drift when the machine's load \
                 changes between the Rust and the Python phase)."
            );
        }
    }
    let _ = writeln!(
        s,
        "\nTimes are wall-clock medians (min–max) of a whole run: start the workers, map, collect \
         in order, join. Ratios are medians divided by rayon's and by MPIRE's on the same workload \
         (lower is faster)."
    );
    let _ = writeln!(
        s,
        "\n| workload | contender | median | min–max | vs rayon | vs MPIRE | notes |\n|---|---|--:|--:|--:|--:|---|"
    );
    for w in &report.workloads {
        for r in &w.rows {
            let (median, range) = match (r.status, r.summary) {
                (Status::Ok, Some(sum)) => (
                    human_time(sum.median_s),
                    format!("{} – {}", human_time(sum.min_s), human_time(sum.max_s)),
                ),
                (status, _) => (format!("**{status:?}**").to_lowercase(), "–".into()),
            };
            let notes = [r.note.as_deref(), r.error.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                w.workload,
                r.contender,
                median,
                range,
                ratio(r.ratio_vs_rayon),
                ratio(r.ratio_vs_mpire),
                notes.replace('|', "\\|"),
            );
        }
    }
    let _ = writeln!(s, "\n## Workloads\n");
    for w in &report.workloads {
        let _ = writeln!(s, "- **{}**: {}", w.workload, w.description);
    }
    let invalid: Vec<_> = report.invalid_rows().collect();
    if !invalid.is_empty() {
        let _ = writeln!(s, "\n## Invalid rows\n");
        for (w, r) in invalid {
            let _ = writeln!(
                s,
                "- {} on {}: {}",
                r.contender,
                w.workload,
                r.error.as_deref().unwrap_or("checksum mismatch")
            );
        }
    }
    s
}
