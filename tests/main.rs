//! The integration suite of the `pool` facade: one test body, run against every start method.

mod suite;

/// Spawned workers re-execute this test binary: become a worker before the test harness starts.
#[ctor::ctor(unsafe)]
fn spawned_worker_entry() {
    pool::entry();
    suite::interrupt::run_if_asked();
}
