//! Which worker gets an `apply_async` task, and what becomes of the tasks in a lost worker's
//! hand.
//!
//! 1. A task goes as a map's chunk would ([`crate::chunking::Policy::hand_depth`]): to the
//!    worker with the least in hand among those that can take one. A worker whose last task
//!    was quick holds the next one while it runs one; while fewer tasks wait than there are
//!    workers, only idle workers get them, so that none waits behind a slow one.
//! 2. A task handed to a worker that is running another is *held*. Its bytes are copied first
//!    (inputs that travel to another process), to resend it. A thread worker's task lives in
//!    this process and cannot be copied: it is held only behind tasks without a timeout (the
//!    one way a thread worker is lost), else it waits for an idle worker.
//! 3. A task the back end gives back (its worker is gone, and the pool has not yet heard)
//!    never ran there: it stays in that worker's hand as a held task, with the command as its
//!    copy. A task the back end could not even encode fails with why.
//! 4. When a worker is lost (a timeout, a crash), the task it was running fails with the
//!    failure; each task held behind it never ran and goes back to the front of the queue,
//!    in order, from its copy.

use super::{Completion, Outstanding, Pending, Queue};
use crate::backend::{Command, Unsent};
use crate::error::{Failure, PoolError};
use crate::job::Data;
use crate::supervisor::{InFlight, Supervisor};

/// Sends queued tasks to workers that can take one (steps 1 to 3); gives those that could
/// not be sent and are lost, with why (their completions run with no lock held).
pub(super) fn send_waiting<Sh, St>(
    s: &mut Supervisor<Sh, St>,
    q: &mut Queue<Sh, St>,
) -> impl Iterator<Item = (Completion, PoolError)> {
    let mut unsent = Vec::new();
    while let Some(next) = q.waiting.front() {
        let tail = q.waiting.len() < s.n_jobs();
        let Some(mut w) = s.pick(None, tail, 1) else {
            break;
        };
        let mut resend = None;
        if !s.inflight(w).is_empty() {
            // Held (step 2).
            resend = copy_of_bytes(&next.cmd);
            let safe = resend.is_some()
                || s.inflight(w).iter().all(|c| {
                    q.outstanding
                        .get(&c.call)
                        .is_none_or(|o| o.timeout.is_none())
                });
            if !safe {
                let Some(idle) = s.pick(None, true, 1) else {
                    break;
                };
                (w, resend) = (idle, None);
            }
        }
        let p = q.waiting.pop_front().expect("not empty");
        let resend = match s.dispatch(w, p.cmd) {
            Ok(()) => resend,
            // Step 3.
            Err(Unsent { cmd: Some(cmd), .. }) => Some(*cmd),
            Err(Unsent { error, cmd: None }) => {
                unsent.push((p.complete, error));
                continue;
            }
        };
        q.outstanding.insert(
            p.call,
            Outstanding {
                timeout: p.timeout,
                complete: p.complete,
                resend,
            },
        );
    }
    unsent.into_iter()
}

/// A copy of a task whose inputs travel as bytes; `None` for inputs that live in this process.
fn copy_of_bytes<Sh, St>(cmd: &Command<Sh, St>) -> Option<Command<Sh, St>> {
    match cmd {
        Command::Chunk {
            job,
            call,
            first,
            len,
            input: Data::Bytes(bytes),
            refs,
            settings,
        } => Some(Command::Chunk {
            job: job.clone(),
            call: *call,
            first: *first,
            len: *len,
            input: Data::Bytes(bytes.clone()),
            refs: refs.clone(),
            settings: *settings,
        }),
        _ => None,
    }
}

/// The tasks in the hand of a lost worker (step 4).
pub(super) fn take_back<Sh, St>(
    q: &mut Queue<Sh, St>,
    done: &mut Vec<(Completion, Result<Data, PoolError>)>,
    chunks: Vec<InFlight>,
    current: Option<u64>,
    failure: &Failure,
) {
    let mut again = Vec::new();
    for c in chunks {
        let Some(o) = q.outstanding.remove(&c.call) else {
            continue;
        };
        match o.resend {
            Some(cmd) if current != Some(c.first) => again.push(Pending {
                cmd,
                call: c.call,
                timeout: o.timeout,
                complete: o.complete,
            }),
            _ => done.push((o.complete, Err(failure.clone().into()))),
        }
    }
    for p in again.into_iter().rev() {
        q.waiting.push_front(p);
    }
}
