//! The messages between the parent and a worker process: `pool_core`'s commands and events
//! with the task function replaced by a reference the worker can resolve, and bulk data in
//! separate raw-byte frames (never through serde's element-by-element path).

use pool_core::{Data, Event, ExitReason, Failure, RunSettings, WorkerTimings};

use crate::fnid::FnId;
use serde::{Deserialize, Serialize};

/// How a worker finds a call's task function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    /// The call id; the worker caches jobs by it.
    pub key: u64,
    /// The rebuild function's offset (see `pool_ipc::fnid`), for jobs the worker has not got.
    pub rebuild: Option<FnId>,
}

/// Parent → worker. A `Chunk` is followed by one raw-byte frame: its encoded inputs.
#[allow(missing_docs)]
#[derive(Debug, Serialize, Deserialize)]
pub enum WireCommand {
    Chunk {
        job: JobRef,
        call: u64,
        first: u64,
        len: u32,
        settings: RunSettings,
    },
    Flush,
    Exit,
}

/// Worker → parent. A `ChunkDone` is followed by one raw-byte frame: its encoded output.
#[allow(missing_docs)]
#[derive(Debug, Serialize, Deserialize)]
pub enum WireEvent {
    Ready {
        worker: usize,
        generation: u64,
    },
    ChunkDone {
        worker: usize,
        generation: u64,
        call: u64,
        first: u64,
    },
    Failed {
        generation: u64,
        failure: Failure,
    },
    Timings {
        generation: u64,
        timings: WorkerTimings,
    },
    Exited {
        worker: usize,
        generation: u64,
        reason: ExitReason,
        exit_result: Option<Vec<u8>>,
    },
}

impl WireEvent {
    /// The wire form of a worker's event, and the bulk bytes that follow it (a chunk's
    /// output); `None` for events that never cross (`Died` is the parent's own).
    pub fn from_event(event: Event) -> Option<(WireEvent, Option<Vec<u8>>)> {
        Some(match event {
            Event::ChunkDone {
                worker,
                generation,
                call,
                first,
                output,
            } => {
                let bytes = match output {
                    Data::Bytes(b) => b,
                    Data::Local(_) => unreachable!("out-of-process workers run jobs on bytes"),
                };
                (
                    WireEvent::ChunkDone {
                        worker,
                        generation,
                        call,
                        first,
                    },
                    Some(bytes),
                )
            }
            Event::Ready { worker, generation } => (WireEvent::Ready { worker, generation }, None),
            Event::Failed {
                generation,
                failure,
            } => (
                WireEvent::Failed {
                    generation,
                    failure,
                },
                None,
            ),
            Event::Timings {
                generation,
                timings,
            } => (
                WireEvent::Timings {
                    generation,
                    timings,
                },
                None,
            ),
            Event::Exited {
                worker,
                generation,
                reason,
                exit_result,
            } => (
                WireEvent::Exited {
                    worker,
                    generation,
                    reason,
                    exit_result,
                },
                None,
            ),
            Event::Died { .. } => return None,
        })
    }

    /// Back to `pool_core`'s event; `bulk` is the chunk output that followed a `ChunkDone`.
    pub fn into_event(self, bulk: Vec<u8>) -> Event {
        match self {
            WireEvent::ChunkDone {
                worker,
                generation,
                call,
                first,
            } => Event::ChunkDone {
                worker,
                generation,
                call,
                first,
                output: Data::Bytes(bulk),
            },
            WireEvent::Ready { worker, generation } => Event::Ready { worker, generation },
            WireEvent::Failed {
                generation,
                failure,
            } => Event::Failed {
                generation,
                failure,
            },
            WireEvent::Timings {
                generation,
                timings,
            } => Event::Timings {
                generation,
                timings,
            },
            WireEvent::Exited {
                worker,
                generation,
                reason,
                exit_result,
            } => Event::Exited {
                worker,
                generation,
                reason,
                exit_result,
            },
        }
    }
}
