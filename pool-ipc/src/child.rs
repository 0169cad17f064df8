//! What every worker does first, between `fork` and its work (or its `exec`).
//!
//! Why: a worker must never outlive its parent (`PR_SET_PDEATHSIG` = `SIGKILL`, then a check that
//! the parent did not die before the `prctl` took effect), and must not inherit the parent's signal
//! set-up (a blocked mask, handlers that would run parent logic such as a Ctrl-C handler).
//! Everything here is async-signal-safe, so it is valid in a child forked from a multi-threaded
//! process and in a `pre_exec` hook.
//!
//! A spawned worker is started by `posix_spawn` (a `vfork`-like clone: nothing of the parent's
//! memory is copied, so its start does not grow with the parent's size), where no code of ours
//! runs before the `exec`: the spawn resets its signal mask and dispositions
//! (`spawn_signals`), and the worker does the rest itself, first thing after the `exec`
//! (`setup_after_exec`).
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

/// Whether a worker ignores `sig` (of [`RESET`]); the others go back to their default. Rust's
/// SIGPIPE=ignore convention is kept (writes return EPIPE).
fn ignored(sig: i32, opts: ChildOptions) -> bool {
    sig == libc::SIGPIPE || (sig == libc::SIGINT && opts.ignore_sigint)
}

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
            let action = if ignored(sig, opts) {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            libc::signal(sig, action);
        }
    }
    true
}

/// For `posix_spawn`: the signal mask a spawned worker starts with and the signals it gets
/// back at their default disposition, as [`setup_in_child`] leaves a forked one. `SIGINT`
/// stays blocked when it is to be ignored, so a Ctrl-C before the worker's own
/// [`setup_after_exec`] waits there (and is then discarded) instead of killing it. `SIGPIPE`
/// keeps the parent's disposition (Rust ignores it).
pub(crate) fn spawn_signals(
    opts: ChildOptions,
) -> (nix::sys::signal::SigSet, nix::sys::signal::SigSet) {
    use nix::sys::signal::{SigSet, Signal};
    let mut mask = SigSet::empty();
    let mut defaults = SigSet::empty();
    for sig in RESET {
        let Ok(signal) = Signal::try_from(sig) else {
            continue;
        };
        match (ignored(sig, opts), sig) {
            (true, libc::SIGINT) => mask.add(signal),
            (true, _) => {} // SIGPIPE: already ignored in the parent, and `exec` keeps that
            (false, _) => defaults.add(signal),
        }
    }
    (mask, defaults)
}

/// Runs first in a spawned worker, after its `exec`: arms the death signal, then checks that
/// `parent` is still its parent (false if not: the parent died before the signal was armed,
/// and the worker must exit at once); ignores `SIGINT` if asked (discarding one that waited,
/// blocked, since the spawn) and unblocks every signal.
pub(crate) fn setup_after_exec(parent: libc::pid_t, ignore_sigint: bool) -> bool {
    // SAFETY: prctl/getppid/signal/sigprocmask with valid arguments; `set` is a local sigset
    // initialized by sigemptyset before use.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != parent {
            return false;
        }
        if ignore_sigint {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    true
}
