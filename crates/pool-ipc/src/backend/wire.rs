//! The messages between the parent and a worker process: `pool_core`'s commands and events
//! with the task function replaced by a reference the worker can resolve, and bulk data in
//! separate raw-byte frames (never through serde's element-by-element path).

use pool_core::{ExitReason, Failure, RunSettings, WorkerTimings};

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
