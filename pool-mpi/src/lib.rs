//! MPI workers for `pool`: the same `WorkerPool` across machines.
//!
//! Under `mpirun -n N`, rank 0 runs the user's program and the pool; ranks `1..N` are workers:
//! [`run_if_worker`] (called by `pool::entry()`) turns them into a loop that runs the workers
//! rank 0 asks for, until rank 0's process exits. Worker slot `i` is rank `i + 1`.
//!
//! - Functions travel as in `StartMethod::Spawn`: every rank runs the same binary, so a `fn`
//!   is named by its offset from an anchor (`pool_ipc::fnid`); tasks, the state factory and
//!   the hooks must capture nothing.
//! - Tasks, results and events travel as postcard bytes in MPI messages (one message each,
//!   bulk bytes outside serde); the shared objects are serialized once per pool and sent once
//!   to each worker rank.
//! - Every MPI call of a process is made by one thread: rank 0's MPI thread, or a
//!   worker rank's main thread; workers run in threads beside it.
//! - Faults: a task panic comes back as the usual error. A worker rank that stops answering
//!   for 5 s (`POOL_MPI_DEAD_AFTER_MS`) is reported as a dead worker with the task it held.
//!   Whether rank 0 lives to report it depends on mpirun: by default Open MPI 4.1 terminates
//!   the whole job when one process dies (rank 0 gets SIGTERM). Launch with
//!   `mpirun --enable-recovery` (Open MPI's option to keep the job running after a process
//!   failure) and rank 0 survives: the call fails with `Cause::WorkerDied` naming the rank, and
//!   later pools refuse to use the dead rank.
//! - Timeouts are enforced on rank 0 from the counters the worker ranks report; a timed-out
//!   worker cannot be killed (its rank also runs the MPI loop), so it is abandoned like a
//!   thread worker and a new one starts beside it.
#![deny(missing_docs)]

mod backend;
mod link;
mod msg;
mod pump;
mod rank0;
mod worker;

use std::time::Duration;

pub use backend::MpiBackend;
pub use rank0::finalize;

/// How often a worker rank says it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(250);

fn env_usize(names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok()?.parse().ok())
}

/// This process's MPI rank from the launcher's environment (Open MPI, MPICH/Hydra, Slurm's
/// PMI), without initializing MPI.
pub fn env_rank() -> Option<usize> {
    env_usize(&["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"])
}

/// The MPI world size from the launcher's environment.
pub fn env_size() -> Option<usize> {
    env_usize(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"])
}

/// Whether this process was started by `mpirun`.
pub fn under_mpirun() -> bool {
    env_rank().is_some() && env_size().is_some()
}

/// The hook of `pool::entry()`: on a worker rank, serves the pool of rank 0 and exits the
/// process when rank 0's program ends; on rank 0, initializes MPI (and arranges for the worker
/// ranks to be released at exit); outside mpirun, does nothing.
pub fn run_if_worker() {
    match env_rank() {
        None => {}
        Some(0) => {
            if let Err(e) = rank0::rank0() {
                eprintln!("pool-mpi: cannot initialize MPI on rank 0: {e}");
            }
        }
        Some(rank) => {
            let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            else {
                eprintln!("pool-mpi: rank {rank}: MPI is already initialized");
                std::process::exit(1);
            };
            if worker::serve(pump::Pump::new(universe.world())) {
                drop(universe); // MPI_Finalize
            } else {
                std::mem::forget(universe); // a rank died: MPI_Finalize would wait for it
            }
            std::process::exit(0);
        }
    }
}
