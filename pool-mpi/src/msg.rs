//! The envelopes between rank 0 and a worker rank. Each is one MPI message framed by
//! `pool_wire::msg::encode_framed` (header, then bulk bytes: a chunk's inputs or outputs, or
//! the shared objects). The worker protocol itself is `pool_wire`'s: [`Down::Cmd`] carries a
//! `ToWorker`, [`Up::Event`] a `FromWorker`; the envelope only says which pool (`epoch`) and
//! which worker (`slot`, `generation`) it is about, and rank 0 checks both against where it
//! placed that worker before it believes a word.

use pool_wire::boot::BootRecord;
use pool_wire::fnid::{ExeDigest, FnId};
use pool_wire::msg::{FromWorker, ToWorker};
use serde::{Deserialize, Serialize};

/// Where a process runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Whereabouts {
    pub(crate) host: String,
    pub(crate) pid: u32,
}

impl Whereabouts {
    pub(crate) fn here() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        Whereabouts {
            host,
            pid: std::process::id(),
        }
    }
}

/// A worker's counters as its rank last read them: tasks done in this life, and the task (or
/// hook) in hand with how long it has run (ns; clocks differ between hosts, durations do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) done: u64,
    pub(crate) current: Option<(u64, u64)>,
}

/// Which worker a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WorkerKey {
    pub(crate) epoch: u64,
    pub(crate) slot: usize,
    pub(crate) generation: u64,
}

/// Rank 0 → worker rank.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Down {
    /// First message: who rank 0 is (so the rank can watch it) and which binary it runs.
    Hello {
        rank0: Whereabouts,
        digest: ExeDigest,
    },
    /// Rank 0 is alive (every [`crate::HEARTBEAT`]).
    Beat,
    /// The pool's shared objects (bulk), once per pool and rank. Rank 0 sends them to
    /// `relay[0]` only; the rank at position `i` of `relay` passes the frame on, as it is, to
    /// positions `2i + 1` and `2i + 2` (a binary tree over the ranks).
    Shared { epoch: u64, relay: Vec<usize> },
    /// Start a worker thread: `entry` is `link::boot::<Sh, St>`.
    Start {
        key: WorkerKey,
        entry: FnId,
        boot: BootRecord,
    },
    /// A command for a worker; a chunk's inputs are the bulk.
    Cmd { key: WorkerKey, cmd: ToWorker },
    /// Abandon a worker (a thread cannot be killed): cancel flag, closed link.
    Kill { key: WorkerKey },
    /// The program is over: exit, after `MPI_Finalize` unless a rank died.
    Shutdown { finalize: bool },
}

/// Worker rank → rank 0.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Up {
    /// Answer to `Hello`, then every [`crate::HEARTBEAT`]: where the rank runs and whether its
    /// binary is rank 0's.
    Alive {
        at: Whereabouts,
        digest: Result<ExeDigest, String>,
    },
    /// A worker's event (a `ChunkDone`'s output is the bulk), with its counters.
    Event {
        key: WorkerKey,
        counters: Snapshot,
        msg: FromWorker,
    },
    /// A worker's counters changed (sent at most every [`crate::REPORT_EVERY`]).
    Progress { key: WorkerKey, counters: Snapshot },
    /// The worker is gone without its `Exited`: its thread panicked outside a task, or the
    /// process is exiting under it (`process::exit` in a task). `rank_ends`: the whole rank.
    Lost {
        key: WorkerKey,
        counters: Snapshot,
        message: String,
        rank_ends: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_wire::msg::{decode_framed, encode_framed};

    #[test]
    fn envelopes_round_trip_with_bulk() {
        let key = WorkerKey {
            epoch: 3,
            slot: 1,
            generation: 9,
        };
        let bulk: Vec<u8> = (0..=255).collect();
        let bytes = encode_framed(
            &Down::Cmd {
                key,
                cmd: ToWorker::Flush,
            },
            &bulk,
        );
        let (h, b) = decode_framed::<Down>(bytes).unwrap();
        assert!(matches!(h, Down::Cmd { key: k, cmd: ToWorker::Flush } if k == key));
        assert_eq!(b, bulk);
        assert!(decode_framed::<Up>(vec![200, 0, 0, 0, 1]).is_none());
    }
}
