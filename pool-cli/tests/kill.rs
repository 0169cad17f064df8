//! Killing: `--timeout` and Ctrl-C take the whole process group (grandchildren included).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn timeout_kills_grandchildren() {
    let m = marker();
    let script = format!("sleep {m} & sleep {m}; echo never");
    let t0 = Instant::now();
    let o = run(&["run", "--timeout", "0.5", "--shell", &script, ":::", "1"]);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("job 1 timed out after 500ms"),
        "{}",
        stderr(&o)
    );
    assert_no_process(&m);
}

#[test]
fn timeout_kills_jobs_that_ignore_sigterm() {
    let m = marker();
    let script = format!("trap '' TERM; sleep {m} & sleep {m}");
    let t0 = Instant::now();
    let o = run(&[
        "run",
        "--timeout",
        "300ms",
        "--shell",
        &script,
        ":::",
        "1",
        "2",
    ]);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_no_process(&m);
}

#[test]
fn timeout_spares_quick_jobs() {
    let o = run(&[
        "run",
        "-k",
        "--timeout",
        "1",
        "--shell",
        "sleep {}; echo {}",
        ":::",
        "0",
        "30",
        "0.1",
    ]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "0\n0.1\n");
}

#[test]
fn timed_out_job_in_joblog() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let o = run(&[
        "run",
        "--timeout",
        "0.2",
        "--joblog",
        log.to_str().unwrap(),
        "sleep",
        ":::",
        "30",
    ]);
    assert_eq!(code(&o), 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let cols: Vec<&str> = text.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(cols[6], "-1", "Exitval of a killed job");
    assert_eq!(cols[7], "15", "Signal: SIGTERM");
    assert_eq!(cols[8], "sleep 30");
}

#[test]
fn ctrl_c_kills_every_job_and_its_children() {
    let m = marker();
    let script = format!("sleep {m} & sleep {m}; echo never");
    let mut child = pool(&[
        "run", "-j3", "--shell", &script, ":::", "1", "2", "3", "4", "5",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // 3 jobs running, each with a child and a grandchild sleeping.
    wait_for_processes(&format!("sleep {m}"), 6);
    let t0 = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    assert_no_process(&m);
    let out = child.wait_with_output().unwrap();
    assert!(!stdout(&out).contains("never"));
    assert!(stderr(&out).contains("SIGINT"), "{}", stderr(&out));
}

#[test]
fn sigterm_to_the_runner_also_cleans_up() {
    let m = marker();
    let mut child = pool(&["run", "-j2", "sleep", ":::", &m, &m, &m])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_processes(&format!("sleep {m}"), 2);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    assert_no_process(&m);
}

#[test]
fn ctrl_c_while_waiting_for_more_stdin() {
    use std::io::Write;

    let m = marker();
    let mut child = pool(&["run", "-j2", "sleep"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // One job runs; the runner then waits for a second line that never comes.
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{m}").unwrap();
    wait_for_processes(&format!("sleep {m}"), 1);
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    assert_no_process(&m);
    drop(stdin);
}

#[test]
fn a_background_child_holding_the_output_does_not_hold_the_slot() {
    // GNU parallel: the job is over when its command exits; a child it left behind, still
    // holding the output pipe, neither delays the job nor is killed.
    let m = marker();
    let t0 = Instant::now();
    let o = run(&[
        "run",
        "-j1",
        "--shell",
        &format!("sleep {m} & echo {{}}"),
        ":::",
        "a",
        "b",
    ]);
    let took = t0.elapsed();
    let left = processes_with(&format!("sleep {m}"));
    for p in &left {
        let pid = p.split(':').next().unwrap();
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "a\nb\n");
    assert_eq!(
        left.len(),
        2,
        "the background children live on, as in GNU parallel"
    );
}

#[test]
fn timeout_kills_a_grandchild_that_left_the_process_group() {
    let m = marker();
    let t0 = Instant::now();
    let o = run(&[
        "run",
        "--timeout",
        "1",
        "--shell",
        &format!("setsid sleep {m} & sleep {m}"),
        ":::",
        "1",
    ]);
    let took = t0.elapsed();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_no_process(&m);
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
