//! Each test body takes the start method; `for_each_start_method!` instantiates it once per
//! back end, so every behaviour is checked on threads and on processes alike.

use pool::{Builder, StartMethod, WorkerPool};

/// Generates `mod $name { #[test] fn threading() ... }` for each start method.
macro_rules! for_each_start_method {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn threading() {
                    super::$name(pool::StartMethod::Threading);
                }
                #[test]
                fn fork() {
                    super::$name(pool::StartMethod::Fork);
                }
                #[test]
                fn spawn() {
                    super::$name(pool::StartMethod::Spawn);
                }
                #[test]
                fn forkserver() {
                    super::$name(pool::StartMethod::Forkserver);
                }
                /// Runs under `mpirun` only (`pool-mpi/run-tests.sh`). Elsewhere a loud
                /// skip, or a failure when `CI` is set (MPI was expected: it was built).
                #[cfg(feature = "mpi")]
                #[test]
                fn mpi() {
                    if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_none() {
                        assert!(
                            std::env::var_os("CI").is_none(),
                            "not under mpirun, and CI is set: run pool-mpi/run-tests.sh"
                        );
                        eprintln!("*** SKIPPED (nothing tested): not under mpirun; run pool-mpi/run-tests.sh ***");
                        return;
                    }
                    super::$name(pool::StartMethod::Mpi);
                }
            }
        )*
    };
}

/// A builder for `n` workers of start method `m`.
pub(crate) fn builder(m: StartMethod, n: usize) -> Builder {
    WorkerPool::builder().n_jobs(n).start_method(m)
}

/// A pool of `n` workers of start method `m`.
pub(crate) fn pool(m: StartMethod, n: usize) -> WorkerPool {
    builder(m, n).build().expect("pool builds")
}

mod apply;
mod errors;
mod inputs;
mod lazy;
mod lifecycle;
mod ordering;
mod timeouts;
