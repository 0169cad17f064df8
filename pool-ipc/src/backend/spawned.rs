//! Spawned workers: what the parent puts in the boot info, and the `main` of a re-executed
//! worker that turns it back into a `pool_core` worker.
//!
//! The boot info (through the environment) is small: ids and `fn` offsets. The shared objects
//! travel on the link as the first frame, since they may be large.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use pool_core::{CounterRef, PoolError, SharedObjects, WorkerSetup};
use pool_wire::boot::{BootRecord, Remote};
use pool_wire::worker::WorkerEnd;
use serde::{Deserialize, Serialize};

use crate::backend::counters::SharedCounters;
use crate::backend::link::RingCarrier;
use crate::channel::Link;
use crate::entry::{WorkerBoot, WorkerMain};
use crate::ring::WaitPolicy;
use crate::shm::SharedRegion;
use crate::spawn::SpawnCommand;

/// Exit code of a spawned worker whose boot info is unusable.
const EXIT_BAD_SETUP: i32 = 97;

#[derive(Debug, Serialize, Deserialize)]
struct SpawnBoot {
    record: BootRecord,
    n_slots: usize,
    requested_ns: u64,
    daemon: bool,
    /// The parent's heap of `SharedBytes` comes as fd [`HEAP_FD`], with this worker's ledger.
    heap: Option<HeapBoot>,
}

#[derive(Debug, Serialize, Deserialize)]
struct HeapBoot {
    ledger: Option<u32>,
}

/// Which passed fd is the heap's (after the link's and the counters').
const HEAP_FD: usize = 2;

/// The `main` and boot payload of a worker for `setup` that rebuilds its functions from `fn`
/// offsets: a spawned worker, or a forkserver's (`remote` names which in errors).
pub(crate) fn boot<Sh: SharedObjects, St: 'static>(
    setup: &WorkerSetup<Sh, St>,
    n_slots: usize,
    daemon: bool,
    remote: Remote,
    heap_ledger: Option<Option<u32>>,
) -> Result<(WorkerMain, Vec<u8>), PoolError> {
    let boot = SpawnBoot {
        record: BootRecord::of(setup, remote)?,
        n_slots,
        requested_ns: setup.requested_ns,
        daemon,
        heap: heap_ledger.map(|ledger| HeapBoot { ledger }),
    };
    let payload = postcard::to_stdvec(&boot).map_err(|e| PoolError::Serialization {
        context: "spawned worker boot info".into(),
        message: e.to_string(),
    })?;
    Ok((spawn_main::<Sh, St>, payload))
}

/// The command that starts a spawned worker for `setup`; with `heap`, the worker maps the
/// parent's heap of `SharedBytes` (and records what it holds in `heap.1`, its ledger).
pub(crate) fn command<Sh: SharedObjects, St: 'static>(
    setup: &WorkerSetup<Sh, St>,
    link: &Link,
    counters: &SharedRegion,
    n_slots: usize,
    daemon: bool,
    heap: Option<(BorrowedFd<'_>, Option<u32>)>,
) -> Result<SpawnCommand, PoolError> {
    let (main, payload) = boot(setup, n_slots, daemon, Remote::Spawn, heap.map(|h| h.1))?;
    let fd_err = |source| PoolError::Backend {
        context: "cannot pass fds to a spawned worker".into(),
        source,
    };
    SpawnCommand::new(main)
        .worker_id(setup.id as u64)
        .payload(payload)
        .pass_fd(link.region().fd())
        .map_err(fd_err)?
        .pass_fd(counters.fd())
        .map_err(fd_err)
        .and_then(|c| match heap {
            Some((fd, _)) => c.pass_fd(fd).map_err(fd_err),
            None => Ok(c),
        })
}

/// The `main` of a spawned worker.
fn spawn_main<Sh: SharedObjects, St: 'static>(mut boot: WorkerBoot) -> i32 {
    let worker_id = boot.worker_id;
    let fail = |what: &str| {
        eprintln!("pool worker {worker_id}: {what}");
        EXIT_BAD_SETUP
    };
    let Ok(b) = postcard::from_bytes::<SpawnBoot>(&boot.payload) else {
        return fail("malformed boot info");
    };
    super::DAEMON_WORKER.store(b.daemon, std::sync::atomic::Ordering::Relaxed);
    crate::malloc::tune_worker();
    let (Some(link_fd), Some(counters_fd)) = (boot.take_fd(0), boot.take_fd(1)) else {
        return fail("missing fds");
    };
    // Before anything here could make a heap of its own.
    if let Some(h) = &b.heap {
        let Some(fd) = boot.take_fd(HEAP_FD) else {
            return fail("missing the heap's fd");
        };
        if !pool_core::shared_bytes::spawned_worker_shares_heap(fd, h.ledger) {
            return fail("cannot map the parent's heap of shared buffers");
        }
    }
    // A forkserver worker gets its stderr pipe as a third fd (a spawned one has it as fd 2).
    if let Some(stderr) = boot.take_fd(2) {
        // SAFETY: dup2 onto fd 2 of this single-threaded worker; `stderr` is a live fd (closed
        // after, its copy stays). On failure the worker keeps the stderr it inherited.
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&stderr), 2) };
    }
    let Ok(link) = Link::from_fd(link_fd) else {
        return fail("cannot map the link");
    };
    let Ok(counters) = SharedCounters::from_fd(counters_fd, b.n_slots) else {
        return fail("cannot map the counters");
    };
    let policy = WaitPolicy::worker(b.n_slots, pool_core::cpu_count());
    let (tx, mut rx) = link.worker_end(policy).split();
    let mut shared_bytes = Vec::new();
    if rx.recv_bytes(&mut shared_bytes).is_err() {
        return fail("the parent left before sending the shared objects");
    }
    let Ok(shared) = postcard::from_bytes::<Sh>(&shared_bytes) else {
        return fail("cannot decode the shared objects");
    };
    drop(shared_bytes);
    let id = boot.worker_id as usize;
    if id >= b.n_slots {
        return fail("worker id out of range");
    }
    // SAFETY: the parent made the record with `BootRecord::of` for these types, in this same
    // binary (checked by `entry` against its `ExeId`).
    let setup: WorkerSetup<Sh, St> = unsafe {
        b.record.into_setup(
            id,
            Arc::new(shared),
            CounterRef::new(Arc::new(counters), id),
            b.requested_ns,
        )
    };
    // SAFETY: as above; the parent makes rebuild ids with `Remote::job` for `Sh` and `St`.
    let mut end = unsafe { WorkerEnd::new(RingCarrier { tx, rx }, HashMap::new()) };
    pool_core::run_worker(setup, &mut end);
    0
}
