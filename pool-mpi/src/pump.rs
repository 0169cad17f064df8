//! The one place that talks MPI: non-blocking sends of byte messages, and polling for
//! incoming ones. A pump lives in a single thread (the "funnel"): every MPI call of the process
//! goes through it, so MPI needs no more than `MPI_THREAD_FUNNELED`/`SERIALIZED` support.
//!
//! Sends are `MPI_Isend`s whose buffers are kept until `MPI_Test` says they are done: a blocking
//! `MPI_Send` of a large message waits for the receiver (rendezvous), and two ranks sending
//! large messages to each other at once would deadlock.

use std::os::raw::{c_int, c_void};

use mpi::ffi;
use mpi::point_to_point::{MatchedReceiveVec, Source};
use mpi::topology::{Communicator, SimpleCommunicator};

/// The only tag pool-mpi uses.
const TAG: c_int = 7;

/// Sends and receives byte messages on `MPI_COMM_WORLD`.
pub(crate) struct Pump {
    world: SimpleCommunicator,
    pending: Vec<(Vec<u8>, ffi::MPI_Request)>,
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
    pub(crate) fn send(&mut self, rank: i32, bytes: Vec<u8>) -> bool {
        let Ok(count) = c_int::try_from(bytes.len()) else {
            eprintln!(
                "pool-mpi: a message of {} bytes is over MPI's 2 GiB limit",
                bytes.len()
            );
            return false;
        };
        // SAFETY: the null request is a valid value to be overwritten.
        let mut req = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: `bytes` stays alive and unmoved (its heap buffer) in `pending` until MPI_Test
        // reports the request complete; count and datatype describe it exactly.
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
        self.pending.push((bytes, req));
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
            let (bytes, _) = self.pending.swap_remove(i);
            if rc == 0 {
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
        let source = probed.1.source_rank();
        let (bytes, _) = probed.matched_receive_vec::<u8>();
        Some((source, bytes))
    }
}

/// Idle waiting of a polling loop: a few yields, then sleeps that grow to 1 ms, so that an idle
/// rank costs almost no CPU while a busy one answers within microseconds (MPI has no wake-up
/// that would let a thread sleep on "a message or a local command").
#[derive(Debug, Default)]
pub(crate) struct Backoff(u32);

impl Backoff {
    pub(crate) fn reset(&mut self) {
        self.0 = 0;
    }

    pub(crate) fn idle(&mut self) {
        self.0 = self.0.saturating_add(1);
        match self.0 {
            0..=20 => std::thread::yield_now(),
            n => std::thread::sleep(std::time::Duration::from_micros(
                (10u64 << ((n - 20).min(7))).min(1000),
            )),
        }
    }
}
