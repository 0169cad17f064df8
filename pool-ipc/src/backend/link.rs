//! The worker's end of its link, as `pool_core` sees it: commands in, events out, over the
//! shared-memory channel. Task functions arrive as references and are resolved here: from the
//! jobs inherited at the fork, or rebuilt from their `fn` offset (same binary).

use std::collections::HashMap;
use std::sync::Arc;

use pool_core::{Command, Data, ErasedJob, Event, JobRebuilder, WorkerLink};

use crate::backend::wire::{JobRef, WireCommand, WireEvent};
use crate::channel::{MsgReceiver, MsgSender};

pub(crate) struct ChildLink<Sh, St> {
    pub(crate) tx: MsgSender,
    pub(crate) rx: MsgReceiver,
    pub(crate) jobs: HashMap<u64, Arc<dyn ErasedJob<Sh, St>>>,
}

impl<Sh, St> ChildLink<Sh, St> {
    fn resolve(&mut self, job: JobRef) -> Option<Arc<dyn ErasedJob<Sh, St>>> {
        if let Some(j) = self.jobs.get(&job.key) {
            return Some(j.clone());
        }
        let id = job.rebuild?;
        // SAFETY: the parent made this id from a `JobRebuilder<Sh, St>` of this very binary
        // (forked from it, or re-executed and checked by `entry`), so the pointer is that
        // function.
        let rebuild =
            unsafe { std::mem::transmute::<*const (), JobRebuilder<Sh, St>>(id.to_ptr()) };
        let j = rebuild();
        self.jobs.insert(job.key, j.clone());
        Some(j)
    }
}

impl<Sh, St> WorkerLink<Sh, St> for ChildLink<Sh, St> {
    fn recv(&mut self) -> Option<Command<Sh, St>> {
        match self.rx.recv::<WireCommand>().ok()? {
            WireCommand::Chunk {
                job,
                call,
                first,
                len,
                settings,
            } => {
                let mut input = pool_core::take_buffer();
                self.rx.recv_bytes(&mut input).ok()?;
                let Some(job) = self.resolve(job) else {
                    // The parent only sends jobs a worker can resolve; reaching this means a
                    // protocol bug. Dying makes the parent report it with the task in hand.
                    eprintln!("pool worker: task function of call {call} is unknown here");
                    return None;
                };
                Some(Command::Chunk {
                    job,
                    call,
                    first,
                    len,
                    input: Data::Bytes(input),
                    settings,
                })
            }
            WireCommand::Flush => Some(Command::Flush),
            WireCommand::Exit => Some(Command::Exit),
        }
    }

    fn send(&mut self, event: Event) {
        let Some((wire, bulk)) = WireEvent::from_event(event) else {
            return;
        };
        match bulk {
            // A chunk's output follows its header; one wake-up for both.
            Some(bytes) => {
                if self.tx.send_deferred(&wire).is_ok() {
                    let _ = self.tx.send_bytes(&bytes);
                }
                pool_core::recycle_buffer(bytes);
            }
            None => {
                let _ = self.tx.send(&wire);
            }
        }
    }
}
