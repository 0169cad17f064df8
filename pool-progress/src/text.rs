//! The words and numbers both renderers show, computed from a [`Status`] so that a bar and a
//! log line always agree (and tests can predict them).

use std::time::Duration;

use pool_core::{CallInfo, Status};

/// `MM:SS`, or `H:MM:SS` from an hour on (tqdm's clock).
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// `12.34 tasks/s`.
pub fn rate(r: f64, unit: &str) -> String {
    if r >= 100.0 {
        format!("{r:.0} {unit}/s")
    } else {
        format!("{r:.2} {unit}/s")
    }
}

/// `37/100` with a total, `37` without.
pub fn count(s: &Status) -> String {
    match s.total {
        Some(t) => format!("{}/{t}", s.done),
        None => s.done.to_string(),
    }
}

/// `37%`, when the total is known.
pub fn percent(s: &Status) -> Option<String> {
    let t = s.total?;
    let p = (s.done.min(t) * 100).checked_div(t).unwrap_or(100);
    Some(format!("{p}%"))
}

/// `00:03<00:05, 12.34 tasks/s` while running (the ETA only with a total), `00:08, 12.50
/// tasks/s` once `finished`; `, 3 failed` is added when tasks failed.
pub fn timing(s: &Status, unit: &str, finished: bool) -> String {
    let mut out = clock(s.elapsed);
    if !finished && s.total.is_some() {
        out.push('<');
        match s.eta {
            Some(eta) => out.push_str(&clock(eta)),
            None => out.push('?'),
        }
    }
    out.push_str(", ");
    out.push_str(&rate(s.rate, unit));
    if s.failed > 0 {
        out.push_str(&format!(", {} failed", s.failed));
    }
    out
}

/// The call's label: its description, else the method's name.
pub fn label(info: &CallInfo) -> String {
    info.spec
        .desc
        .clone()
        .unwrap_or_else(|| info.method.clone())
}

/// The first line of an error message (backtraces stay in the returned error).
pub fn first_line(msg: &str) -> &str {
    msg.lines().next().unwrap_or("")
}

/// How many failure lines are shown before they are only counted.
pub const MAX_FAILURE_LINES: u64 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks() {
        assert_eq!(clock(Duration::from_millis(3_900)), "00:03");
        assert_eq!(clock(Duration::from_secs(61)), "01:01");
        assert_eq!(clock(Duration::from_secs(3_725)), "1:02:05");
        assert_eq!(rate(12.345, "tasks"), "12.35 tasks/s");
        assert_eq!(rate(1234.4, "it"), "1234 it/s");
    }
}
