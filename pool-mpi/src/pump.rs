//! The one place that talks MPI: non-blocking sends of byte messages, and polling for
//! incoming ones. A pump lives in a single thread (the "funnel"): every MPI call of the process
//! goes through it, so MPI needs no more than `MPI_THREAD_FUNNELED`/`SERIALIZED` support.
//!
//! Sends are `MPI_Isend`s whose buffers are kept until `MPI_Test` says they are done: a blocking
//! `MPI_Send` of a large message waits for the receiver (rendezvous), and two ranks sending
//! large messages to each other at once would deadlock.

use std::os::raw::{c_int, c_void};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpi::datatype::Equivalence;
use mpi::ffi;
use mpi::point_to_point::Source;
use mpi::topology::{Communicator, SimpleCommunicator};

/// The only tag pool-mpi uses.
const TAG: c_int = 7;

/// The bytes of a message: owned, or one buffer sent to many ranks (the shared objects).
#[derive(Debug)]
pub(crate) enum Frame {
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Frame {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Frame::Owned(v) => v,
            Frame::Shared(v) => v,
        }
    }
}

impl From<Vec<u8>> for Frame {
    fn from(v: Vec<u8>) -> Self {
        Frame::Owned(v)
    }
}

/// Sends and receives byte messages on `MPI_COMM_WORLD`.
pub(crate) struct Pump {
    world: SimpleCommunicator,
    pending: Vec<(Frame, ffi::MPI_Request)>,
}

impl Pump {
    /// Call after MPI is initialized, from the thread that will make every MPI call.
    pub(crate) fn new(world: SimpleCommunicator) -> Self {
        // SAFETY: MPI is initialized; the world communicator and the predefined handler are
        // valid handles. Errors then come back as codes instead of aborting the job, so that a
        // dead peer does not take rank 0 down with it.
        unsafe {
            ffi::MPI_Comm_set_errhandler(ffi::RSMPI_COMM_WORLD, ffi::RSMPI_ERRORS_RETURN);
        }
        Pump {
            world,
            pending: Vec::new(),
        }
    }

    pub(crate) fn rank(&self) -> i32 {
        self.world.rank()
    }

    pub(crate) fn size(&self) -> i32 {
        self.world.size()
    }

    /// Starts sending `bytes` to `rank`. Returns false if MPI refused.
    pub(crate) fn send(&mut self, rank: i32, frame: impl Into<Frame>) -> bool {
        let frame = frame.into();
        let bytes = frame.bytes();
        let Ok(count) = c_int::try_from(bytes.len()) else {
            eprintln!(
                "pool-mpi: a message of {} bytes is over MPI's 2 GiB limit",
                bytes.len()
            );
            return false;
        };
        // SAFETY: the null request is a valid value to be overwritten.
        let mut req = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: the frame's heap buffer stays alive and unmoved in `pending` until MPI_Test
        // reports the request complete (a shared one is not mutated while any `Arc` lives);
        // count and datatype describe it exactly.
        let rc = unsafe {
            ffi::MPI_Isend(
                bytes.as_ptr() as *const c_void,
                count,
                ffi::RSMPI_UINT8_T,
                rank,
                TAG,
                ffi::RSMPI_COMM_WORLD,
                &mut req,
            )
        };
        if rc != 0 {
            return false;
        }
        self.pending.push((frame, req));
        true
    }

    /// Lets pending sends progress; the buffers of finished ones go back to the recycler
    /// (`pool_core::take_buffer`), so that the next chunk is not encoded into fresh pages.
    pub(crate) fn progress(&mut self) {
        let mut i = 0;
        while i < self.pending.len() {
            let mut flag: c_int = 0;
            // SAFETY: the request is an active one of ours; the status is ignored.
            let rc = unsafe {
                ffi::MPI_Test(&mut self.pending[i].1, &mut flag, ffi::RSMPI_STATUS_IGNORE)
            };
            // A failed send (dead peer) is dropped too: the loss is seen by liveness checks.
            if rc == 0 && flag == 0 {
                i += 1;
                continue;
            }
            if let (Frame::Owned(bytes), _) = self.pending.swap_remove(i)
                && rc == 0
            {
                pool_core::recycle_buffer(bytes);
            }
        }
    }

    /// Sends still in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// A message that has arrived, if any: (source rank, bytes).
    pub(crate) fn poll(&mut self) -> Option<(i32, Vec<u8>)> {
        let probed = self
            .world
            .any_process()
            .immediate_matched_probe_with_tag(TAG)?;
        let (message, status) = probed;
        let source = status.source_rank();
        // Received into a zeroed buffer (calloc: fresh pages, no per-byte loop), not through
        // `matched_receive_vec`, which builds its buffer element by element: unoptimized, that
        // took seconds for a 64 MiB message, while this thread, the only one that talks MPI,
        // could neither answer nor hear heartbeats and live ranks were judged dead.
        let len = usize::try_from(status.count(u8::equivalent_datatype())).unwrap_or(0);
        let mut bytes = vec![0u8; len];
        message.matched_receive_into(&mut bytes[..]);
        Some((source, bytes))
    }
}

/// How long a loop with nothing to do waits for local work (a channel it `recv_timeout`s on,
/// so local work wakes it at once) before probing MPI again.
///
/// Why not a thread blocked in `MPI_Probe`: Open MPI's blocking calls busy-poll its progress
/// engine, so such a thread burns a core per rank, and a whole machine of them starves the
/// workers. Instead incoming messages are probed at most every [`PROBE_EVERY`] while the pool
/// is active (a chunk's result or the next chunk is seen within about that), and less often
/// after a long idle stretch.
#[derive(Debug, Default)]
pub(crate) struct Idle {
    since: Option<Instant>,
}

/// Probe period while work may arrive.
pub(crate) const PROBE_EVERY: Duration = Duration::from_micros(50);

impl Idle {
    /// For the calling thread (an MPI loop): short waits end on time. Linux lets a sleep run
    /// 50 µs late by default (timer slack), as long as the probe period itself.
    pub(crate) fn for_this_thread() -> Self {
        // SAFETY: PR_SET_TIMERSLACK takes a value in ns and affects only the calling thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong) };
        Idle::default()
    }

    /// Something happened: probe eagerly again.
    pub(crate) fn busy(&mut self) {
        self.since = None;
    }

    /// Waits for local work on `rx` as long as the idle stretch allows (see [`Idle::wait`]).
    pub(crate) fn next<T>(&mut self, rx: &crossbeam_channel::Receiver<T>) -> Option<T> {
        let wait = self.wait();
        let got = if wait.is_zero() {
            std::thread::yield_now();
            rx.try_recv().ok()
        } else {
            rx.recv_timeout(wait).ok()
        };
        if got.is_some() {
            self.busy();
        }
        got
    }

    /// How long to wait now.
    fn wait(&mut self) -> Duration {
        let idle = self.since.get_or_insert_with(Instant::now).elapsed();
        if idle < Duration::from_micros(30) {
            Duration::ZERO
        } else if idle < Duration::from_secs(1) {
            PROBE_EVERY
        } else {
            Duration::from_millis(1)
        }
    }
}
