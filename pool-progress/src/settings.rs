//! Process-wide settings: the default style, where output goes, the plain-mode interval and the
//! hook that receives every call's progress (the dashboard's seam).
//!
//! Each can be set from code; the style and interval can also be set from the environment
//! (`POOL_PROGRESS_STYLE`, `POOL_PROGRESS_INTERVAL`), read once, the first time they are needed.

use std::cell::RefCell;
use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use indicatif::TermLike;
use pool_core::{CallInfo, ProgressSink, ProgressStyle};

/// Where progress is drawn.
#[derive(Clone, Default)]
pub enum DrawTarget {
    /// The process's standard error (the default).
    #[default]
    Stderr,
    /// A terminal-like object, such as a [`crate::MemoryTerm`] in tests. Bars are drawn into it
    /// at most `hz` times a second; plain lines are written to it with `write_line`.
    Term {
        /// The terminal.
        term: Arc<dyn TermLike>,
        /// The highest redraw rate.
        hz: u8,
    },
}

impl DrawTarget {
    /// A terminal-like target with the usual 20 Hz redraw limit.
    pub fn term(term: impl TermLike + 'static) -> Self {
        DrawTarget::Term {
            term: Arc::new(term),
            hz: 20,
        }
    }

    /// An identity for sharing one `MultiProgress` per target.
    pub(crate) fn key(&self) -> usize {
        match self {
            DrawTarget::Stderr => 0,
            DrawTarget::Term { term, .. } => Arc::as_ptr(term) as *const () as usize,
        }
    }

    /// Whether `Auto` should draw a bar (a terminal, not CI, not `TERM=dumb`) here.
    pub(crate) fn wants_bar(&self) -> bool {
        match self {
            DrawTarget::Term { .. } => true,
            DrawTarget::Stderr => {
                std::io::stderr().is_terminal()
                    && std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false")
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        }
    }

    /// Writes one whole line (plain mode, messages).
    pub(crate) fn write_line(&self, line: &str) {
        match self {
            DrawTarget::Stderr => {
                use std::io::Write;
                // One write: lines from several worker processes sharing stderr do not mix.
                let mut text = String::with_capacity(line.len() + 1);
                text.push_str(line);
                text.push('\n');
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
            DrawTarget::Term { term, .. } => {
                let _ = term.write_line(line);
                let _ = term.flush();
            }
        }
    }
}

impl fmt::Debug for DrawTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DrawTarget::Stderr => f.write_str("Stderr"),
            DrawTarget::Term { term, hz } => f
                .debug_struct("Term")
                .field("term", term)
                .field("hz", hz)
                .finish(),
        }
    }
}

/// Makes the sink that receives every call's progress besides (or, under
/// [`ProgressStyle::Dashboard`], instead of) the terminal; `None` to skip a call.
pub type ProgressHook = Arc<dyn Fn(&CallInfo) -> Option<Box<dyn ProgressSink>> + Send + Sync>;

const UNSET: u8 = u8::MAX;
static DEFAULT_STYLE: AtomicU8 = AtomicU8::new(UNSET);
static INTERVAL_MS: AtomicU64 = AtomicU64::new(u64::MAX);
static TARGET: RwLock<Option<DrawTarget>> = RwLock::new(None);
static HOOK: RwLock<Option<ProgressHook>> = RwLock::new(None);

thread_local! {
    static LOCAL_TARGET: RefCell<Option<DrawTarget>> = const { RefCell::new(None) };
}

fn encode(s: ProgressStyle) -> u8 {
    match s {
        ProgressStyle::Auto => 0,
        ProgressStyle::Std => 1,
        ProgressStyle::Plain => 2,
        ProgressStyle::Dashboard => 3,
        ProgressStyle::Hidden => 4,
    }
}

fn decode(v: u8) -> ProgressStyle {
    match v {
        1 => ProgressStyle::Std,
        2 => ProgressStyle::Plain,
        3 => ProgressStyle::Dashboard,
        4 => ProgressStyle::Hidden,
        _ => ProgressStyle::Auto,
    }
}

/// Parses a style name: `auto`, `std` (or `bar`), `plain` (or `log`), `dashboard`, `none` (or
/// `hidden`, `off`). Case is ignored.
pub fn parse_style(name: &str) -> Option<ProgressStyle> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "auto" | "" => ProgressStyle::Auto,
        "std" | "bar" | "tqdm" => ProgressStyle::Std,
        "plain" | "log" | "text" => ProgressStyle::Plain,
        "dashboard" => ProgressStyle::Dashboard,
        "none" | "hidden" | "off" => ProgressStyle::Hidden,
        _ => return None,
    })
}

/// Sets the style used by calls whose [`pool_core::ProgressSpec`] says
/// [`ProgressStyle::Auto`] (MPIRE's `PROGRESS_BAR_DEFAULT_STYLE`). `Auto` restores the default:
/// a bar on a terminal, plain lines otherwise.
pub fn set_default_style(style: ProgressStyle) {
    DEFAULT_STYLE.store(encode(style), Ordering::Relaxed);
}

/// The default style: what [`set_default_style`] set, else `POOL_PROGRESS_STYLE` from the
/// environment, else `Auto`.
pub fn default_style() -> ProgressStyle {
    match DEFAULT_STYLE.load(Ordering::Relaxed) {
        UNSET => {
            let s = std::env::var("POOL_PROGRESS_STYLE")
                .ok()
                .and_then(|v| parse_style(&v))
                .unwrap_or(ProgressStyle::Auto);
            let _ = DEFAULT_STYLE.compare_exchange(
                UNSET,
                encode(s),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            decode(DEFAULT_STYLE.load(Ordering::Relaxed))
        }
        v => decode(v),
    }
}

/// Sets how often plain mode writes a line (at least 10 ms). Default: 2 s, or
/// `POOL_PROGRESS_INTERVAL` seconds from the environment.
pub fn set_plain_interval(every: Duration) {
    let ms = (every.as_millis() as u64).max(10);
    INTERVAL_MS.store(ms, Ordering::Relaxed);
}

/// How often plain mode writes a line.
pub fn plain_interval() -> Duration {
    let ms = match INTERVAL_MS.load(Ordering::Relaxed) {
        u64::MAX => {
            let ms = std::env::var("POOL_PROGRESS_INTERVAL")
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .map_or(2000, |s| ((s * 1000.0) as u64).max(10));
            INTERVAL_MS.store(ms, Ordering::Relaxed);
            ms
        }
        ms => ms,
    };
    Duration::from_millis(ms)
}

/// Sets where progress is drawn, for the whole process (`Stderr` by default).
pub fn set_draw_target(target: DrawTarget) {
    *TARGET.write().unwrap_or_else(|e| e.into_inner()) = Some(target);
}

/// Runs `f` with progress of calls started on this thread drawn to `target` (tests inject an
/// in-memory terminal this way without disturbing other threads).
pub fn with_draw_target<R>(target: DrawTarget, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<DrawTarget>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let old = self.0.take();
            LOCAL_TARGET.with(|t| *t.borrow_mut() = old);
        }
    }
    let old = LOCAL_TARGET.with(|t| t.borrow_mut().replace(target));
    let _restore = Restore(old);
    f()
}

/// Where progress of a call started on this thread goes now.
pub fn draw_target() -> DrawTarget {
    if let Some(t) = LOCAL_TARGET.with(|t| t.borrow().clone()) {
        return t;
    }
    TARGET
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// Installs the hook that receives every call's progress (the dashboard uses it); `None`
/// removes it.
pub fn set_hook(hook: Option<ProgressHook>) {
    *HOOK.write().unwrap_or_else(|e| e.into_inner()) = hook;
}

pub(crate) fn hook() -> Option<ProgressHook> {
    HOOK.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// What a style turns into on a given target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// An indicatif bar.
    Bar,
    /// Log lines.
    Plain,
    /// Only the hook.
    HookOnly,
    /// Nothing visible.
    Hidden,
}

/// Resolves a call's style: `Auto` becomes the default style, and an `Auto` default becomes a
/// bar on a terminal and plain lines elsewhere.
pub fn resolve(style: ProgressStyle, target: &DrawTarget) -> Resolved {
    let style = match style {
        ProgressStyle::Auto => default_style(),
        s => s,
    };
    match style {
        ProgressStyle::Auto if target.wants_bar() => Resolved::Bar,
        ProgressStyle::Auto => Resolved::Plain,
        ProgressStyle::Std => Resolved::Bar,
        ProgressStyle::Plain => Resolved::Plain,
        ProgressStyle::Dashboard => Resolved::HookOnly,
        ProgressStyle::Hidden => Resolved::Hidden,
    }
}
