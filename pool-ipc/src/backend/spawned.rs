//! Spawned workers: what the parent puts in the boot info, and the `main` of a re-executed
//! worker that turns it back into a `pool_core` worker.
//!
//! The boot info (through the environment) is small: ids and `fn` offsets. The shared objects
//! travel on the link as the first frame, since they may be large.

use std::sync::Arc;

use pool_core::{CounterRef, ExitFn, Hook, InitFn, PoolError, SharedObjects, StateFn, WorkerSetup};
use serde::{Deserialize, Serialize};

use crate::backend::counters::SharedCounters;
use crate::backend::link::ChildLink;
use crate::channel::Link;
use crate::entry::{WorkerBoot, WorkerMain};
use crate::fnid::FnId;
use crate::ring::WaitPolicy;
use crate::shm::SharedRegion;
use crate::spawn::SpawnCommand;

/// Exit code of a spawned worker whose boot info is unusable.
const EXIT_BAD_SETUP: i32 = 97;

#[derive(Debug, Serialize, Deserialize)]
struct SpawnBoot {
    generation: u64,
    n_slots: usize,
    make_state: FnId,
    init: Option<FnId>,
    exit: Option<FnId>,
    lifespan: Option<u64>,
    insights: bool,
    cpus: Option<Vec<usize>>,
    requested_ns: u64,
    daemon: bool,
}

fn rebuildable<F: ?Sized>(hook: &Hook<F>, what: &str, method: &str) -> Result<FnId, PoolError> {
    hook.rebuilder().map(|r| FnId::from_ptr(r as *const ())).ok_or_else(|| {
        PoolError::InvalidConfig(format!(
            "StartMethod::{method} rebuilds the {what} in a fresh process, so it must capture nothing \
             (a fn item or a closure without captures); use StartMethod::Fork for capturing closures"
        ))
    })
}

/// The `main` and boot payload of a worker for `setup` that rebuilds everything from `fn`
/// offsets (a spawned or a forkserver's worker); `method` names the start method in errors.
pub(crate) fn boot<Sh: SharedObjects, St: 'static>(
    setup: &WorkerSetup<Sh, St>,
    n_slots: usize,
    daemon: bool,
    method: &str,
) -> Result<(WorkerMain, Vec<u8>), PoolError> {
    let boot = SpawnBoot {
        generation: setup.generation,
        n_slots,
        make_state: rebuildable(&setup.make_state, "worker_state factory", method)?,
        init: setup
            .init
            .as_ref()
            .map(|h| rebuildable(h, "worker_init function", method))
            .transpose()?,
        exit: setup
            .exit
            .as_ref()
            .map(|h| rebuildable(h, "worker_exit function", method))
            .transpose()?,
        lifespan: setup.lifespan,
        insights: setup.insights,
        cpus: setup.cpus.clone(),
        requested_ns: setup.requested_ns,
        daemon,
    };
    let payload = postcard::to_stdvec(&boot).map_err(|e| PoolError::Serialization {
        context: "spawned worker boot info".into(),
        message: e.to_string(),
    })?;
    Ok((spawn_main::<Sh, St>, payload))
}

/// The command that starts a spawned worker for `setup`.
pub(crate) fn command<Sh: SharedObjects, St: 'static>(
    setup: &WorkerSetup<Sh, St>,
    link: &Link,
    counters: &SharedRegion,
    n_slots: usize,
    daemon: bool,
) -> Result<SpawnCommand, PoolError> {
    let (main, payload) = boot(setup, n_slots, daemon, "Spawn")?;
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
}

/// # Safety
/// `id` must come from a function of type `T` in this binary.
unsafe fn rebuilt<T: Copy>(id: FnId) -> T {
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*const ()>());
    // SAFETY: per the contract, `id` points to a function of type `T` (a fn pointer type).
    unsafe { std::mem::transmute_copy::<*const (), T>(&id.to_ptr()) }
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
    let Ok(link) = Link::from_fd(link_fd) else {
        return fail("cannot map the link");
    };
    let Ok(counters) = SharedCounters::from_fd(counters_fd, b.n_slots) else {
        return fail("cannot map the counters");
    };
    let (tx, mut rx) = link.worker_end(WaitPolicy::default()).split();
    let mut shared_bytes = Vec::new();
    if rx.recv_bytes(&mut shared_bytes).is_err() {
        return fail("the parent left before sending the shared objects");
    }
    let Ok(shared) = postcard::from_bytes::<Sh>(&shared_bytes) else {
        return fail("cannot decode the shared objects");
    };
    drop(shared_bytes);
    // SAFETY: the parent made these ids from rebuild functions of exactly these types
    // (`command` above, same binary, checked by `entry`).
    let (make_state, init, exit) = unsafe {
        (
            StateFn::<St>::from_rebuilder(rebuilt(b.make_state)),
            b.init
                .map(|id| InitFn::<Sh, St>::from_rebuilder(rebuilt(id))),
            b.exit
                .map(|id| ExitFn::<Sh, St>::from_rebuilder(rebuilt(id))),
        )
    };
    let setup = WorkerSetup {
        id: boot.worker_id as usize,
        generation: b.generation,
        shared: Arc::new(shared),
        make_state,
        init,
        exit,
        lifespan: b.lifespan,
        insights: b.insights,
        counters: CounterRef::new(Arc::new(counters), boot.worker_id as usize),
        cpus: b.cpus,
        requested_ns: b.requested_ns,
    };
    pool_core::run_worker(
        setup,
        &mut ChildLink {
            tx,
            rx,
            jobs: Default::default(),
        },
    );
    0
}
