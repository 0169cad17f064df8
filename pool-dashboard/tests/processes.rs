//! Real processes: several report to one dashboard at once (connected through the
//! environment), and a process whose dashboard is gone warns exactly once.
//!
//! The children are this test binary, re-run on one `#[ignore]`d test that does nothing
//! unless [`CHILD_ENV`] is set.

use std::collections::HashSet;
use std::process::{Command, Output};
use std::time::Duration;

use pool_core::MapOptions;
use pool_dashboard::{ADDR_ENV, TOKEN_ENV, connect_to_dashboard};

use crate::support::{all_calls, calls, dashboard, pool};

const CHILD_ENV: &str = "POOL_DASHBOARD_TEST_CHILD";

fn child(test: &str, envs: &[(&str, String)]) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the test binary re-runs")
}

fn done(out: &Output) -> String {
    let text = format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(out.stdout.windows(9).any(|w| w == b"1 passed;"), "{text}");
    text
}

fn three_calls() {
    for n in [20u64, 30, 40] {
        let mut p = pool(2, false);
        let out = p
            .map_with(
                |x: u64| {
                    std::thread::sleep(Duration::from_millis(2));
                    x
                },
                (0..n).collect::<Vec<_>>(),
                MapOptions::default().progress_bar(true),
            )
            .unwrap();
        assert_eq!(out.len() as u64, n);
    }
}

#[test]
#[ignore = "a child process of `many_processes_report_to_one_dashboard`"]
fn child_reports_through_the_environment() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    three_calls();
}

#[test]
#[ignore = "a child process of `a_process_whose_dashboard_is_gone_warns_once`"]
fn child_loses_its_dashboard() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let d = dashboard();
    connect_to_dashboard(&d.addr().to_string(), d.token()).unwrap();
    d.shutdown();
    three_calls();
    three_calls();
}

#[test]
fn many_processes_report_to_one_dashboard() {
    let d = dashboard();
    let envs = [
        (ADDR_ENV, d.addr().to_string()),
        (TOKEN_ENV, d.token().to_string()),
    ];
    let test = "processes::child_reports_through_the_environment";
    let kids: Vec<_> = (0..2).map(|_| child(test, &envs)).collect();
    let pids: HashSet<u32> = kids.iter().map(|k| k.id()).collect();
    for k in kids {
        done(&k.wait_with_output().unwrap());
    }
    let snap = calls(&d);
    let pools = snap["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 6, "two processes, three pools each: {snap:#}");
    let seen: HashSet<u32> = pools
        .iter()
        .map(|p| p["process"]["pid"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(seen, pids);
    let calls = all_calls(&d);
    assert_eq!(calls.len(), 6);
    assert!(calls.iter().all(|c| c["state"] == "done"), "{calls:#?}");
    let mut totals: Vec<u64> = calls.iter().map(|c| c["done"].as_u64().unwrap()).collect();
    totals.sort();
    assert_eq!(totals, [20, 20, 30, 30, 40, 40]);
}

#[test]
fn a_process_whose_dashboard_is_gone_warns_once() {
    let out = child("processes::child_loses_its_dashboard", &[])
        .wait_with_output()
        .unwrap();
    let text = done(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings = stderr.matches("warning: pool-dashboard").count();
    assert_eq!(warnings, 1, "{text}");
    assert!(stderr.contains("the pool keeps working"), "{text}");
}
