//! What forked workers draw reaches the caller's screen before the call that ran them returns,
//! whether or not that call shows a bar of its own.

use std::io;
use std::time::Duration;

use indicatif::TermLike;
use pool::{DrawTarget, MemoryTerm, StartMethod, WorkerPool};

/// A terminal that takes its time over each line (a slow link, a busy emulator): what workers
/// send then queues up in the caller's relay.
#[derive(Debug)]
struct SlowTerm(MemoryTerm);

impl TermLike for SlowTerm {
    fn width(&self) -> u16 {
        self.0.width()
    }
    fn height(&self) -> u16 {
        self.0.height()
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, line: &str) -> io::Result<()> {
        std::thread::sleep(Duration::from_micros(200));
        self.0.write_line(line)
    }
    fn write_str(&self, text: &str) -> io::Result<()> {
        self.0.write_str(text)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Each task prints many lines with `pool::println` from a forked worker; the caller's relay
/// draws them on a slow terminal, so they queue up. The call shows no bar, so nothing of its own waits for the relay: when `map`
/// returns, the last line of every task must be on the screen already (a line printed after
/// the call would otherwise land below the caller's own output, as a blank line did below
/// `examples/nested_bars`' sums).
#[test]
fn lines_of_forked_workers_are_drawn_before_the_call_returns() {
    let term = MemoryTerm::new(100, 20);
    // Process-wide: forked workers inherit it (no other test of this binary draws in-process).
    pool::set_draw_target(DrawTarget::term(SlowTerm(term.clone())));
    let mut pool = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Fork)
        .build()
        .expect("a pool");
    const LINES: u32 = 200;
    for round in 0..3 {
        let tasks = pool
            .map(
                move |task: u32| {
                    for line in 0..LINES {
                        pool::println(format!("round {round} task {task} line {line}"));
                    }
                    task
                },
                0..4u32,
            )
            .expect("the map");
        let screen = term.contents();
        for task in tasks {
            let last = format!("round {round} task {task} line {}", LINES - 1);
            assert!(
                screen.lines().any(|l| l == last),
                "{last:?} is not on the screen when the call returns; the screen ends:\n{}",
                tail(&screen, 5)
            );
        }
    }
}

fn tail(screen: &str, n: usize) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
