//! What the MPI test binaries share: an `Extensions` with MPI workers only (the facade is
//! above this crate), the worker-rank constructor, and the outer/inner mpirun launch.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use pool_core::backend::Backend;
use pool_core::{
    CallInfo, Layers, Outcome, PoolError, Progress, ProgressSink, RawInsights, SharedObjects,
    StartMethod, Status, Workers,
};
use pool_mpi::MpiBackend;

#[ctor::ctor(unsafe)]
fn mpi_entry() {
    pool_mpi::run_if_worker();
}

/// `pool_core` with MPI workers only (the facade is above this crate), progress recorded.
pub type MpiOnly = Layers<MpiRanks, Recorder, RawInsights>;

/// MPI ranks as the workers piece.
pub struct MpiRanks;

impl Workers for MpiRanks {
    fn default_start_method() -> StartMethod {
        StartMethod::Mpi
    }
    fn backend<Sh: SharedObjects, St: 'static>(
        _method: StartMethod,
        n_jobs: usize,
        _daemon: bool,
    ) -> Result<Box<dyn Backend<Sh, St>>, PoolError> {
        Ok(Box::new(MpiBackend::new(n_jobs)?))
    }
}

/// Every status a progress sink was given, in order (the last call's).
pub static PROGRESS: Mutex<Vec<Status>> = Mutex::new(Vec::new());

pub struct Recorder;

impl Progress for Recorder {
    fn sink(_info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
        Some(Box::new(Recorder))
    }
}

impl ProgressSink for Recorder {
    fn start(&mut self, _info: &CallInfo) {
        PROGRESS.lock().unwrap().clear();
    }
    fn update(&mut self, status: &Status) {
        PROGRESS.lock().unwrap().push(status.clone());
    }
    fn finish(&mut self, status: &Status, _outcome: &Outcome) {
        PROGRESS.lock().unwrap().push(status.clone());
    }
}

/// Runs `test` of this binary under mpirun; true if it ran there (false: no mpirun here).
pub fn under_mpirun(test: &str, ranks: usize) -> bool {
    under_mpirun_with(test, ranks, true)
}

pub fn under_mpirun_with(test: &str, ranks: usize, recovery: bool) -> bool {
    if Command::new("mpirun").arg("--version").output().is_err() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
        assert!(
            !ci,
            "CI is set and mpirun is not installed: apt-get install -y openmpi-bin libopenmpi-dev"
        );
        // Straight to stderr: the test harness hides what `eprintln!` says in a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED: mpirun is not installed (apt-get install -y openmpi-bin \
             libopenmpi-dev); under CI=true this fails\n"
        );
        return false;
    }
    let exe = std::env::current_exe().unwrap();
    let t0 = Instant::now();
    let out = Command::new("timeout")
        .args(["60", "mpirun", "--allow-run-as-root", "--oversubscribe"])
        .args(recovery.then_some("--enable-recovery"))
        .args(["-n", &ranks.to_string()])
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("POOL_MPI_DEAD_AFTER_MS", "1500")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let took = t0.elapsed();
    eprintln!("--- mpirun ({took:?}) stdout:\n{stdout}\n--- stderr:\n{stderr}");
    if !recovery {
        // Open MPI's default: one dead process ends the whole job, at once and loudly.
        assert!(!out.status.success(), "mpirun should fail the job");
        assert!(took < Duration::from_secs(30), "took {took:?}");
        assert!(
            stderr.contains("signal 9"),
            "mpirun names the killed rank: {stderr}"
        );
        return true;
    }
    assert!(
        stdout.contains(&format!("MPI-FAULT-OK {test}")),
        "the body did not pass under mpirun (status {:?})",
        out.status
    );
    // ... and the whole job ended, promptly (a dead rank must not hang MPI's finalize).
    assert!(out.status.success(), "mpirun: {:?}", out.status);
    assert!(took < Duration::from_secs(30), "mpirun took {took:?}");
    true
}

pub fn inside_mpirun() -> bool {
    pool_mpi::env_rank() == Some(0)
}
