//! MPI workers for `pool`: the same `WorkerPool` across machines.
//!
//! Under `mpirun -n N`, rank 0 runs the user's program and the pool; ranks `1..N` are workers:
//! [`run_if_worker`] (called by `pool::entry()`) turns them into a loop that runs the workers
//! rank 0 asks for, until rank 0's program ends. Worker slot `i` lives on rank `i + 1`.
//!
//! - The protocol is `pool_wire`'s, as for process workers: every rank runs the same binary
//!   (checked at start: each rank compares a digest of its executable with rank 0's and a
//!   mismatch fails pool creation, naming the rank), so a `fn` is named by its offset from an
//!   anchor; tasks, the state factory and the hooks must capture nothing.
//! - Tasks, results and events travel as framed MPI messages (bulk bytes outside serde);
//!   a worker's counters ride on its events, and go alone at most every 2 ms.
//!   The shared objects are serialized once per pool into one frame that rank 0 sends once and
//!   the worker ranks relay down a binary tree; each rank decodes them once per pool and keeps
//!   only the decoded value (a rank receiving them is excused from heartbeats meanwhile).
//! - Every MPI call of a process is made by one thread: rank 0's MPI thread, or a worker
//!   rank's main thread; workers run in threads beside it. Both loops wake at once for local
//!   work and probe MPI every 50 µs while a pool is busy (`pump::Idle` says why not a
//!   blocking probe).
//! - Faults (see the `rank0` module for how they are seen): a dead, exiting or stopped worker rank ends
//!   the call with `Cause::WorkerDied` naming the rank, its host and pid and the task it held,
//!   within the silence limit at worst (1.5 s, `POOL_MPI_DEAD_AFTER_MS`) and at once for a
//!   rank on rank 0's host. By default Open MPI then ends the whole job (rank 0 gets SIGTERM
//!   about a second later): the error is printed first. With `mpirun --enable-recovery`
//!   rank 0 lives on: the dead rank's workers move to the live ranks, so `keep_going` calls
//!   return every entry and later calls and pools work. When rank 0 dies, worker ranks exit.
//! - Timeouts are enforced on rank 0 from the counters the worker ranks report; a timed-out
//!   worker cannot be killed (its rank also runs the MPI loop), so it is abandoned like a
//!   thread worker and a new one starts beside it.
#![deny(missing_docs)]

mod backend;
mod link;
mod msg;
mod pump;
mod rank0;
mod watch;
mod worker;

use std::time::Duration;

pub use backend::MpiBackend;
pub use rank0::finalize;

/// How often a rank says it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(100);

/// How often a busy worker's counters are reported between its events.
pub(crate) const REPORT_EVERY: Duration = Duration::from_millis(2);

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
