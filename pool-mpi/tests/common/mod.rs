//! What the MPI test binaries share: an `Extensions` with MPI workers only (the facade is
//! above this crate), the worker-rank constructor, and the outer/inner mpirun launch.
#![allow(dead_code, unreachable_pub)]

use std::process::Command;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use pool_core::{
    Backend, CallInfo, Extensions, Outcome, PoolError, ProgressSink, SharedObjects, StartMethod,
    Status, WorkerTimings,
};
use pool_mpi::MpiBackend;

#[ctor::ctor(unsafe)]
fn mpi_entry() {
    pool_mpi::run_if_worker();
}

/// `pool_core` with MPI workers only (the facade is above this crate).
#[derive(Debug)]
pub struct MpiOnly;

impl Extensions for MpiOnly {
    type Insights = pool_core::RawInsights;
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
    fn progress(_info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
        Some(Box::new(Recorder))
    }
    fn insights(timings: &[WorkerTimings]) -> Self::Insights {
        pool_core::RawInsights(timings.to_vec())
    }
}

/// Every status a progress sink was given, in order (the last call's).
pub static PROGRESS: Mutex<Vec<Status>> = Mutex::new(Vec::new());

struct Recorder;

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

/// Whether mpirun is here. Without it: a loud skip, or a failure when `CI` is set (a CI that
/// expects MPI must not pass without running anything).
pub fn have_mpirun() -> bool {
    if Command::new("mpirun").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("mpirun is not installed, and CI is set: install Open MPI to run the MPI tests");
    }
    eprintln!("\n*** SKIPPED: mpirun is not installed; nothing was tested ***\n");
    false
}

/// `mpirun` as root on a small machine, killed after 60 s whatever happens.
pub fn mpirun_command() -> Command {
    let mut c = Command::new("timeout");
    c.args(["-s", "KILL", "60", "mpirun"])
        .args(["--allow-run-as-root", "--oversubscribe"]);
    c
}

/// What one mpirun of a test body did.
#[derive(Debug)]
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

/// Runs the test `test` of this binary on `ranks` ranks under mpirun (`--enable-recovery`
/// when `recovery`), `env` added; `None` when mpirun is missing (see [`have_mpirun`]).
pub fn mpirun(test: &str, ranks: usize, recovery: bool, env: &[(&str, &str)]) -> Option<Run> {
    if !have_mpirun() {
        return None;
    }
    let exe = std::env::current_exe().unwrap();
    let t0 = Instant::now();
    let out = mpirun_command()
        .args(recovery.then_some("--enable-recovery"))
        .args(["-n", &ranks.to_string()])
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let run = Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t0.elapsed(),
    };
    eprintln!(
        "--- mpirun ({:?}, {:?}) stdout:\n{}\n--- stderr:\n{}",
        run.took, run.status, run.stdout, run.stderr
    );
    Some(run)
}

/// Runs `test` of this binary under `mpirun --enable-recovery`; its body must print
/// `MPI-FAULT-OK <test>` and mpirun must succeed.
pub fn under_mpirun(test: &str, ranks: usize) -> bool {
    let Some(run) = mpirun(test, ranks, true, &[]) else {
        return false;
    };
    assert!(
        run.stdout.contains(&format!("MPI-FAULT-OK {test}")),
        "the body did not pass under mpirun (status {:?})",
        run.status
    );
    assert!(run.status.success(), "mpirun: {:?}", run.status);
    assert!(
        run.took < Duration::from_secs(30),
        "mpirun took {:?}",
        run.took
    );
    true
}

pub fn inside_mpirun() -> bool {
    pool_mpi::env_rank() == Some(0)
}
