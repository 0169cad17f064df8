//! The parent's end of a remote link: `pool_core` commands into [`ToWorker`] frames (crate
//! docs, step 2), and the chunks a worker owes (step 4).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use pool_core::{Command, Data, PoolError};

use crate::boot::Remote;
use crate::fnid::FnId;
use crate::msg::{JobRef, ToWorker};
use crate::recent::RecentCalls;

/// Per-worker encoder of commands: knows which calls the worker can resolve without a rebuild.
#[derive(Debug, Default)]
pub struct Dispatch {
    known: RecentCalls<()>,
    outstanding: Outstanding,
}

impl Dispatch {
    /// For a worker that already has the jobs of `known` calls (inherited at a fork).
    pub fn new(known: impl IntoIterator<Item = u64>) -> Self {
        let known: HashMap<u64, ()> = known.into_iter().map(|c| (c, ())).collect();
        Dispatch {
            known: RecentCalls::new(known),
            outstanding: Outstanding::default(),
        }
    }

    /// Whether the worker can resolve `call` without a rebuild function.
    pub fn knows(&self, call: u64) -> bool {
        self.known.contains(call)
    }

    /// The chunks this worker owes, shared with whoever reads its events.
    pub fn outstanding(&self) -> &Outstanding {
        &self.outstanding
    }

    /// The frames of `cmd` for the worker of `slot`: a header and, for a chunk, its inputs
    /// (borrowed from `cmd`, which the caller keeps: it can give the command back whole if the
    /// frames cannot be sent).
    pub fn encode<'c, Sh, St>(
        &mut self,
        slot: usize,
        cmd: &'c Command<Sh, St>,
    ) -> Result<(ToWorker, Option<&'c [u8]>), PoolError> {
        match cmd {
            Command::Chunk {
                job,
                call,
                first,
                len,
                input,
                // Credited to the worker's ledger by its back end, or none (see `HeapRefs`).
                refs: _,
                settings,
            } => {
                let (call, first) = (*call, *first);
                let rebuild: Option<FnId> = if self.known.contains(call) {
                    None
                } else {
                    let id = Remote::Spawn.job(job).map_err(|_| {
                        PoolError::InvalidConfig(format!(
                            "worker {slot} cannot run `{}`: it was started before this call and \
                             the function captures data",
                            job.name()
                        ))
                    })?;
                    Some(id)
                };
                let Data::Bytes(bytes) = input else {
                    return Err(PoolError::InvalidConfig(
                        "an in-process payload was sent to a remote worker (a pool bug)".into(),
                    ));
                };
                self.known.note(call, || Some(()));
                self.outstanding.sent(call, first);
                let header = ToWorker::Chunk {
                    job: JobRef { call, rebuild },
                    first,
                    len: *len,
                    settings: *settings,
                };
                Ok((header, Some(bytes.as_slice())))
            }
            Command::Flush => Ok((ToWorker::Flush, None)),
            Command::Exit => Ok((ToWorker::Exit, None)),
        }
    }
}

/// The chunks a worker was sent and has not returned, by (call, first task).
#[derive(Debug, Clone, Default)]
pub struct Outstanding(Arc<Mutex<VecDeque<(u64, u64)>>>);

impl Outstanding {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, u64)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a chunk sent.
    pub fn sent(&self, call: u64, first: u64) {
        self.lock().push_back((call, first));
    }

    /// Takes a returned chunk off the list; false if the worker was never sent it (or already
    /// returned it): a protocol violation.
    pub fn returned(&self, call: u64, first: u64) -> bool {
        let mut q = self.lock();
        match q.iter().position(|&c| c == (call, first)) {
            Some(i) => {
                q.remove(i);
                true
            }
            None => false,
        }
    }

    /// How many chunks are owed.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is owed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_chunks_sent_and_not_returned_are_accepted() {
        let o = Outstanding::default();
        o.sent(1, 0);
        o.sent(1, 10);
        assert!(!o.returned(1, 5), "never sent");
        assert!(!o.returned(2, 0), "another call");
        assert!(o.returned(1, 10));
        assert!(!o.returned(1, 10), "returned twice");
        assert!(o.returned(1, 0));
        assert!(o.is_empty());
    }
}
