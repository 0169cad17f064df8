//! One `MultiProgress` per draw target, shared by every bar drawn there, so that several bars
//! (nested pools, concurrent calls) stack by their `position` instead of overwriting each other.
//!
//! Bars are kept in position order. A bar that finishes stays on screen until another bar
//! takes its position (the next inner pool of the same worker) or every bar of the target has
//! finished; then the board is dropped and the finished lines stay in the scrollback, so the
//! next call draws below them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

use crate::settings::DrawTarget;

struct Entry {
    id: u64,
    position: usize,
    bar: ProgressBar,
    active: bool,
}

struct Board {
    key: usize,
    target: DrawTarget,
    multi: MultiProgress,
    entries: Vec<Entry>,
}

static BOARDS: Mutex<Vec<Board>> = Mutex::new(Vec::new());
static IDS: AtomicU64 = AtomicU64::new(1);

fn draw_target(t: &DrawTarget) -> ProgressDrawTarget {
    match t {
        DrawTarget::Stderr => ProgressDrawTarget::stderr(),
        DrawTarget::Term { term, hz } => {
            ProgressDrawTarget::term_like_with_hz(Box::new(Shared(term.clone())), *hz)
        }
    }
}

#[derive(Debug)]
struct Shared(std::sync::Arc<dyn indicatif::TermLike>);

impl indicatif::TermLike for Shared {
    fn width(&self) -> u16 {
        self.0.width()
    }
    fn height(&self) -> u16 {
        self.0.height()
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A bar's place on its board.
#[derive(Debug)]
pub(crate) struct Slot {
    key: usize,
    id: u64,
    multi: MultiProgress,
}

impl Slot {
    /// Prints a line above every bar of the board.
    pub(crate) fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

/// Puts `bar` on the board of `target` at `position`.
pub(crate) fn attach(
    target: &DrawTarget,
    position: usize,
    bar: ProgressBar,
) -> (ProgressBar, Slot) {
    let key = target.key();
    let mut boards = BOARDS.lock().unwrap_or_else(|e| e.into_inner());
    let i = match boards.iter().position(|b| b.key == key) {
        Some(i) => i,
        None => {
            boards.push(Board {
                key,
                target: target.clone(),
                multi: MultiProgress::with_draw_target(draw_target(target)),
                entries: Vec::new(),
            });
            boards.len() - 1
        }
    };
    let board = &mut boards[i];
    // A finished bar at the same position gives its line to the new one.
    if let Some(j) = board
        .entries
        .iter()
        .position(|e| e.position == position && !e.active)
    {
        let old = board.entries.remove(j);
        board.multi.remove(&old.bar);
    }
    let index = board
        .entries
        .iter()
        .filter(|e| e.position <= position)
        .count();
    let bar = board.multi.insert(index, bar);
    let id = IDS.fetch_add(1, Ordering::Relaxed);
    board.entries.insert(
        index,
        Entry {
            id,
            position,
            bar: bar.clone(),
            active: true,
        },
    );
    let slot = Slot {
        key,
        id,
        multi: board.multi.clone(),
    };
    (bar, slot)
}

/// The bar of `slot` finished (and drew its last state): forget the board once all its bars
/// have.
pub(crate) fn detach(slot: &Slot) {
    let mut boards = BOARDS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(i) = boards.iter().position(|b| b.key == slot.key) else {
        return;
    };
    let board = &mut boards[i];
    if let Some(e) = board.entries.iter_mut().find(|e| e.id == slot.id) {
        e.active = false;
    }
    if board.entries.iter().all(|e| !e.active) {
        let board = boards.remove(i);
        if !board.multi.is_hidden() {
            end_line(&board.target);
        }
    }
}

/// Bars end padded to the last column, where a terminal leaves the cursor waiting to wrap;
/// `\r\n` moves it to the start of the next line without a blank line, so what follows
/// starts on a line of its own (and is not taken for a continuation of the bar).
fn end_line(target: &DrawTarget) {
    match target {
        DrawTarget::Stderr => {
            let _ = console::Term::stderr().write_str("\r\n");
        }
        DrawTarget::Term { term, .. } => {
            let _ = term.write_str("\r\n");
            let _ = term.flush();
        }
    }
}

/// The `MultiProgress` drawing bars on `target` now, if any.
pub(crate) fn active(target: &DrawTarget) -> Option<MultiProgress> {
    let key = target.key();
    let boards = BOARDS.lock().unwrap_or_else(|e| e.into_inner());
    boards
        .iter()
        .find(|b| b.key == key)
        .map(|b| b.multi.clone())
}
