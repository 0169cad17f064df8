//! `--joblog` with `--resume` / `--resume-failed`: an interrupted run restarts where it stopped.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

/// The Seq of every whole job line of a job log, with how often it appears.
fn logged(log: &Path) -> Vec<u64> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut seqs: Vec<u64> = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| l.split('\t').next()?.parse().ok())
        .collect();
    seqs.sort();
    seqs
}

fn lines_of(p: &Path) -> BTreeSet<u64> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn resume_after_sigkill_runs_exactly_the_unfinished_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let started = dir.path().join("started");
    let script = format!("echo {{}} >> {}; sleep 0.2", started.display());
    let inputs: Vec<String> = (1..=30).map(|i| i.to_string()).collect();
    let mut args = vec![
        "run",
        "-j3",
        "--joblog",
        log.to_str().unwrap(),
        &script,
        ":::",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let mut child = pool(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while logged(&log).len() < 6 {
        assert!(Instant::now() < until, "the first run never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up or to finish the log
    child.wait().unwrap();
    let finished: BTreeSet<u64> = logged(&log).into_iter().collect();
    assert!(finished.len() < 30, "the run ended before it was killed");
    let first_run = lines_of(&started);
    fs::remove_file(&started).unwrap();

    let all: BTreeSet<u64> = (1..=30).collect();
    let unfinished: BTreeSet<u64> = all.difference(&finished).copied().collect();
    // What GNU parallel would run again from the same log, when it is installed.
    if let Some(mut g) = gnu_parallel(&[]) {
        let theirs = dir.path().join("gnu-log");
        fs::copy(&log, &theirs).unwrap();
        let mut gargs = vec![
            "-j3",
            "--joblog",
            theirs.to_str().unwrap(),
            "--resume",
            &script,
            ":::",
        ];
        gargs.extend(inputs.iter().map(String::as_str));
        assert!(g.args(&gargs).output().unwrap().status.success());
        assert_eq!(lines_of(&started), unfinished, "GNU parallel --resume");
        fs::remove_file(&started).unwrap();
    }

    args.insert(1, "--resume");
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        lines_of(&started),
        unfinished,
        "the rerun runs exactly the unfinished jobs"
    );
    assert!(first_run.is_superset(&finished));
    // Every job is in the log exactly once.
    assert_eq!(logged(&log), (1..=30).collect::<Vec<u64>>());
}

#[test]
fn resume_failed_runs_the_failed_jobs_again() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let script = format!("echo {{}} >> {}; [ {{}} != 3 ]", ran.display());
    let mut results = Vec::new();
    let mut runs: Vec<(&str, Option<std::process::Command>)> = vec![("pool", None)];
    if let Some(g) = gnu_parallel(&[]) {
        runs.push(("GNU parallel", Some(g)));
    }
    for (who, gnu) in runs {
        let log = dir.path().join(format!("log-{who}"));
        let _ = fs::remove_file(&ran);
        let base = ["-j1", "--joblog", log.to_str().unwrap()];
        let tail = [script.as_str(), ":::", "1", "2", "3", "4"];
        let go = |extra: &[&str]| {
            let mut a: Vec<&str> = base.to_vec();
            a.extend(extra);
            a.extend(tail);
            match &gnu {
                Some(_) => {
                    let mut g = gnu_parallel(&a).unwrap();
                    code(&g.output().unwrap())
                }
                None => {
                    a.insert(0, "run");
                    code(&run(&a))
                }
            }
        };
        let c1 = go(&[]);
        let c2 = go(&["--resume"]);
        let c3 = go(&["--resume-failed"]);
        let text = fs::read_to_string(&ran).unwrap();
        results.push((who, c1, c2, c3, text));
    }
    for (who, c1, c2, c3, text) in &results {
        assert_eq!(
            (*c1, *c2, *c3, text.as_str()),
            (1, 0, 1, "1\n2\n3\n4\n3\n"),
            "{who}: first run, --resume (nothing left), --resume-failed (job 3 again)"
        );
    }
}

#[test]
fn jobs_of_a_killed_resumable_run_die_with_it() {
    // With --joblog, a job must not go on beside the rerun that --resume would start.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let m = marker();
    let mut child = pool(&[
        "run",
        "-j2",
        "--joblog",
        log.to_str().unwrap(),
        "sleep",
        ":::",
        &m,
        &m,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for_processes(&format!("sleep {m}"), 2);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_no_process(&m);
}
