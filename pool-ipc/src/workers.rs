//! Process workers as the workers piece of a `pool_core::Layers`.

use pool_core::backend::{Backend, ThreadBackend};
use pool_core::{PoolError, SharedObjects, StartMethod, Workers};

use crate::backend::{ProcessBackend, ProcessMethod, in_daemon_worker};

/// Workers as forked or spawned processes, or threads: `StartMethod::Fork` (the default),
/// `Spawn` and `Threading`. "Process workers, no bars" is
///
/// ```
/// use pool_core::{Layers, NoProgress, RawInsights, WorkerPool};
/// use pool_ipc::Processes;
///
/// type Pool = WorkerPool<(), (), Layers<Processes, NoProgress, RawInsights>>;
/// let mut pool = Pool::builder().n_jobs(2).build()?; // forked workers
/// assert_eq!(pool.map(|x: u64| x * 10, 0..3u64)?, vec![0, 10, 20]);
/// # Ok::<(), pool_core::PoolError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Processes;

impl Workers for Processes {
    fn default_start_method() -> StartMethod {
        StartMethod::Fork
    }

    fn backend<Sh: SharedObjects, St: 'static>(
        method: StartMethod,
        n_jobs: usize,
        daemon: bool,
    ) -> Result<Box<dyn Backend<Sh, St>>, PoolError> {
        // A spawned worker whose `main` skipped the entry hook stops here, at its first pool.
        crate::entry::exit_if_hook_skipped();
        let process = match method {
            StartMethod::Threading => return Ok(Box::new(ThreadBackend::new(n_jobs))),
            StartMethod::Fork => ProcessMethod::Fork,
            StartMethod::Spawn => ProcessMethod::Spawn,
            StartMethod::Forkserver => ProcessMethod::Forkserver,
            StartMethod::Mpi => {
                return Err(PoolError::InvalidConfig(
                    "StartMethod::Mpi needs the `mpi` feature of the `pool` crate and mpirun"
                        .into(),
                ));
            }
        };
        refuse_in_daemon_worker()?;
        Ok(Box::new(ProcessBackend::new(process, n_jobs, daemon)?))
    }
}

/// Workers of a daemon pool may not start worker processes (as in MPIRE).
pub fn refuse_in_daemon_worker() -> Result<(), PoolError> {
    if in_daemon_worker() {
        return Err(PoolError::InvalidConfig(
            "this code runs in a daemon worker, which may not start worker processes: build \
             the outer pool with .daemon(false) to nest process pools, or use \
             StartMethod::Threading for the inner one"
                .into(),
        ));
    }
    Ok(())
}
