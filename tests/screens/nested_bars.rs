//! Nested pools in a real terminal: the outer bar on the first line and one line per outer
//! worker below it, whether the outer workers are threads or forked processes.

use crate::seeds::example;
use crate::tmux::{self, Tmux};

/// Runs `examples/nested_bars.rs` (3 outer workers, 9 jobs of 100 tasks, an inner pool per
/// job at line `worker_id + 1`) and checks the final screen row by row.
fn nested_bars_stack_by_position(outer: &str) {
    let exe = example("nested_bars");
    let t = Tmux::start(
        &format!("nested-{outer}"),
        110,
        40,
        &format!("{} {outer}", exe.display()),
    );
    let rows = t.wait_end();
    let screen = rows.join("\n");
    let first = rows
        .iter()
        .position(|r| r.contains("jobs:"))
        .unwrap_or_else(|| panic!("no outer bar:\n{screen}"));
    // The outer bar, then workers 0, 1 and 2, each once, then the program's own output.
    assert_eq!(rows.len(), first + 6, "no other line:\n{screen}");
    assert!(
        rows[first].starts_with("jobs: 100%|") && rows[first].contains("| 9/9 ["),
        "{screen}"
    );
    for w in 0..3 {
        let row = &rows[first + 1 + w];
        assert!(
            row.starts_with(&format!("worker {w} job ")) && row.contains(": 100%|"),
            "line {} is worker {w}'s last inner bar:\n{screen}",
            first + 1 + w
        );
        assert!(row.contains("| 100/100 ["), "{screen}");
    }
    assert!(rows[first + 4].starts_with("sums: ["), "{screen}");
    assert_eq!(rows[first + 5], tmux::END, "{screen}");
    for (needle, n) in [("jobs:", 1), ("worker 0 job", 1), ("worker 1 job", 1)] {
        assert_eq!(
            rows.iter().filter(|r| r.contains(needle)).count(),
            n,
            "{needle}: no copies, nothing appended:\n{screen}"
        );
    }
}

#[test]
fn nested_bars_stack_by_position_with_thread_workers() {
    if tmux::available("nested_bars_stack_by_position_with_thread_workers") {
        nested_bars_stack_by_position("threads");
    }
}

#[test]
fn nested_bars_stack_by_position_with_forked_workers() {
    if tmux::available("nested_bars_stack_by_position_with_forked_workers") {
        nested_bars_stack_by_position("fork");
    }
}

/// The outer call shows no bar: the inner bars alone, one line per outer worker.
fn inner_bars_alone_stack_by_position(outer: &str) {
    let exe = example("nested_bars");
    let t = Tmux::start(
        &format!("inner-{outer}"),
        110,
        40,
        &format!("{} {outer} inner-only", exe.display()),
    );
    let rows = t.wait_end();
    let screen = rows.join("\n");
    let first = rows
        .iter()
        .position(|r| r.starts_with("worker "))
        .unwrap_or_else(|| panic!("no inner bar:\n{screen}"));
    assert_eq!(rows.len(), first + 5, "no other line:\n{screen}");
    for w in 0..3 {
        let row = &rows[first + w];
        assert!(
            row.starts_with(&format!("worker {w} job ")) && row.contains("| 100/100 ["),
            "line {} is worker {w}'s last inner bar:\n{screen}",
            first + w
        );
    }
    assert!(rows[first + 3].starts_with("sums: ["), "{screen}");
    assert_eq!(rows[first + 4], tmux::END, "{screen}");
}

#[test]
fn inner_bars_alone_stack_by_position_with_thread_workers() {
    if tmux::available("inner_bars_alone_stack_by_position_with_thread_workers") {
        inner_bars_alone_stack_by_position("threads");
    }
}

#[test]
fn inner_bars_alone_stack_by_position_with_forked_workers() {
    if tmux::available("inner_bars_alone_stack_by_position_with_forked_workers") {
        inner_bars_alone_stack_by_position("fork");
    }
}
