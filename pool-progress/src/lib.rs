//! Progress rendering for `pool`: indicatif bars on a terminal, plain log lines elsewhere, and a
//! hook for the dashboard.
//!
//! `pool-core` counts finished *tasks* (not chunks) from per-worker counters and calls a
//! [`ProgressSink`] about 20 times a second; this crate turns that into something to look at:
//!
//! | style ([`ProgressStyle`]) | what is shown |
//! |---|---|
//! | `Std` | a tqdm-like [`BarSink`]: `desc:  37%|████▍      | 37/100 [00:03<00:05, 12.34 tasks/s]`, a spinner and counter when the total is unknown |
//! | `Plain` | a [`PlainSink`] log line at the start, every [`plain_interval`] and at the end |
//! | `Hidden` | nothing (the pool's `StatusHandle` still has the numbers) |
//! | `Dashboard` | only the [hook](set_hook) |
//! | `Auto` | the [default style](set_default_style); if that is `Auto` too: `Std` when stderr is a terminal (and `CI` is not set, and `TERM` is not `dumb`), else `Plain` |
//!
//! Several bars at once (nested pools, [`ProgressSpec::position`](pool_core::ProgressSpec)) share
//! one `indicatif::MultiProgress` per draw target and stack by position; the bars of forked
//! workers are drawn by the process that forked them, on its board (see the `relay` module). Failed tasks are
//! printed above the bars as `✗ label: error`; a call that fails or is interrupted ends its bar
//! with `✗ failed` or `⚠ interrupted`. Bars never hide the cursor, and a finished bar leaves the
//! cursor at the start of the next line.
//!
//! Process-wide settings: [`set_default_style`] (or `POOL_PROGRESS_STYLE=std|plain|none|dashboard`
//! in the environment), [`set_plain_interval`] (or `POOL_PROGRESS_INTERVAL=<seconds>`, default 2),
//! [`set_draw_target`] (stderr by default; [`with_draw_target`] for one thread), and
//! [`set_hook`].
//!
//! To print your own lines while bars are drawn, use [`println()`] (above the bars) or
//! [`suspend`].
//!
//! Tests draw into a [`MemoryTerm`] through [`with_draw_target`] and read the screen:
//!
//! ```
//! use pool_core::{CallInfo, Outcome, ProgressSink, ProgressSpec, Status};
//! use pool_progress::{BarSink, DrawTarget, MemoryTerm};
//! use std::time::Duration;
//!
//! let term = MemoryTerm::new(80, 10);
//! let mut bar = BarSink::new(DrawTarget::term(term.clone()));
//! let info = CallInfo {
//!     call_id: 1, pool_id: 1, method: "map".into(), function: "f".into(),
//!     location: "here".into(), n_jobs: 2, start_method: "threading".into(),
//!     spec: ProgressSpec::default().desc("squares").total(10),
//! };
//! bar.start(&info);
//! let end = Status {
//!     total: Some(10), submitted: 10, running: 0, done: 10, failed: 0,
//!     elapsed: Duration::from_secs(2), rate: 5.0, eta: None, active: false,
//! };
//! bar.finish(&end, &Outcome::Done);
//! assert!(term.contents().starts_with("squares: 100%|"));
//! assert!(term.contents().ends_with("| 10/10 [00:02, 5.00 tasks/s]"));
//! ```

mod bar;
mod board;
mod plain;
mod relay;
mod settings;
mod tee;
mod term;
pub mod text;

pub use bar::BarSink;
pub use plain::PlainSink;
pub use pool_core::{CallInfo, Outcome, ProgressSink, ProgressSpec, ProgressStyle, Status};
pub use settings::{
    DrawTarget, ProgressHook, Resolved, default_style, draw_target, parse_style, plain_interval,
    resolve, set_default_style, set_draw_target, set_hook, set_plain_interval, with_draw_target,
};
pub use tee::Tee;
pub use term::MemoryTerm;

/// Prints `line` above the bars drawn on this thread's [draw target](draw_target), so it does
/// not tear them (plain `eprintln!` while a bar is drawn would); without bars it is written as
/// is.
///
/// In a forked worker of a process that draws bars, the line goes to that process, which
/// prints it above its bars.
pub fn println(line: impl AsRef<str>) {
    let target = draw_target();
    if !relay::println(&target, line.as_ref()) {
        print_above(&target, line.as_ref());
    }
}

fn print_above(target: &DrawTarget, line: &str) {
    match board::active(target) {
        Some(multi) if !multi.is_hidden() => {
            let _ = multi.println(line);
        }
        _ => target.write_line(line),
    }
}

/// Makes the bars of worker processes forked from now on draw here, on this process's board
/// (the `relay`), when this thread's [draw target](draw_target) shows bars. A bar drawn here
/// does the same; call this before forking workers whose calls may draw bars when this
/// process draws none yet (the `pool` facade does, for `StartMethod::Fork` pools).
pub fn prepare_for_forks() {
    let target = draw_target();
    if let Resolved::Bar = resolve(ProgressStyle::Auto, &target) {
        relay::start(&target);
    }
}

/// Runs `f` with the bars of this thread's [draw target](draw_target) hidden, then redraws
/// them: for output of your own (to stdout or stderr) while a call shows progress.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    match board::active(&draw_target()) {
        Some(multi) => multi.suspend(f),
        None => f(),
    }
}

/// The renderer for a call that asked for progress, honouring its style, the global default,
/// the draw target of this thread and the hook. `None` when nothing is to be shown.
pub fn sink_for(info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
    let target = draw_target();
    let resolved = match resolve(info.spec.style, &target) {
        // A forked worker's stderr is a pipe to its parent (which passes it on), not the
        // terminal: its bars are still the parent's to draw when the parent draws bars.
        Resolved::Plain
            if matches!(info.spec.style, ProgressStyle::Auto) && relay::parent_draws(&target) =>
        {
            Resolved::Bar
        }
        r => r,
    };
    let visible: Option<Box<dyn ProgressSink>> = match resolved {
        // In a forked worker, the parent draws the bar (see `relay`).
        Resolved::Bar => match relay::remote_bar(&target) {
            Some(remote) => Some(Box::new(remote)),
            None => {
                relay::start(&target);
                Some(Box::new(BarSink::for_call(target, info)))
            }
        },
        Resolved::Plain => Some(Box::new(PlainSink::for_call(target, info))),
        Resolved::HookOnly | Resolved::Hidden => None,
    };
    let hooked = settings::hook().and_then(|h| h(info));
    match (visible, hooked) {
        (Some(v), Some(h)) => Some(Box::new(Tee::new(vec![v, h]))),
        (v, h) => v.or(h),
    }
}

/// Progress bars (or plain lines when stderr is not a terminal) as the progress piece of a
/// `pool_core::Layers`: threads with bars, no process workers, is
///
/// ```
/// use pool_core::{Layers, MapOptions, RawInsights, Threads, WorkerPool};
/// use pool_progress::Bars;
///
/// type Pool = WorkerPool<(), (), Layers<Threads, Bars, RawInsights>>;
/// let mut pool = Pool::builder().n_jobs(2).build()?;
/// let out = pool.map_with(|x: u64| x + 1, 0..3u64, MapOptions::default().progress_bar(true))?;
/// assert_eq!(out, vec![1, 2, 3]);
/// # Ok::<(), pool_core::PoolError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Bars;

impl pool_core::Progress for Bars {
    fn sink(info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
        sink_for(info)
    }
}

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn public_types_are_thread_safe() {
        assert_send_sync::<crate::MemoryTerm>();
        assert_send_sync::<crate::DrawTarget>();
        assert_send::<crate::BarSink>();
        assert_send::<crate::PlainSink>();
        assert_send::<crate::Tee>();
    }
}
