//! [`BarSink`]: a tqdm-like indicatif bar.
//!
//! ```text
//! squares:  37%|███████████▏                  | 37/100 [00:03<00:05, 12.34 tasks/s]
//! ```
//! With no total it is a spinner with a counter: `⠹ 37 tasks [00:03, 12.34 tasks/s]`.
//! A failed task prints `✗ <label>: <error>` above the bars; a call that stops shows
//! `✗ failed` (or `⚠ interrupted`) at the end of its bar, which stays on screen.

use indicatif::{ProgressBar, ProgressStyle as BarStyle};
use pool_core::{CallInfo, Outcome, ProgressSink, Status};

use crate::board::{self, Slot};
use crate::settings::DrawTarget;
use crate::text;

const COLOURS: [&str; 8] = [
    "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
];
const SPINNER: [&str; 11] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", " "];

/// Draws a call's progress as an indicatif bar on a shared `MultiProgress`.
#[derive(Debug)]
pub struct BarSink {
    target: DrawTarget,
    bar: Option<(ProgressBar, Slot)>,
    label: Option<String>,
    unit: String,
    failures_shown: u64,
    last_failure: Option<String>,
    spinner: bool,
    planned_total: Option<u64>,
}

/// `green` → `:.green` (a template key's style); anything indicatif would not understand is
/// ignored.
fn colour_suffix(colour: Option<&str>) -> String {
    match colour.map(|c| c.trim().to_ascii_lowercase()) {
        Some(c) if COLOURS.contains(&c.as_str()) || c.parse::<u8>().is_ok() => format!(":.{c}"),
        _ => String::new(),
    }
}

fn bar_style(colour: &str) -> BarStyle {
    BarStyle::with_template(&format!(
        "{{prefix}}{{percent:>3}}%|{{wide_bar{colour}}}| {{msg}}"
    ))
    .expect("the bar template is valid")
    .progress_chars("█▉▊▋▌▍▎▏  ")
}

fn spinner_style(colour: &str) -> BarStyle {
    BarStyle::with_template(&format!("{{prefix}}{{spinner{colour}}} {{msg}}"))
        .expect("the spinner template is valid")
        .tick_strings(&SPINNER)
}

fn text_style() -> BarStyle {
    BarStyle::with_template("{prefix}{msg}").expect("the text template is valid")
}

impl BarSink {
    /// A bar drawn to `target` (see [`crate::draw_target`]).
    pub fn new(target: DrawTarget) -> Self {
        BarSink {
            target,
            bar: None,
            label: None,
            unit: "tasks".into(),
            failures_shown: 0,
            last_failure: None,
            spinner: false,
            planned_total: None,
        }
    }

    /// A bar drawn to `target` for the call `info` describes: its total is used when the
    /// `start` event does not carry one.
    pub fn for_call(target: DrawTarget, info: &CallInfo) -> Self {
        let mut sink = Self::new(target);
        sink.planned_total = info.spec.total;
        sink
    }

    fn message(&self, s: &Status, finished: bool) -> String {
        let counted = match s.total {
            Some(_) if !self.spinner => text::count(s),
            _ => format!("{} {}", s.done, self.unit),
        };
        format!("{counted} [{}]", text::timing(s, &self.unit, finished))
    }

    fn print_failure(&mut self, msg: &str) {
        let line = text::first_line(msg).to_string();
        if self.last_failure.as_deref() == Some(line.as_str()) {
            return;
        }
        self.failures_shown += 1;
        let label = self.label.as_deref().unwrap_or("task failed");
        if self.failures_shown <= text::MAX_FAILURE_LINES
            && let Some((_, slot)) = &self.bar
        {
            slot.println(&format!("✗ {label}: {line}"));
        }
        self.last_failure = Some(line);
    }
}

impl ProgressSink for BarSink {
    fn start(&mut self, info: &CallInfo) {
        let mut spec = info.spec.clone();
        spec.total = spec.total.or(self.planned_total);
        let colour = colour_suffix(spec.colour.as_deref());
        let bar = match spec.total {
            Some(_) => ProgressBar::hidden().with_style(bar_style(&colour)),
            None => ProgressBar::hidden().with_style(spinner_style(&colour)),
        };
        if let Some(t) = spec.total {
            bar.set_length(t);
        }
        if let Some(d) = &spec.desc {
            bar.set_prefix(format!("{d}: "));
        }
        self.label = Some(text::label(info));
        self.unit = spec.unit.clone();
        self.spinner = spec.total.is_none();
        let (bar, slot) = board::attach(&self.target, spec.position, bar);
        let status = Status {
            total: spec.total,
            submitted: 0,
            running: 0,
            done: 0,
            failed: 0,
            elapsed: std::time::Duration::ZERO,
            rate: 0.0,
            eta: None,
            active: true,
        };
        bar.set_message(self.message(&status, false));
        self.bar = Some((bar, slot));
    }

    fn update(&mut self, s: &Status) {
        let msg = self.message(s, false);
        let Some((bar, _)) = &self.bar else { return };
        if !self.spinner {
            bar.set_length(s.total.unwrap_or(s.done).max(s.done));
        }
        bar.set_message(msg);
        bar.set_position(s.done);
    }

    fn task_failed(&mut self, message: &str) {
        self.print_failure(message);
    }

    fn finish(&mut self, s: &Status, outcome: &Outcome) {
        // Bars of forked workers that ended before this one are drawn first.
        crate::relay::settle();
        let mut msg = self.message(s, true);
        match outcome {
            Outcome::Done => {
                if self.failures_shown > text::MAX_FAILURE_LINES
                    && let Some((_, slot)) = &self.bar
                {
                    let more = self.failures_shown - text::MAX_FAILURE_LINES;
                    slot.println(&format!("✗ ... and {more} more failed tasks"));
                }
            }
            Outcome::Failed(e) => {
                self.print_failure(e);
                msg.push_str(" ✗ failed");
            }
            Outcome::Interrupted => msg.push_str(" ⚠ interrupted"),
        }
        let Some((bar, slot)) = self.bar.take() else {
            return;
        };
        if self.spinner {
            bar.set_style(text_style());
        } else {
            bar.set_length(s.total.unwrap_or(s.done).max(s.done));
        }
        bar.set_position(s.done);
        bar.set_message(msg);
        match outcome {
            Outcome::Done => bar.finish(),
            _ => bar.abandon(),
        }
        board::detach(&slot);
    }
}

impl Drop for BarSink {
    fn drop(&mut self) {
        // A sink dropped without `finish` (a panic in the driving thread) still frees its line.
        if let Some((bar, slot)) = self.bar.take() {
            bar.abandon();
            board::detach(&slot);
        }
    }
}
