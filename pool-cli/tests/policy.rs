//! Retries, `--halt`, and the exit status.

use std::time::{Duration, Instant};

use crate::util::*;

/// A job that fails until its third attempt (counted in a file).
fn flaky(dir: &std::path::Path) -> String {
    let f = dir.join("count");
    let f = f.to_str().unwrap();
    format!(
        ": {{}}; n=$(cat {f} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {f}; echo try $n; [ $n -ge 3 ]"
    )
}

#[test]
fn retries_until_success() {
    // GNU parallel's counting: --retries 3 is three tries in all.
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "run",
        "--retries",
        "3",
        "--shell",
        &flaky(dir.path()),
        ":::",
        "x",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Only the last attempt's output is printed.
    assert_eq!(stdout(&o), "try 3\n");
}

#[test]
fn too_few_retries_fail() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "run",
        "--retries",
        "2",
        "--shell",
        &flaky(dir.path()),
        ":::",
        "x",
    ]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "try 2\n");
    let count = std::fs::read_to_string(dir.path().join("count")).unwrap();
    assert_eq!(count.trim(), "2");
}

#[test]
fn retries_count_as_gnu_parallel() {
    // Each job prints its try number; only the last try's output is printed.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("n");
    let script = format!(
        "n=$(cat {f}{{}} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {f}{{}}; echo {{}} $n; exit 1",
        f = f.to_str().unwrap()
    );
    let recorded = Seen::new("a 2\n", 1);
    if let Some(mut g) = gnu_parallel(&["--retries", "2", &script, ":::", "a"]) {
        let o = g.output().unwrap();
        let _ = std::fs::remove_file(dir.path().join("na"));
        assert_eq!(Seen::new(&stdout(&o), code(&o)), recorded, "GNU parallel");
    }
    let o = run(&["run", "--retries", "2", &script, ":::", "a"]);
    assert_eq!(Seen::new(&stdout(&o), code(&o)), recorded, "{}", stderr(&o));
}

#[test]
fn halt_exit_status_as_gnu_parallel() {
    let codes = ["0", "7", "0", "9", "0", "4", "0"];
    let case = |halt: &str, out: &str, status: i32| {
        let mut args = vec!["-j1", "-k", "--halt", halt, "echo {}; exit {}", ":::"];
        args.extend(codes);
        like_gnu(&args, Seen::new(out, status), false);
    };
    // fail=1: the failing job's own exit code.
    case("now,fail=1", "0\n7\n", 7);
    case("soon,fail=1", "0\n7\n", 7);
    case("2", "0\n7\n", 7);
    // fail=N: the number of failed jobs.
    case("now,fail=2", "0\n7\n0\n9\n", 2);
    // success=: 0.
    case("now,success=1", "0\n", 0);
    case("-1", "0\n", 0);
    case("-2", "0\n", 0);
    // %: the percentage of all jobs that failed, rounded up (2 of 7).
    case("soon,fail=20%", "0\n7\n0\n9\n", 29);
    // done=1 on a job that failed: its exit code.
    like_gnu(
        &["-j1", "--halt", "now,done=1", "exit {}", ":::", "3", "0"],
        Seen::new("", 3),
        false,
    );
    // Never triggered: the number of failed jobs (or their percentage).
    like_gnu(
        &["-j1", "--halt", "now,fail=5", "exit {}", ":::", "3", "0"],
        Seen::new("", 1),
        false,
    );
}

#[test]
fn exit_status_counts_failures() {
    assert_eq!(code(&run(&["run", "true", ":::", "1", "2", "3"])), 0);
    let o = run(&["run", "--shell", "exit {}", ":::", "0", "1", "2", "0", "7"]);
    assert_eq!(code(&o), 3);
    let many: Vec<String> = (0..120).map(|i| i.to_string()).collect();
    let mut args = vec!["run", "-j4", "false", ":::"];
    args.extend(many.iter().map(String::as_str));
    assert_eq!(code(&run(&args)), 101, "capped at 101");
}

#[test]
fn a_command_that_cannot_start_fails_its_job() {
    let o = run(&["run", "no-such-command-pool-test", ":::", "1", "2"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot run `no-such-command-pool-test`"));
}

#[test]
fn halt_now_starts_nothing_more_and_kills_running_jobs() {
    let m = marker();
    let t0 = Instant::now();
    // Job 1 sleeps long; job 2 fails at once; jobs 3.. must never run.
    let o = run(&[
        "run",
        "-j2",
        "--halt",
        "now,fail=1",
        "--shell",
        "sleep {}; echo ran {}; exit 1",
        ":::",
        &m,
        "0",
        "0",
        "0",
        "0",
    ]);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(stdout(&o), "ran 0\n");
    assert!(stderr(&o).contains("--halt now,fail=1"), "{}", stderr(&o));
    assert_no_process(&m);
}

#[test]
fn halt_soon_lets_running_jobs_finish() {
    let o = run(&[
        "run",
        "-j2",
        "--halt",
        "soon,fail=1",
        "--shell",
        "sleep {}; echo ran {}; exit 1",
        ":::",
        "0.6",
        "0.2",
        "0",
        "0",
    ]);
    // The first failure comes 0.2 s in, when the 0.6 s job is surely running (a failure in
    // the first milliseconds could come before it started, and then it rightly never starts).
    assert_eq!(code(&o), 1, "the failing job's exit code: {}", stderr(&o));
    assert_eq!(sorted_lines(&stdout(&o)), ["ran 0.2", "ran 0.6"]);
}

#[test]
fn halt_on_a_percentage_of_all_jobs() {
    // 10 jobs, -j1: jobs 3 and 4 fail; 20% of 10 = 2 failures -> stop after job 4.
    let o = run(&[
        "run",
        "-j1",
        "-k",
        "--halt",
        "soon,fail=20%",
        "--shell",
        "echo {}; [ {} -ne 3 ] && [ {} -ne 4 ]",
        ":::",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
    ]);
    assert_eq!(
        code(&o),
        20,
        "the percentage of jobs that failed: {}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "1\n2\n3\n4\n");
}

#[test]
fn halt_on_success() {
    let o = run(&[
        "run",
        "-j1",
        "-k",
        "--halt",
        "now,success=1",
        "--shell",
        "echo {}; exit {}",
        ":::",
        "1",
        "0",
        "0",
    ]);
    assert_eq!(code(&o), 0, "success=: 0, as GNU parallel");
    assert_eq!(stdout(&o), "1\n0\n");
}
