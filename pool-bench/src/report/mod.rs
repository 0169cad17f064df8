//! Writes a [`crate::results::Report`] three ways: JSON for machines, Markdown for people,
//! SVG for a glance. One file per format.

pub mod markdown;
pub mod svg;

use std::path::Path;

use anyhow::{Context, Result};

use crate::results::Report;

/// Formats seconds with a unit that keeps three significant digits readable.
pub fn human_time(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.0} µs", s * 1e6)
    } else {
        format!("{:.0} ns", s * 1e9)
    }
}

/// Label of a decade tick on a log axis: `1 ns` … `100 s`.
pub fn decade_label(exp: i32) -> String {
    const UNITS: [(i32, &str); 4] = [(-9, "ns"), (-6, "µs"), (-3, "ms"), (0, "s")];
    let (base, unit) = UNITS
        .iter()
        .rev()
        .find(|(b, _)| exp >= *b)
        .copied()
        .unwrap_or((-9, "ns"));
    format!("{} {unit}", 10u64.pow((exp - base).clamp(0, 6) as u32))
}

/// Writes `results.json`, `results.md` and `results.svg` into `dir`.
pub fn write_all(report: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write("results.json", &serde_json::to_vec_pretty(report)?)?;
    write("results.md", markdown::render(report).as_bytes())?;
    write("results.svg", svg::render(report).as_bytes())?;
    Ok(())
}
