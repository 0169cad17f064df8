//! The progress bar's plain lines (stderr is not a terminal here): they count against the real
//! total, show the time left, and speak of jobs.

use crate::util::*;

fn progress_lines(args: &[&str], input: Option<&str>) -> Vec<String> {
    let o = match input {
        Some(i) => run_stdin(args, i),
        None => run(args),
    };
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stderr(&o)
        .lines()
        .filter(|l| l.starts_with("[pool run]"))
        .map(str::to_string)
        .collect()
}

fn assert_counts_against(lines: &[String], total: &str) {
    assert!(lines.len() >= 3, "a line while running: {lines:?}");
    assert!(lines[0].contains(&format!("0/{total} jobs")), "{lines:?}");
    assert!(lines[0].contains("2 jobs at a time"), "{lines:?}");
    assert!(!lines[0].contains("imap_unordered"), "{lines:?}");
    for l in &lines[1..lines.len() - 1] {
        assert!(l.contains(&format!("/{total} jobs")), "while running: {l}");
        assert!(l.contains('<'), "the time left: {l}");
    }
}

#[test]
fn the_bar_counts_against_the_real_total() {
    let lines = progress_lines(
        &[
            "run", "--bar", "-j2", "sleep", ":::", "0.7", "0.7", "0.7", "0.7", "0.7", "0.7",
        ],
        None,
    );
    assert_counts_against(&lines, "6");
}

#[test]
fn eta_counts_stdin_inputs_first() {
    let lines = progress_lines(
        &["run", "--eta", "-j2", "sleep"],
        Some("0.7\n0.7\n0.7\n0.7\n0.7\n0.7\n"),
    );
    assert_counts_against(&lines, "6");
}

#[test]
fn failed_jobs_are_summed_up_at_the_end() {
    let o = run(&["run", "-k", "exit {}", ":::", "0", "3", "0", "5"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.contains("pool run: 2 of 4 jobs failed:"), "{err}");
    assert!(err.contains("job 2 (exit 3): exit 3"), "{err}");
    assert!(err.contains("job 4 (exit 5): exit 5"), "{err}");
}
