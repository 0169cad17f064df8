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
                /// Runs under `mpirun` only (`pool-mpi/run-tests.sh`); passes as
                /// skipped elsewhere.
                #[cfg(feature = "mpi")]
                #[test]
                fn mpi() {
                    if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_none() {
                        eprintln!("skipped: not under mpirun");
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
pub(crate) mod interrupt;
mod lazy;
mod lifecycle;
mod ordering;
mod retries;
mod shutdown;
mod timeouts;
