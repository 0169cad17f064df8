//! Errors: one [`PoolError`] for every way a pool call can fail.
//!
//! A failure inside a worker (a panic, a timeout, a dead worker process) is a [`Failure`]: it says
//! which phase (task, init, exit), which worker, which task and with which arguments, so that the
//! message alone tells the user where to look.

use std::fmt;
use std::time::Duration;

use crate::worker_trace::WorkerBacktrace;

/// Everything that can go wrong in a pool call.
///
/// Its `Debug` is meant for people, since `fn main() -> Result<(), PoolError>` prints it: the
/// message, the chain of causes, and a worker's backtrace only when `RUST_BACKTRACE` asks for
/// one. [`PoolError::failure`] gives the structured facts.
///
/// ```
/// let mut pool = pool_core::ThreadPool::new(2)?;
/// let err = pool
///     .map(|x: u64| if x == 3 { panic!("three") } else { x }, 0..10u64)
///     .unwrap_err();
/// assert_eq!(err.failure().unwrap().task, Some(3));
/// assert!(format!("{err:?}").starts_with("task #3 panicked in worker"));
/// # Ok::<(), pool_core::PoolError>(())
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A task, worker init or worker exit failed inside a worker.
    #[error("{0}")]
    Failed(Box<Failure>),
    /// The pool's or the call's configuration is invalid; the message says what to fix.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A lazy map (`imap`, `imap_unordered`) of this pool is still running.
    #[error(
        "a map call of this pool is still running: exhaust or drop its iterator before starting another"
    )]
    Busy,
    /// The pool was terminated; its workers are gone.
    #[error("the pool was terminated; remaining tasks and results are lost")]
    Terminated,
    /// `AsyncResult::successful` was asked before the task finished.
    #[error("the task has not finished yet")]
    NotReady,
    /// Waiting for a result took longer than the caller allowed.
    #[error("no result within {0:?}")]
    WaitTimeout(Duration),
    /// The run was interrupted (Ctrl-C / SIGINT / SIGTERM).
    #[error("interrupted")]
    Interrupted,
    /// The worker back end failed (starting a worker, talking to it).
    #[error("{context}: {source}")]
    Backend {
        /// What the pool was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A value could not be serialized or deserialized on its way to or from a worker.
    #[error("{context}: {message}")]
    Serialization {
        /// Which value, for which task.
        context: String,
        /// What the serializer said.
        message: String,
    },
}

impl PoolError {
    /// The worker-side failure, if this error is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            PoolError::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// A back-end error with what the pool was doing.
    pub fn backend(context: impl Into<String>, source: std::io::Error) -> Self {
        PoolError::Backend {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Debug for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_report(f, backtrace_wanted())
    }
}

/// Whether the user asked for backtraces (`RUST_BACKTRACE` set, and not to `0`).
fn backtrace_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
}

impl PoolError {
    /// The human report behind `Debug`: the message, each cause not already in it, and the
    /// worker's backtrace when `backtrace` (else a hint that there is one).
    fn write_report(&self, f: &mut fmt::Formatter<'_>, backtrace: bool) -> fmt::Result {
        let message = self.to_string();
        f.write_str(&message)?;
        let mut source = std::error::Error::source(self);
        let mut first = true;
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                if first {
                    f.write_str("\n\nCaused by:")?;
                    first = false;
                }
                write!(f, "\n    {text}")?;
            }
            source = cause.source();
        }
        if let Some(bt) = self.failure().and_then(|x| x.backtrace.as_ref()) {
            if backtrace {
                write!(f, "\n\nworker backtrace:\n{bt}")?;
            } else {
                f.write_str("\n\n(the worker's backtrace: run with RUST_BACKTRACE=1 to see it)")?;
            }
        }
        Ok(())
    }
}

impl From<Failure> for PoolError {
    fn from(f: Failure) -> Self {
        PoolError::Failed(Box::new(f))
    }
}

impl From<Box<Failure>> for PoolError {
    fn from(f: Box<Failure>) -> Self {
        PoolError::Failed(f)
    }
}

/// Which user function failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    /// The task function.
    Task,
    /// The `worker_init` function.
    Init,
    /// The `worker_exit` function.
    Exit,
}

/// Why it failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Cause {
    /// The function panicked.
    Panic,
    /// The function ran longer than its timeout.
    Timeout(Duration),
    /// The worker process died (signal, exit code, likely OOM: see the message).
    WorkerDied,
    /// An argument or result could not be (de)serialized.
    Serialization,
}

/// A failure inside a worker: where it happened and what the worker said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// Task, init or exit.
    pub phase: Phase,
    /// Why.
    pub cause: Cause,
    /// The worker that ran it (0-based).
    pub worker: usize,
    /// The task's index in its call's input (0-based), for task failures.
    pub task: Option<u64>,
    /// The task's arguments, in their `Debug` form.
    pub args: Option<String>,
    /// The panic message, the timeout, or how the worker died.
    pub message: String,
    /// Where a panicking task or hook was when it panicked: frames recorded in the worker,
    /// symbolized when first shown (`Display`, or `{:#}` of the failure).
    pub backtrace: Option<WorkerBacktrace>,
    /// How many times the task was tried (1 + retries used).
    pub attempts: u32,
    /// Why each earlier attempt failed, oldest first (empty unless the task was retried).
    pub earlier: Vec<String>,
}

impl Failure {
    /// What went wrong, without where: "panicked: boom", "timed out after 1s", "lost its
    /// worker: killed by signal 6 (SIGABRT)" (one entry of [`Failure::earlier`]).
    pub fn reason(&self) -> String {
        format!("{}: {}", self.cause_text(), self.message)
    }

    fn cause_text(&self) -> String {
        match &self.cause {
            Cause::Panic => "panicked".to_string(),
            Cause::Timeout(d) => format!("timed out after {d:?}"),
            Cause::WorkerDied => "lost its worker".to_string(),
            Cause::Serialization => "could not be serialized".to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.phase {
            Phase::Task => match self.task {
                Some(t) => format!("task #{t}"),
                None => "task".to_string(),
            },
            Phase::Init => "worker_init".to_string(),
            Phase::Exit => "worker_exit".to_string(),
        };
        write!(f, "{what} {} in worker {}", self.cause_text(), self.worker)?;
        if let Some(args) = &self.args {
            write!(f, " (args: {args})")?;
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        write!(f, ": {}", self.message)?;
        for (i, why) in self.earlier.iter().enumerate() {
            write!(f, "; attempt {} {why}", i + 1)?;
        }
        // The worker's backtrace is long: shown with `{:#}` only.
        if let (true, Some(bt)) = (f.alternate(), &self.backtrace) {
            write!(f, "\nworker backtrace:\n{bt}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    struct Report<'a>(&'a PoolError, bool);

    impl fmt::Display for Report<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.write_report(f, self.1)
        }
    }

    fn panicked_task() -> PoolError {
        PoolError::from(Failure {
            phase: Phase::Task,
            cause: Cause::Panic,
            worker: 1,
            task: Some(7),
            args: Some("7".into()),
            message: "boom".into(),
            backtrace: Some(crate::worker_trace::WorkerBacktrace::capture()),
            attempts: 1,
            earlier: Vec::new(),
        })
    }

    #[test]
    fn debug_of_a_panicked_task_is_its_message_without_the_backtrace() {
        let err = panicked_task();
        let text = Report(&err, false).to_string();
        assert_eq!(
            text,
            "task #7 panicked in worker 1 (args: 7): boom\n\n\
             (the worker's backtrace: run with RUST_BACKTRACE=1 to see it)"
        );
    }

    #[test]
    fn debug_shows_the_backtrace_when_asked() {
        let err = panicked_task();
        let text = Report(&err, true).to_string();
        let head = "task #7 panicked in worker 1 (args: 7): boom\n\nworker backtrace:\n";
        assert!(text.starts_with(head), "{text}");
        assert!(text.len() > head.len(), "no frames shown: {text}");
    }

    #[test]
    fn debug_lists_causes_not_already_in_the_message() {
        #[derive(Debug)]
        struct CannotMap(std::io::Error);
        impl fmt::Display for CannotMap {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("cannot map the link")
            }
        }
        impl std::error::Error for CannotMap {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let root = std::io::Error::other("no space left in /dev/shm");
        let err = PoolError::backend("starting worker 2", std::io::Error::other(CannotMap(root)));
        // io::Error shows its inner error, which the message already holds: not repeated.
        assert_eq!(
            Report(&err, false).to_string(),
            "starting worker 2: cannot map the link\n\nCaused by:\n    no space left in /dev/shm"
        );
    }
}
