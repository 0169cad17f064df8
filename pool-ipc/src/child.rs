//! What every worker does first, between `fork` and its work (or its `exec`).
//!
//! Why: a worker must never outlive its parent (`PR_SET_PDEATHSIG` = `SIGKILL`, then a check that
//! the parent did not die before the `prctl` took effect), and must not inherit the parent's signal
//! set-up (a blocked mask, handlers that would run parent logic such as a Ctrl-C handler).
//! Everything here is async-signal-safe, so it is valid in a child forked from a multi-threaded
//! process and in a `pre_exec` hook.
//!
//! Caveat: the death signal fires when the *thread* that forked exits, not only the process, so
//! start workers from a thread that lives as long as they do (the main thread or a long-lived
//! supervisor thread).

/// How a worker sets up its signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildOptions {
    /// Ignore `SIGINT` in the worker, so a terminal's Ctrl-C (sent to the whole process group)
    /// reaches only the parent, which then shuts workers down in order. Default: true.
    pub ignore_sigint: bool,
}

impl Default for ChildOptions {
    fn default() -> Self {
        Self {
            ignore_sigint: true,
        }
    }
}

const RESET: [i32; 9] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCHLD,
    libc::SIGALRM,
    libc::SIGPIPE,
];

/// Runs in the child right after `fork`. Returns false if the parent `parent` is already gone
/// (then the caller must `_exit` at once). Async-signal-safe.
pub(crate) fn setup_in_child(parent: libc::pid_t, opts: ChildOptions) -> bool {
    // SAFETY: prctl/getppid/sigprocmask/signal are async-signal-safe syscalls with valid args;
    // `set` is a local sigset initialized by sigemptyset before use.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != parent {
            return false;
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in RESET {
            // Keep Rust's SIGPIPE=ignore convention in forked workers (writes return EPIPE).
            let action = if sig == libc::SIGPIPE || (sig == libc::SIGINT && opts.ignore_sigint) {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            libc::signal(sig, action);
        }
    }
    true
}
