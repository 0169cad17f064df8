//! [`PlainSink`]: one log line per interval, for logs and CI where a redrawn bar would be noise.
//!
//! ```text
//! [squares] 0/100 tasks (0%) started: map on 4 workers
//! [squares] 37/100 tasks (37%) [00:03<00:05, 12.34 tasks/s]
//! [squares] ✗ task #7 panicked in worker 1 (args: 7): seven
//! [squares] done 100/100 tasks (100%) [00:08, 12.50 tasks/s, 1 failed]
//! ```

use std::time::{Duration, Instant};

use pool_core::{CallInfo, Outcome, ProgressSink, ProgressSpec, Status};

use crate::settings::{DrawTarget, plain_interval};
use crate::text;

/// Writes a call's progress as plain lines: one at the start, one per interval while tasks
/// finish, one per failure (the first few), one at the end.
#[derive(Debug)]
pub struct PlainSink {
    target: DrawTarget,
    every: Duration,
    last: Option<Instant>,
    last_done: u64,
    label: String,
    unit: String,
    failures: u64,
    last_failure: Option<String>,
    planned_total: Option<u64>,
}

impl PlainSink {
    /// Lines to `target`, at the interval of [`crate::plain_interval`].
    pub fn new(target: DrawTarget) -> Self {
        Self::with_interval(target, plain_interval())
    }

    /// Lines to `target`, at most one per `every` while running.
    pub fn with_interval(target: DrawTarget, every: Duration) -> Self {
        PlainSink {
            target,
            every,
            last: None,
            last_done: 0,
            label: String::new(),
            unit: "tasks".into(),
            failures: 0,
            last_failure: None,
            planned_total: None,
        }
    }

    /// Lines to `target` for the call `info` describes: its total is used when the `start`
    /// event does not carry one.
    pub fn for_call(target: DrawTarget, info: &CallInfo) -> Self {
        PlainSink {
            planned_total: info.spec.total,
            ..Self::new(target)
        }
    }

    fn counted(&self, s: &Status) -> String {
        match text::percent(s) {
            Some(p) => format!("{} {} ({p})", text::count(s), self.unit),
            None => format!("{} {}", text::count(s), self.unit),
        }
    }

    fn line(&self, body: &str) {
        self.target.write_line(&format!("[{}] {body}", self.label));
    }

    fn failure(&mut self, msg: &str) {
        let line = text::first_line(msg).to_string();
        if self.last_failure.as_deref() == Some(line.as_str()) {
            return;
        }
        self.failures += 1;
        if self.failures <= text::MAX_FAILURE_LINES {
            self.line(&format!("✗ {line}"));
        }
        self.last_failure = Some(line);
    }
}

impl ProgressSink for PlainSink {
    fn start(&mut self, info: &CallInfo) {
        self.label = text::label(info);
        self.unit = info.spec.unit.clone();
        let total = match info.spec.total.or(self.planned_total) {
            Some(t) => format!("0/{t} {} (0%)", self.unit),
            None => format!("0 {}", self.unit),
        };
        // A caller that names its unit (a command runner's "jobs") is told in its own words.
        let how = if self.unit == ProgressSpec::default().unit {
            format!("{} on {} workers", info.method, info.n_jobs)
        } else {
            format!("{} {} at a time", info.n_jobs, self.unit)
        };
        self.line(&format!("{total} started: {how}"));
        self.last = Some(Instant::now());
    }

    fn update(&mut self, s: &Status) {
        let due = self.last.is_none_or(|t| t.elapsed() >= self.every);
        if !due || s.done == self.last_done {
            return;
        }
        self.last = Some(Instant::now());
        self.last_done = s.done;
        self.line(&format!(
            "{} [{}]",
            self.counted(s),
            text::timing(s, &self.unit, false)
        ));
    }

    fn task_failed(&mut self, message: &str) {
        self.failure(message);
    }

    fn finish(&mut self, s: &Status, outcome: &Outcome) {
        let what = match outcome {
            Outcome::Done => "done",
            Outcome::Failed(e) => {
                self.failure(e);
                "FAILED at"
            }
            Outcome::Interrupted => "INTERRUPTED at",
        };
        if self.failures > text::MAX_FAILURE_LINES {
            let more = self.failures - text::MAX_FAILURE_LINES;
            self.line(&format!("✗ ... and {more} more failed tasks"));
        }
        self.line(&format!(
            "{what} {} [{}]",
            self.counted(s),
            text::timing(s, &self.unit, true)
        ));
    }
}
