//! The plot: grouped horizontal bars, one group per workload, one bar per contender, on a
//! log-scale time axis (workloads differ by orders of magnitude). The bar ends at the median;
//! a thin whisker spans min–max. Written by hand: a few dozen SVG elements need no plotting
//! crate, and the output stays small, diffable and readable on GitHub.

use std::fmt::Write;

use super::{decade_label, human_time};
use crate::results::{Report, Status};

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 190.0;
const RIGHT_PAD: f64 = 90.0;
const BAR_H: f64 = 14.0;
const BAR_GAP: f64 = 4.0;
const GROUP_TITLE_H: f64 = 22.0;
const GROUP_GAP: f64 = 10.0;
const TOP: f64 = 56.0;
const AXIS_H: f64 = 36.0;
const PALETTE: [&str; 10] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
    "#1f78b4", "#b15928",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the plot as a standalone SVG document.
pub fn render(report: &Report) -> String {
    // Contender order (and so colour) as first seen, the same in every group.
    let mut contenders: Vec<&str> = Vec::new();
    for r in report.workloads.iter().flat_map(|w| &w.rows) {
        if !contenders.contains(&r.contender.as_str()) {
            contenders.push(&r.contender);
        }
    }
    let colour = |name: &str| {
        PALETTE[contenders.iter().position(|c| *c == name).unwrap_or(0) % PALETTE.len()]
    };

    // Log axis over whole decades that cover every min and max.
    let (lo, hi) = report
        .workloads
        .iter()
        .flat_map(|w| &w.rows)
        .filter_map(|r| r.summary.filter(|_| r.status == Status::Ok))
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), s| {
            (lo.min(s.min_s), hi.max(s.max_s))
        });
    let (lo_dec, hi_dec) = if lo.is_finite() && hi > 0.0 {
        let l = lo.max(1e-9).log10().floor() as i32;
        (l, (hi.log10().ceil() as i32).max(l + 1))
    } else {
        (-3, 1)
    };
    let plot_w = WIDTH - LABEL_W - RIGHT_PAD;
    let x_of = |s: f64| {
        let f =
            (s.max(10f64.powi(lo_dec)).log10() - f64::from(lo_dec)) / f64::from(hi_dec - lo_dec);
        LABEL_W + f * plot_w
    };

    let rows_total: usize = report.workloads.iter().map(|w| w.rows.len()).sum();
    let groups = report.workloads.len() as f64;
    let height = TOP
        + groups * (GROUP_TITLE_H + GROUP_GAP)
        + rows_total as f64 * (BAR_H + BAR_GAP)
        + AXIS_H
        + 10.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!(
        "Wall time per workload (median, whisker = min–max, log scale; lower is better) — {} workers{}",
        report.n_jobs,
        if report.quick { ", --quick" } else { "" }
    );
    let _ = writeln!(
        s,
        r#"<text x="12" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(&title)
    );
    let _ = writeln!(
        s,
        r##"<text x="12" y="40" fill="#555">{} · {} CPUs · {} timed runs per bar · <tspan font-style="italic">italic</tspan> = Python{}</text>"##,
        esc(&report.generator),
        report.machine.cpus,
        report.runs,
        report
            .machine
            .load_before
            .filter(|l| *l > 0.5)
            .map(|l| format!(" · machine busy at start (load {l:.1}): noisy"))
            .unwrap_or_default()
    );

    // Decade grid lines and labels, top to bottom of the plot area.
    let plot_bottom = height - AXIS_H;
    for d in lo_dec..=hi_dec {
        let x = x_of(10f64.powi(d));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#333">{}</text>"##,
            plot_bottom + 16.0,
            esc(&decade_label(d))
        );
    }

    let mut y = TOP;
    for w in &report.workloads {
        let _ = writeln!(
            s,
            r#"<text x="12" y="{:.1}" font-weight="bold">{}</text>"#,
            y + 15.0,
            esc(&w.workload)
        );
        y += GROUP_TITLE_H;
        for r in &w.rows {
            let mid = y + BAR_H / 2.0;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="middle"{}>{}</text>"#,
                LABEL_W - 8.0,
                mid,
                if r.language == "python" {
                    r#" font-style="italic""#
                } else {
                    ""
                },
                esc(&r.contender)
            );
            match (r.status, r.summary) {
                (Status::Ok, Some(sum)) => {
                    let (x0, xm) = (LABEL_W, x_of(sum.median_s));
                    let _ = writeln!(
                        s,
                        r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{BAR_H}" fill="{}" opacity="0.85"><title>{}: {} (min {}, max {})</title></rect>"#,
                        (xm - x0).max(1.0),
                        colour(&r.contender),
                        esc(&format!("{} on {}", r.contender, w.workload)),
                        esc(&human_time(sum.median_s)),
                        esc(&human_time(sum.min_s)),
                        esc(&human_time(sum.max_s)),
                    );
                    let (a, b) = (x_of(sum.min_s), x_of(sum.max_s));
                    let _ = writeln!(
                        s,
                        r##"<path d="M{a:.1} {mid:.1}H{b:.1}M{a:.1} {:.1}V{:.1}M{b:.1} {:.1}V{:.1}" stroke="#222" fill="none"/>"##,
                        mid - 4.0,
                        mid + 4.0,
                        mid - 4.0,
                        mid + 4.0
                    );
                    let _ = writeln!(
                        s,
                        r##"<text x="{:.1}" y="{mid:.1}" dominant-baseline="middle" fill="#222">{}</text>"##,
                        b.max(xm) + 6.0,
                        esc(&human_time(sum.median_s))
                    );
                }
                (status, _) => {
                    let _ = writeln!(
                        s,
                        r##"<text x="{:.1}" y="{mid:.1}" dominant-baseline="middle" fill="#c00">{}</text>"##,
                        LABEL_W + 4.0,
                        format!("{status:?}").to_lowercase()
                    );
                }
            }
            y += BAR_H + BAR_GAP;
        }
        y += GROUP_GAP;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{LABEL_W}" y1="{plot_bottom:.1}" x2="{:.1}" y2="{plot_bottom:.1}" stroke="#333"/>"##,
        LABEL_W + plot_w
    );
    s.push_str("</svg>\n");
    s
}
