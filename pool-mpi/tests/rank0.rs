//! What rank 0 sees of MPI workers beyond the shared suite: progress fed by the worker ranks'
//! counters, insights, and the configuration errors of `StartMethod::Mpi`.
//!
//! Run under mpirun by the outer run of each test, as in `faults.rs`.

use std::time::Duration;

use pool_core::{MapOptions, PoolError, WorkerPool};

mod common;
use common::{MpiOnly, PROGRESS, inside_mpirun, under_mpirun};

fn slow_double(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * 2
}

#[test]
fn progress_and_insights_on_rank_0() {
    let name = "progress_and_insights_on_rank_0";
    if !inside_mpirun() {
        under_mpirun(name, 3);
        return;
    }
    let mut pool = WorkerPool::<(), (), MpiOnly>::builder()
        .enable_insights(true)
        .build()
        .unwrap();
    assert_eq!(pool.n_jobs(), 2, "n_jobs defaults to the worker ranks");
    let out: Vec<u64> = pool
        .map_with(
            slow_double,
            0..60u64,
            MapOptions::default().progress_bar(true).chunk_size(5),
        )
        .unwrap();
    assert_eq!(out, (0..60).map(|x| x * 2).collect::<Vec<_>>());
    let seen = PROGRESS.lock().unwrap().clone();
    let last = seen.last().unwrap();
    assert_eq!(last.done, 60, "{last:?}");
    // Counted while running, from the ranks' reports: done grew through values between.
    assert!(
        seen.iter().any(|s| s.done > 0 && s.done < 60),
        "no intermediate progress: {:?}",
        seen.iter().map(|s| s.done).collect::<Vec<_>>()
    );
    assert!(
        seen.iter().any(|s| s.running > 0),
        "never saw a running task"
    );
    let insights = pool.get_insights().0;
    let tasks: u64 = insights.iter().map(|t| t.n_completed_tasks).sum();
    assert_eq!(tasks, 60, "{insights:?}");
    // Each worker is named by its rank and host.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for t in &insights {
        let want = format!("MPI rank {} on {}", t.worker + 1, host.trim());
        assert_eq!(t.location.as_deref(), Some(want.as_str()), "{t:?}");
    }
    assert!(
        insights
            .iter()
            .all(|t| t.working >= Duration::from_millis(100))
    );
    println!("MPI-FAULT-OK {name}");
}

#[test]
fn configuration_errors_are_clear() {
    let name = "configuration_errors_are_clear";
    if !inside_mpirun() {
        under_mpirun(name, 3);
        return;
    }
    let err = WorkerPool::<(), (), MpiOnly>::builder()
        .n_jobs(3)
        .build()
        .unwrap_err();
    assert!(matches!(err, PoolError::InvalidConfig(_)), "{err}");
    assert!(err.to_string().contains("2 worker ranks"), "{err}");

    let mut pool = WorkerPool::<(), (), MpiOnly>::builder().build().unwrap();
    let offset = 7u64;
    let err = pool.map(move |x: u64| x + offset, 0..4u64).unwrap_err();
    assert!(err.to_string().contains("capture nothing"), "{err}");

    let err = WorkerPool::<(), (), MpiOnly>::builder()
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("another StartMethod::Mpi pool"),
        "{err}"
    );
    drop(pool);
    let mut again = WorkerPool::<(), (), MpiOnly>::builder().build().unwrap();
    let v: Vec<u64> = again.map(|x: u64| x + 1, 0..4u64).unwrap();
    assert_eq!(v, vec![1, 2, 3, 4]);
    println!("MPI-FAULT-OK {name}");
}

/// Ranks 1 and 2 run a copy of this binary with one byte more: functions travel as offsets
/// into the binary, so pool creation must fail, naming the rank, before any offset is used.
#[test]
fn a_rank_running_another_binary_is_refused() {
    let name = "a_rank_running_another_binary_is_refused";
    if inside_mpirun() {
        let err = WorkerPool::<(), (), MpiOnly>::builder()
            .build()
            .unwrap_err();
        println!("POOL-ERROR {err}");
        assert!(matches!(err, PoolError::InvalidConfig(_)), "{err}");
        let text = err.to_string();
        for word in [
            "different executable",
            "MPI rank 1 ",
            "likewise MPI rank(s) 2",
            "host",
            "pid",
            "same build",
        ] {
            assert!(text.contains(word), "no {word:?} in: {text}");
        }
        println!("MPI-FAULT-OK {name}");
        return;
    }
    if !common::have_mpirun() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let copy = std::env::temp_dir().join(format!("pool-mpi-other-{}", std::process::id()));
    let mut bytes = std::fs::read(&exe).unwrap();
    bytes.push(0);
    std::fs::write(&copy, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let args = [name, "--exact", "--nocapture", "--test-threads=1"];
    let out = common::mpirun_command()
        .args(["-n", "1"])
        .arg(&exe)
        .args(args)
        .arg(":")
        .args(["-n", "2"])
        .arg(&copy)
        .args(args)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&copy);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&format!("MPI-FAULT-OK {name}")),
        "{:?}",
        out.status
    );
    assert!(out.status.success(), "{:?}", out.status);
}

fn sleeps_long(x: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(20));
    x
}

/// Whether this process has a SIGINT handler of its own (the pool's, while a call runs).
fn sigint_is_handled() -> bool {
    !pool_core::interrupt::sigint_is_default()
}

/// Ctrl-C on rank 0 (a real SIGINT to the process, as a terminal sends it) ends a map with
/// `PoolError::Interrupted`: the worker ranks' tasks are stopped, and the next call runs on new
/// workers. Before the MPI back end listened for it, SIGINT killed rank 0 and the job.
#[test]
fn ctrl_c_on_rank_0_ends_the_call_and_the_pool_goes_on() {
    let name = "ctrl_c_on_rank_0_ends_the_call_and_the_pool_goes_on";
    if !inside_mpirun() {
        under_mpirun(name, 3);
        return;
    }
    let mut pool = WorkerPool::<(), (), MpiOnly>::builder().build().unwrap();
    let ctrl_c = std::thread::spawn(|| {
        // Once the call runs (its handler is in place) and the tasks have started.
        while !sigint_is_handled() {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill(2) on this very process, with the signal the pool now handles.
        unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
    });
    let err = pool
        .map_with(sleeps_long, 0..4u64, MapOptions::default().chunk_size(1))
        .unwrap_err();
    ctrl_c.join().unwrap();
    assert!(matches!(err, PoolError::Interrupted), "{err}");
    assert!(!sigint_is_handled(), "the handler is gone after the call");
    let out: Vec<u64> = pool
        .map_with(slow_double, 0..6u64, MapOptions::default())
        .unwrap();
    assert_eq!(out, (0..6).map(|x| x * 2).collect::<Vec<_>>());
    println!("MPI-FAULT-OK {name}");
}
