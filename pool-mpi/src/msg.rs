//! The messages between rank 0 and a worker rank. Each is one MPI message of bytes:
//! `[u32 little-endian header length][postcard header][bulk bytes]`, where the bulk part is a
//! chunk's encoded inputs or outputs, or the shared objects (never through serde).

use pool_ipc::backend::wire::{WireCommand, WireEvent};
use pool_ipc::fnid::FnId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What a worker rank needs to start a worker (the shared objects come before, once).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Boot {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
    /// `worker::boot::<Sh, St>`: the typed entry of the worker thread.
    pub(crate) entry: FnId,
    pub(crate) make_state: FnId,
    pub(crate) init: Option<FnId>,
    pub(crate) exit: Option<FnId>,
    pub(crate) lifespan: Option<u64>,
    pub(crate) insights: bool,
    pub(crate) cpus: Option<Vec<usize>>,
}

/// Rank 0 → worker rank. `epoch` names the pool (one `MpiBackend`), so that late messages of
/// an earlier pool are never taken for this one's.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// The pool's shared objects (bulk), sent once per pool and rank.
    Shared { epoch: u64 },
    /// Start a worker.
    Start { epoch: u64, boot: Boot },
    /// A command for the running worker; a `Chunk`'s inputs are the bulk.
    Cmd {
        epoch: u64,
        generation: u64,
        cmd: WireCommand,
    },
    /// Abandon the worker: cancel its chunk, close its link (it cannot be killed: it shares
    /// the rank with the loop that talks to rank 0).
    Kill { epoch: u64, generation: u64 },
    /// The program is over: exit, after `MPI_Finalize` unless a rank died (Open MPI's finalize
    /// would wait for it forever).
    Shutdown { finalize: bool },
}

/// Worker rank → rank 0.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// An event of a worker; a `ChunkDone`'s output is the bulk.
    Event { epoch: u64, event: WireEvent },
    /// The worker's counters: tasks done in this life, and the task (or hook) in hand with
    /// how long it has run (ns; clocks differ between hosts, durations do not).
    Progress {
        epoch: u64,
        slot: usize,
        generation: u64,
        done: u64,
        current: Option<(u64, u64)>,
    },
    /// The worker thread ended without its `Exited` event (a bug, or a panic outside the
    /// task): rank 0 reports the worker as dead.
    Lost {
        epoch: u64,
        slot: usize,
        generation: u64,
        message: String,
    },
    /// The rank is alive (sent every [`crate::HEARTBEAT`]): where it runs.
    Alive { host: String, pid: u32 },
}

/// Encodes a message.
pub(crate) fn encode<H: Serialize>(header: &H, bulk: &[u8]) -> Vec<u8> {
    let h = postcard::to_stdvec(header).expect("pool-mpi headers always encode");
    let mut out = Vec::with_capacity(4 + h.len() + bulk.len());
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(bulk);
    out
}

/// Decodes a message: its header and its bulk bytes.
pub(crate) fn decode<H: DeserializeOwned>(mut bytes: Vec<u8>) -> Option<(H, Vec<u8>)> {
    let n = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let header = postcard::from_bytes(bytes.get(4..4 + n)?).ok()?;
    let bulk = bytes.split_off(4 + n);
    Some((header, bulk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_bulk_round_trip() {
        let bulk: Vec<u8> = (0..=255).collect();
        let bytes = encode(
            &ToWorker::Kill {
                epoch: 3,
                generation: 9,
            },
            &bulk,
        );
        let (h, b) = decode::<ToWorker>(bytes).unwrap();
        assert!(matches!(
            h,
            ToWorker::Kill {
                epoch: 3,
                generation: 9
            }
        ));
        assert_eq!(b, bulk);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(decode::<FromWorker>(vec![]).is_none());
        assert!(decode::<FromWorker>(vec![200, 0, 0, 0, 1]).is_none());
    }
}
