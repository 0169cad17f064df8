//! What the renderers draw, read back from an in-memory terminal.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::{info, status};
use indicatif::TermLike;
use pool_core::{Outcome, ProgressSink, ProgressSpec};
use pool_progress::{BarSink, DrawTarget, MemoryTerm, PlainSink};

fn target(term: &MemoryTerm) -> DrawTarget {
    // No redraw limit worth speaking of: every update reaches the screen.
    DrawTarget::Term {
        term: std::sync::Arc::new(term.clone()),
        hz: 255,
    }
}

fn bar_line(term: &MemoryTerm, needle: &str) -> String {
    term.lines()
        .into_iter()
        .rfind(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", term.contents()))
}

#[test]
fn bar_shows_count_percent_elapsed_eta_and_rate() {
    let term = MemoryTerm::new(100, 10);
    let mut bar = BarSink::new(target(&term));
    bar.start(&info(ProgressSpec::default().desc("squares").total(100)));
    sleep(Duration::from_millis(10));
    bar.update(&status(Some(100), 37, 0, 3, Some(5)));
    sleep(Duration::from_millis(10));
    bar.update(&status(Some(100), 40, 0, 4, Some(6)));
    let line = bar_line(&term, "squares");
    assert!(line.starts_with("squares:  40%|"), "{line}");
    assert!(
        line.ends_with("| 40/100 [00:04<00:06, 10.00 tasks/s]"),
        "{line}"
    );
    assert_eq!(line.chars().count(), 100, "the bar fills the width: {line}");
    // 40% of the bar is full.
    let cells: String = line.split('|').nth(1).unwrap().to_string();
    let full = cells.chars().filter(|c| *c == '█').count();
    let n = cells.chars().count();
    assert!((full as f64 / n as f64 - 0.4).abs() < 0.05, "{cells}");
    bar.finish(&status(Some(100), 100, 0, 8, None), &Outcome::Done);
    let line = bar_line(&term, "squares");
    assert!(line.starts_with("squares: 100%|"), "{line}");
    assert!(line.ends_with("| 100/100 [00:08, 12.50 tasks/s]"), "{line}");
    assert_eq!(
        term.lines().len(),
        1,
        "one line, redrawn in place:\n{}",
        term.contents()
    );
}

#[test]
fn finished_bar_leaves_the_cursor_on_a_fresh_line() {
    let term = MemoryTerm::new(80, 10);
    let mut bar = BarSink::new(target(&term));
    bar.start(&info(ProgressSpec::default().total(3)));
    bar.update(&status(Some(3), 1, 0, 1, Some(2)));
    bar.finish(&status(Some(3), 3, 0, 1, None), &Outcome::Done);
    term.write_line("after").unwrap();
    let lines = term.lines();
    assert_eq!(lines.len(), 2, "{}", term.contents());
    assert!(
        lines[0].starts_with("100%|"),
        "no description, no prefix: {}",
        lines[0]
    );
    assert_eq!(lines[1], "after");
}

#[test]
fn failure_is_printed_once_and_the_bar_says_failed() {
    let term = MemoryTerm::new(100, 10);
    let mut bar = BarSink::new(target(&term));
    bar.start(&info(ProgressSpec::default().desc("work").total(100)));
    bar.update(&status(Some(100), 6, 0, 1, Some(15)));
    let err = "task #7 panicked in worker 1 (args: 7): seven";
    bar.task_failed(err);
    bar.finish(
        &status(Some(100), 7, 1, 1, None),
        &Outcome::Failed(format!("{err}\nworker backtrace:\n  0: main")),
    );
    let text = term.contents();
    let failures: Vec<_> = term
        .lines()
        .into_iter()
        .filter(|l| l.starts_with('✗'))
        .collect();
    assert_eq!(failures, vec![format!("✗ work: {err}")], "{text}");
    let line = bar_line(&term, "work:");
    assert!(line.starts_with("work:   7%|"), "{line}");
    assert!(
        line.ends_with("| 7/100 [00:01, 7.00 tasks/s, 1 failed] ✗ failed"),
        "{line}"
    );
    assert!(!text.contains("backtrace"), "only the first line: {text}");
}

#[test]
fn keep_going_failures_are_listed_then_counted() {
    let term = MemoryTerm::new(100, 40);
    let mut bar = BarSink::new(target(&term));
    bar.start(&info(ProgressSpec::default().desc("kg").total(20)));
    for i in 0..12 {
        bar.task_failed(&format!("task #{i} panicked in worker 0 (args: {i}): boom"));
    }
    bar.finish(&status(Some(20), 20, 12, 2, None), &Outcome::Done);
    let lines = term.lines();
    let shown = lines
        .iter()
        .filter(|l| l.starts_with("✗ kg: task #"))
        .count();
    assert_eq!(shown, 10, "{}", term.contents());
    assert!(lines.contains(&"✗ ... and 2 more failed tasks".to_string()));
    let line = bar_line(&term, "kg:");
    assert!(
        line.ends_with("| 20/20 [00:02, 10.00 tasks/s, 12 failed]"),
        "{line}"
    );
}

#[test]
fn interruption_is_shown() {
    let term = MemoryTerm::new(100, 10);
    let mut bar = BarSink::new(target(&term));
    bar.start(&info(ProgressSpec::default().desc("stop").total(50)));
    bar.update(&status(Some(50), 10, 0, 2, Some(8)));
    bar.finish(&status(Some(50), 12, 0, 2, None), &Outcome::Interrupted);
    let line = bar_line(&term, "stop:");
    assert!(line.starts_with("stop:  24%|"), "{line}");
    assert!(
        line.ends_with("| 12/50 [00:02, 6.00 tasks/s] ⚠ interrupted"),
        "{line}"
    );
}

#[test]
fn unknown_total_is_a_spinner_with_a_counter() {
    let term = MemoryTerm::new(100, 10);
    let mut bar = BarSink::new(target(&term));
    bar.start(&info(ProgressSpec::default().desc("gen").unit("items")));
    sleep(Duration::from_millis(10));
    bar.update(&status(None, 37, 0, 3, None));
    let line = bar_line(&term, "gen:");
    assert!(!line.contains('%') && !line.contains('|'), "no bar: {line}");
    assert!(line.ends_with(" 37 items [00:03, 12.33 items/s]"), "{line}");
    bar.finish(&status(Some(40), 40, 0, 4, None), &Outcome::Done);
    let line = bar_line(&term, "gen:");
    assert_eq!(line, "gen: 40 items [00:04, 10.00 items/s]");
}

#[test]
fn bars_stack_by_position_and_a_finished_line_is_reused() {
    let term = MemoryTerm::new(80, 10);
    // Clones of one target share one board (one `MultiProgress`).
    let shared = target(&term);
    let spec = |d: &str, p: usize| ProgressSpec::default().desc(d).total(10).position(p);
    let mut inner = BarSink::new(shared.clone());
    inner.start(&info(spec("inner-a", 1)));
    let mut outer = BarSink::new(shared.clone());
    outer.start(&info(spec("outer", 0)));
    outer.update(&status(Some(10), 1, 0, 1, Some(9)));
    inner.update(&status(Some(10), 5, 0, 1, Some(1)));
    let order = |term: &MemoryTerm| -> Vec<String> {
        term.lines()
            .iter()
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(order(&term), ["outer", "inner-a"], "{}", term.contents());
    inner.finish(&status(Some(10), 10, 0, 2, None), &Outcome::Done);
    // The next inner bar at the same position takes the finished one's line.
    let mut next = BarSink::new(shared.clone());
    next.start(&info(spec("inner-b", 1)));
    next.update(&status(Some(10), 2, 0, 1, Some(4)));
    assert_eq!(order(&term), ["outer", "inner-b"], "{}", term.contents());
    next.finish(&status(Some(10), 10, 0, 2, None), &Outcome::Done);
    outer.finish(&status(Some(10), 10, 0, 3, None), &Outcome::Done);
    assert_eq!(order(&term), ["outer", "inner-b"], "{}", term.contents());
    // All done: the next call draws below what is left.
    let mut later = BarSink::new(shared.clone());
    later.start(&info(spec("later", 0)));
    later.finish(&status(Some(10), 10, 0, 1, None), &Outcome::Done);
    assert_eq!(
        order(&term),
        ["outer", "inner-b", "later"],
        "{}",
        term.contents()
    );
}

#[test]
fn colours_never_reach_the_text_and_bad_names_are_ignored() {
    for colour in ["green", "CYAN", "208", "#00ff00", "no-such-colour"] {
        let term = MemoryTerm::new(60, 5);
        let mut bar = BarSink::new(target(&term));
        bar.start(&info(ProgressSpec::default().total(4).colour(colour)));
        sleep(Duration::from_millis(5));
        bar.update(&status(Some(4), 2, 0, 1, Some(1)));
        let cells = bar_line(&term, "50%")
            .split('|')
            .nth(1)
            .unwrap()
            .to_string();
        assert_eq!(
            cells.chars().filter(|c| *c == '█').count() * 2,
            cells.chars().count()
        );
        bar.finish(&status(Some(4), 4, 0, 1, None), &Outcome::Done);
        let line = bar_line(&term, "100%");
        assert!(
            line.ends_with("| 4/4 [00:01, 4.00 tasks/s]"),
            "{colour}: {line}"
        );
    }
}

#[test]
fn plain_lines_at_start_interval_failure_and_end() {
    let term = MemoryTerm::new(200, 30);
    let mut p = PlainSink::with_interval(target(&term), Duration::ZERO);
    p.start(&info(ProgressSpec::default().desc("logs").total(100)));
    p.update(&status(Some(100), 0, 0, 0, None)); // nothing new: no line
    p.update(&status(Some(100), 37, 0, 3, Some(5)));
    p.task_failed("task #40 panicked in worker 1 (args: 40): forty");
    p.update(&status(Some(100), 60, 1, 5, Some(3)));
    p.finish(&status(Some(100), 100, 1, 8, None), &Outcome::Done);
    assert_eq!(
        term.lines(),
        [
            "[logs] 0/100 tasks (0%) started: map on 2 workers",
            "[logs] 37/100 tasks (37%) [00:03<00:05, 12.33 tasks/s]",
            "[logs] ✗ task #40 panicked in worker 1 (args: 40): forty",
            "[logs] 60/100 tasks (60%) [00:05<00:03, 12.00 tasks/s, 1 failed]",
            "[logs] done 100/100 tasks (100%) [00:08, 12.50 tasks/s, 1 failed]",
        ]
    );
}

#[test]
fn plain_lines_respect_the_interval_and_say_how_a_call_ended() {
    let term = MemoryTerm::new(200, 30);
    let mut p = PlainSink::with_interval(target(&term), Duration::from_secs(3600));
    p.start(&info(ProgressSpec::default()));
    for done in 1..50 {
        p.update(&status(None, done, 0, 1, None));
    }
    p.finish(
        &status(None, 50, 1, 1, None),
        &Outcome::Failed("task #50 panicked in worker 0 (args: 50): no".into()),
    );
    assert_eq!(
        term.lines(),
        [
            "[map] 0 tasks started: map on 2 workers",
            "[map] ✗ task #50 panicked in worker 0 (args: 50): no",
            "[map] FAILED at 50 tasks [00:01, 50.00 tasks/s, 1 failed]",
        ]
    );
    let term = MemoryTerm::new(200, 30);
    let mut p = PlainSink::with_interval(target(&term), Duration::from_secs(3600));
    p.start(&info(ProgressSpec::default().desc("cut").total(9)));
    p.finish(&status(Some(9), 4, 0, 2, None), &Outcome::Interrupted);
    assert_eq!(
        term.lines().last().unwrap(),
        "[cut] INTERRUPTED at 4/9 tasks (44%) [00:02, 2.00 tasks/s]"
    );
}

#[test]
fn println_goes_above_the_bars() {
    let term = MemoryTerm::new(80, 10);
    let shared = target(&term);
    pool_progress::with_draw_target(shared.clone(), || {
        pool_progress::println("before any bar");
        let mut bar = BarSink::new(shared.clone());
        bar.start(&info(ProgressSpec::default().desc("p").total(4)));
        bar.update(&status(Some(4), 1, 0, 1, Some(3)));
        pool_progress::println("while drawing");
        let inside = pool_progress::suspend(|| 7);
        assert_eq!(inside, 7);
        bar.finish(&status(Some(4), 4, 0, 1, None), &Outcome::Done);
    });
    let lines = term.lines();
    assert_eq!(lines[0], "before any bar");
    assert_eq!(lines[1], "while drawing");
    assert!(lines[2].starts_with("p: 100%|"), "{lines:?}");
    assert_eq!(lines.len(), 3, "{lines:?}");
}
