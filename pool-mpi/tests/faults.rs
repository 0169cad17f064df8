//! Faults under MPI, one test per fault and mpirun mode: a worker rank killed, the same under
//! `keep_going`, `process::exit` in a task, a worker rank stopped, rank 0 killed. Each under
//! `mpirun -n 3`, by default (Open MPI ends the whole job when a process dies: the pool's error
//! must come first) and with `--enable-recovery` (rank 0 lives on: the error, then the pool
//! goes on with the live ranks).
//!
//! Each test runs twice: the outer run (plain `cargo test`) launches mpirun on this same test
//! binary with the test's name as filter; inside mpirun, rank 0 runs the body and ranks 1..2
//! become workers (the constructor in `common`). Without mpirun the outer run skips loudly, or
//! fails when `CI` is set.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pool_core::{Cause, MapOptions, PoolError, WorkerPool};

mod common;
use common::{MpiOnly, inside_mpirun, mpirun};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Task 40 meets the fault named by `POOL_MPI_FAULT` a while into the task, as a crash in
/// real work would, after writing the time to `POOL_MPI_FAULT_STAMP`.
fn faulty(x: u64) -> u64 {
    if x == 40 {
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(p) = std::env::var("POOL_MPI_FAULT_STAMP") {
            std::fs::write(p, now_ns().to_string()).unwrap();
        }
        match std::env::var("POOL_MPI_FAULT").as_deref() {
            Ok("exit") => std::process::exit(3),
            // SAFETY: plain syscalls on this process.
            Ok("stop") => unsafe {
                libc::kill(libc::getpid(), libc::SIGSTOP);
            },
            // SAFETY: as above; the rank dies at once, as an OOM kill or a segfault would.
            _ => unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            },
        }
    }
    std::thread::sleep(Duration::from_millis(5));
    x * 2
}

fn since_fault() -> Duration {
    let p = std::env::var("POOL_MPI_FAULT_STAMP").unwrap();
    let at: u128 = std::fs::read_to_string(p).unwrap().trim().parse().unwrap();
    Duration::from_nanos((now_ns() - at) as u64)
}

fn two_workers() -> WorkerPool<(), (), MpiOnly> {
    WorkerPool::<(), (), MpiOnly>::builder()
        .n_jobs(2)
        .build()
        .unwrap()
}

/// The body: the fault ends the call with a clear error within 2 s; then (when rank 0 is
/// still alive) the pool goes on with the live ranks.
fn clear_error(name: &str) {
    let mut pool = two_workers();
    let ok: Vec<u64> = pool.map(|x: u64| x + 1, 0..10u64).unwrap();
    assert_eq!(ok, (1..11).collect::<Vec<_>>());
    let err = pool
        .map_with(faulty, 0..200u64, MapOptions::default().chunk_size(4))
        .unwrap_err();
    let after = since_fault();
    println!("POOL-ERROR after {after:?}: {err}");
    let PoolError::Failed(f) = &err else {
        panic!("expected a worker failure, got {err:?}")
    };
    assert_eq!(f.cause, Cause::WorkerDied, "{err}");
    assert_eq!(f.task, Some(40), "the task the rank held: {err}");
    for word in ["MPI rank", "host", "pid"] {
        assert!(f.message.contains(word), "no {word:?} in: {err}");
    }
    assert!(
        after < Duration::from_secs(2),
        "reported {after:?} after the fault"
    );
    println!("MPI-FAULT-OK {name}");
    // The dead rank's worker moves to the live rank.
    let v: Vec<u64> = pool.map(|x: u64| x * 3, 0..50u64).unwrap();
    assert_eq!(v, (0..50).map(|x| x * 3).collect::<Vec<_>>());
    drop(pool);
    let mut again = two_workers();
    let v: Vec<u64> = again.map(|x: u64| x + 2, 0..10u64).unwrap();
    assert_eq!(v, (2..12).collect::<Vec<_>>());
    println!("MPI-FAULT-AFTER-OK {name}");
}

/// The body under `keep_going`: every entry comes back, the lost task as an error.
fn every_entry(name: &str) {
    let mut pool = two_workers();
    let out = pool.map_results(
        faulty,
        0..200u64,
        MapOptions::default().chunk_size(4).keep_going(0),
    );
    println!("fault reported, call ended {:?} after it", since_fault());
    assert_eq!(out.len(), 200);
    for (i, r) in out.into_iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(v, i as u64 * 2, "entry {i}"),
            Err(PoolError::Failed(f)) if i == 40 => {
                assert_eq!(f.cause, Cause::WorkerDied);
                println!("POOL-ERROR {f}");
            }
            Err(e) => panic!("entry {i}: {e}"),
        }
    }
    println!("MPI-FAULT-OK {name}");
    println!("MPI-FAULT-AFTER-OK {name}");
}

/// The outer run: mpirun on 3 ranks with `fault`, then what each mode promises.
fn outer(name: &str, fault: &str, recovery: bool) {
    let stamp = std::env::temp_dir().join(format!("pool-mpi-{name}-{}", std::process::id()));
    let stamp_s = stamp.to_string_lossy().into_owned();
    let env = [
        ("POOL_MPI_FAULT", fault),
        ("POOL_MPI_FAULT_STAMP", stamp_s.as_str()),
    ];
    let Some(run) = mpirun(name, 3, recovery, &env) else {
        return;
    };
    let _ = std::fs::remove_file(&stamp);
    assert!(
        run.took < Duration::from_secs(30),
        "mpirun took {:?}",
        run.took
    );
    if recovery {
        assert!(
            run.stdout.contains(&format!("MPI-FAULT-AFTER-OK {name}")),
            "the body did not pass (status {:?})",
            run.status
        );
        assert!(run.status.success(), "mpirun: {:?}", run.status);
    } else {
        // The job ends (Open MPI's default) after rank 0 reported the fault.
        assert!(!run.status.success(), "mpirun should fail the job");
        assert!(
            run.stdout.contains(&format!("MPI-FAULT-OK {name}"))
                || (name.contains("keep_going") && run.stderr.contains("pool-mpi: MPI rank")),
            "rank 0 did not report the fault before the job ended"
        );
    }
}

macro_rules! fault_tests {
    ($($name:ident: $fault:literal, $recovery:literal, $body:ident;)*) => {$(
        #[test]
        fn $name() {
            if inside_mpirun() {
                $body(stringify!($name));
            } else {
                outer(stringify!($name), $fault, $recovery);
            }
        }
    )*};
}

fault_tests! {
    killed_rank_default: "kill", false, clear_error;
    killed_rank_recovery: "kill", true, clear_error;
    killed_rank_keep_going_default: "kill", false, every_entry;
    killed_rank_keep_going_recovery: "kill", true, every_entry;
    exit_in_task_default: "exit", false, clear_error;
    exit_in_task_recovery: "exit", true, clear_error;
    stopped_rank_default: "stop", false, clear_error;
    stopped_rank_recovery: "stop", true, clear_error;
}

/// Rank 0 dies in the middle of a map: the worker ranks see it and exit, so mpirun ends.
fn rank0_dies(_name: &str) {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain syscalls on this process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    });
    let mut pool = two_workers();
    let _ = pool.map(
        |x: u64| {
            std::thread::sleep(Duration::from_millis(20));
            x
        },
        0..10_000u64,
    );
    unreachable!("rank 0 was killed");
}

fn outer_rank0(name: &str, recovery: bool) {
    let Some(run) = mpirun(name, 3, recovery, &[]) else {
        return;
    };
    // (With --enable-recovery mpirun's status is 0 even so: what matters is that it ends.)
    assert!(recovery || !run.status.success());
    assert!(
        run.took < Duration::from_secs(15),
        "mpirun took {:?}",
        run.took
    );
    if recovery {
        assert_eq!(
            run.stderr.matches("is gone; exiting").count(),
            2,
            "both worker ranks saw rank 0 go"
        );
    }
}

#[test]
fn killed_rank0_default() {
    if inside_mpirun() {
        rank0_dies("killed_rank0_default");
    } else {
        outer_rank0("killed_rank0_default", false);
    }
}

#[test]
fn killed_rank0_recovery() {
    if inside_mpirun() {
        rank0_dies("killed_rank0_recovery");
    } else {
        outer_rank0("killed_rank0_recovery", true);
    }
}
