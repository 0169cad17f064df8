//! [`MemoryTerm`]: an in-memory terminal that progress bars can be drawn into, so tests (and the
//! dashboard) can read exactly what a user would see.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use indicatif::TermLike;

/// A terminal screen in memory: a grid of characters with a cursor, fed through indicatif's
/// [`TermLike`]. Escape codes (colours) are dropped; lines scroll off the top into the history,
/// and a line filled to the last column wraps lazily, as real terminals do.
///
/// Clones share the same screen.
///
/// ```
/// use indicatif::TermLike;
/// use pool_progress::MemoryTerm;
///
/// let term = MemoryTerm::new(20, 5);
/// term.write_line("hello").unwrap();
/// term.write_str("world").unwrap();
/// term.clear_line().unwrap();
/// term.write_str("there").unwrap();
/// assert_eq!(term.contents(), "hello\nthere");
/// ```
#[derive(Clone)]
pub struct MemoryTerm {
    screen: Arc<Mutex<Screen>>,
}

struct Screen {
    width: u16,
    height: u16,
    /// Lines that scrolled off the top.
    history: Vec<String>,
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    /// Everything written, in order, escape codes removed (for debugging tests).
    log: String,
}

impl MemoryTerm {
    /// A blank screen of `width` columns and `height` rows.
    pub fn new(width: u16, height: u16) -> Self {
        assert!(
            width > 0 && height > 0,
            "a terminal needs at least one cell"
        );
        MemoryTerm {
            screen: Arc::new(Mutex::new(Screen {
                width,
                height,
                history: Vec::new(),
                rows: vec![Vec::new(); height as usize],
                row: 0,
                col: 0,
                log: String::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Screen> {
        self.screen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the screen shows now: the scrolled-off history and the visible rows, trailing spaces
    /// and trailing blank lines removed.
    pub fn contents(&self) -> String {
        let s = self.lock();
        let mut lines: Vec<String> = s.history.clone();
        lines.extend(
            s.rows
                .iter()
                .map(|r| r.iter().collect::<String>().trim_end().to_string()),
        );
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines.join("\n")
    }

    /// The non-empty lines of [`Self::contents`].
    pub fn lines(&self) -> Vec<String> {
        self.contents()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The cursor: (row, column) on the visible screen.
    pub fn cursor(&self) -> (usize, usize) {
        let s = self.lock();
        (s.row, s.col)
    }

    /// Everything ever written, escape codes removed.
    pub fn log(&self) -> String {
        self.lock().log.clone()
    }
}

impl Screen {
    fn newline(&mut self) {
        self.col = 0;
        if self.row + 1 < self.height as usize {
            self.row += 1;
        } else {
            let top = self.rows.remove(0);
            self.history
                .push(top.iter().collect::<String>().trim_end().to_string());
            self.rows.push(Vec::new());
        }
    }

    fn put(&mut self, c: char) {
        match c {
            '\n' => self.newline(),
            '\r' => self.col = 0,
            c if c.is_control() => {}
            c => {
                if self.col >= self.width as usize {
                    self.newline();
                }
                let row = &mut self.rows[self.row];
                if row.len() <= self.col {
                    row.resize(self.col + 1, ' ');
                }
                row[self.col] = c;
                self.col += 1;
            }
        }
    }

    fn write(&mut self, s: &str) {
        let plain = console::strip_ansi_codes(s);
        self.log.push_str(&plain);
        for c in plain.chars() {
            self.put(c);
        }
    }
}

impl fmt::Debug for MemoryTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("MemoryTerm")
            .field("width", &s.width)
            .field("height", &s.height)
            .field("cursor", &(s.row, s.col))
            .finish_non_exhaustive()
    }
}

impl TermLike for MemoryTerm {
    fn width(&self) -> u16 {
        self.lock().width
    }

    fn height(&self) -> u16 {
        self.lock().height
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        let mut s = self.lock();
        s.row = s.row.saturating_sub(n);
        s.col = s.col.min(s.width as usize - 1);
        Ok(())
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        let mut s = self.lock();
        s.row = (s.row + n).min(s.height as usize - 1);
        s.col = s.col.min(s.width as usize - 1);
        Ok(())
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        let mut s = self.lock();
        s.col = (s.col + n).min(s.width as usize - 1);
        Ok(())
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        let mut s = self.lock();
        s.col = s.col.saturating_sub(n);
        Ok(())
    }

    fn write_line(&self, line: &str) -> io::Result<()> {
        let mut s = self.lock();
        s.write(line);
        s.write("\n");
        Ok(())
    }

    fn write_str(&self, text: &str) -> io::Result<()> {
        self.lock().write(text);
        Ok(())
    }

    fn clear_line(&self) -> io::Result<()> {
        let mut s = self.lock();
        let r = s.row;
        s.rows[r].clear();
        s.col = 0;
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}
