//! The messages between the parent and a remote worker (see the crate docs, steps 2 and 3).

use pool_core::{Data, Event, ExitReason, Failure, RunSettings, WorkerTimings};
use serde::{Deserialize, Serialize};

use crate::fnid::FnId;

/// How a worker finds a call's task function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    /// The call id; the worker caches jobs by it.
    pub call: u64,
    /// The offset of the call's `JobRebuilder<Sh, St>` (see [`crate::fnid`]), for a call the
    /// worker has not seen.
    pub rebuild: Option<FnId>,
}

/// Parent → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// Run tasks `first..first + len` of a call. Followed by one bulk frame: the inputs.
    Chunk {
        /// The call's task function.
        job: JobRef,
        /// Index of the first task.
        first: u64,
        /// How many tasks.
        len: u32,
        /// How to run them.
        settings: RunSettings,
    },
    /// Send the timings recorded so far.
    Flush,
    /// Run the exit hook and stop.
    Exit,
}

impl ToWorker {
    /// Whether a bulk frame follows this header.
    pub fn has_bulk(&self) -> bool {
        matches!(self, ToWorker::Chunk { .. })
    }
}

/// Worker → parent. Carries neither worker id nor generation: the parent stamps them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// Init done; waiting for work.
    Ready,
    /// A chunk is done. Followed by one bulk frame: the encoded `ChunkOutput`.
    ChunkDone {
        /// Which call.
        call: u64,
        /// Index of the chunk's first task.
        first: u64,
    },
    /// `worker_init` or `worker_exit` failed.
    Failed {
        /// What happened (its `worker` is overwritten by the parent).
        failure: Failure,
    },
    /// Timings since the last report (their `worker` is overwritten by the parent).
    Timings {
        /// The timings.
        timings: WorkerTimings,
    },
    /// The worker stops.
    Exited {
        /// Why.
        reason: ExitReason,
        /// What `worker_exit` returned (postcard bytes).
        exit_result: Option<Vec<u8>>,
    },
}

impl FromWorker {
    /// Whether a bulk frame follows this header.
    pub fn has_bulk(&self) -> bool {
        matches!(self, FromWorker::ChunkDone { .. })
    }

    /// The wire form of a worker's event and the bulk bytes that follow it. `None` for what
    /// never crosses: `Died` (the parent's own observation) and in-process payloads (a remote
    /// worker runs jobs on bytes only).
    pub fn from_event(event: Event) -> Option<(FromWorker, Option<Vec<u8>>)> {
        Some(match event {
            Event::Ready { .. } => (FromWorker::Ready, None),
            Event::ChunkDone {
                call,
                first,
                output: Data::Bytes(bytes),
                ..
            } => (FromWorker::ChunkDone { call, first }, Some(bytes)),
            Event::ChunkDone {
                call,
                first,
                output: Data::Lent(lent),
                ..
            } => (
                FromWorker::ChunkDone { call, first },
                Some(lent.bytes().to_vec()),
            ),
            Event::ChunkDone {
                output: Data::Local(_),
                ..
            } => return None,
            Event::Failed { failure, .. } => (FromWorker::Failed { failure: *failure }, None),
            Event::Timings { timings, .. } => (FromWorker::Timings { timings: *timings }, None),
            Event::Exited {
                reason,
                exit_result,
                ..
            } => (
                FromWorker::Exited {
                    reason,
                    exit_result,
                },
                None,
            ),
            Event::Died { .. } => return None,
        })
    }

    /// Back to a `pool_core` event of `worker`'s life `generation`, as the parent's end of that
    /// worker's link knows them; `bulk` is the frame that followed a `ChunkDone`.
    pub fn into_event(self, worker: usize, generation: u64, bulk: Vec<u8>) -> Event {
        self.into_event_with(worker, generation, Data::Bytes(bulk))
    }

    /// [`FromWorker::into_event`] with the bulk frame as the back end holds it: owned bytes,
    /// or bytes lent from shared memory ([`Data::Lent`]) that the decoder reads in place.
    pub fn into_event_with(self, worker: usize, generation: u64, bulk: Data) -> Event {
        match self {
            FromWorker::Ready => Event::Ready { worker, generation },
            FromWorker::ChunkDone { call, first } => Event::ChunkDone {
                worker,
                generation,
                call,
                first,
                output: bulk,
            },
            FromWorker::Failed { mut failure } => {
                failure.worker = worker;
                Event::Failed {
                    generation,
                    failure: Box::new(failure),
                }
            }
            FromWorker::Timings { mut timings } => {
                timings.worker = worker;
                Event::Timings {
                    generation,
                    timings: Box::new(timings),
                }
            }
            FromWorker::Exited {
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

/// One frame of a byte carrier that has no separate frames of its own (MPI messages):
/// `[u32 little-endian header length][postcard header][bulk bytes]`.
pub fn encode_framed<H: Serialize>(header: &H, bulk: &[u8]) -> Vec<u8> {
    let h = postcard::to_stdvec(header).expect("protocol headers always encode");
    let mut out = Vec::with_capacity(4 + h.len() + bulk.len());
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(bulk);
    out
}

/// A frame of [`encode_framed`] whose bulk is `body` serialized straight into it (no
/// intermediate buffer: for the shared objects, which may be hundreds of MB).
pub fn encode_framed_value<H: Serialize, B: Serialize + ?Sized>(
    header: &H,
    body: &B,
) -> Result<Vec<u8>, postcard::Error> {
    let mut out = encode_framed(header, &[]);
    postcard::to_io(body, &mut out)?;
    Ok(out)
}

/// The header of a frame of [`encode_framed`] and where its bulk bytes start, without taking
/// the frame apart (to pass it on as it is); `None` for bytes that are not such a frame.
pub fn peek_framed<H: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<(H, usize)> {
    let n = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(n)?;
    let header = postcard::from_bytes(bytes.get(4..end)?).ok()?;
    Some((header, end))
}

/// Splits a frame of [`encode_framed`] into its header and bulk bytes; `None` for any bytes
/// that are not such a frame.
pub fn decode_framed<H: serde::de::DeserializeOwned>(mut bytes: Vec<u8>) -> Option<(H, Vec<u8>)> {
    let (header, start) = peek_framed(&bytes)?;
    // In place: a bulk of hundreds of MB is not copied into a second buffer.
    bytes.drain(..start);
    Some((header, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_core::{Cause, Phase};

    fn failure(worker: usize) -> Failure {
        Failure {
            phase: Phase::Init,
            cause: Cause::Panic,
            worker,
            task: None,
            args: None,
            message: "boom".into(),
            backtrace: None,
            attempts: 1,
            earlier: Vec::new(),
        }
    }

    #[test]
    fn the_parent_stamps_worker_and_generation() {
        // A worker claiming to be worker 9 is still the worker of the link it spoke on.
        let ev = FromWorker::Failed {
            failure: failure(9),
        }
        .into_event(1, 4, Vec::new());
        let Event::Failed {
            generation,
            failure,
        } = ev
        else {
            panic!("{ev:?}")
        };
        assert_eq!((failure.worker, generation), (1, 4));
        let mut t = WorkerTimings::new(77);
        t.n_completed_tasks = 3;
        let Event::Timings { timings, .. } =
            FromWorker::Timings { timings: t }.into_event(0, 1, vec![])
        else {
            panic!()
        };
        assert_eq!((timings.worker, timings.n_completed_tasks), (0, 3));
    }

    #[test]
    fn events_round_trip_with_their_bulk() {
        let ev = Event::ChunkDone {
            worker: 5,
            generation: 6,
            call: 7,
            first: 8,
            output: Data::Bytes(vec![1, 2, 3]),
        };
        let (msg, bulk) = FromWorker::from_event(ev).unwrap();
        assert!(msg.has_bulk());
        let bytes = encode_framed(&msg, bulk.as_deref().unwrap());
        let (msg, bulk) = decode_framed::<FromWorker>(bytes).unwrap();
        let Event::ChunkDone {
            worker,
            generation,
            call,
            first,
            output: Data::Bytes(out),
        } = msg.into_event(2, 3, bulk)
        else {
            panic!()
        };
        assert_eq!(
            (worker, generation, call, first, out),
            (2, 3, 7, 8, vec![1, 2, 3])
        );
        let died = Event::Died {
            worker: 0,
            generation: 1,
            message: String::new(),
        };
        assert!(
            FromWorker::from_event(died).is_none(),
            "only the parent sees deaths"
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..400usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect();
            let _ = decode_framed::<FromWorker>(bytes.clone());
            let _ = decode_framed::<ToWorker>(bytes.clone());
            let _ = postcard::from_bytes::<FromWorker>(&bytes);
        }
        assert!(decode_framed::<FromWorker>(vec![0xff, 0xff, 0xff, 0xff, 1]).is_none());
    }
}
