//! The harness measures every Rust contender in a fresh child process (`--one CONTENDER
//! WORKLOAD`, issue #17): the child's row is checked against the reference, every contender's
//! rows come back through it, and `--check-alone` compares the harness with a contender alone.
//! No timing is asserted: only that the answers are right and the reports are whole.

use std::process::Command;

use pool_bench::results::{Row, Status};
use pool_bench::workload::{Sizes, WorkloadKind, reference_checksum};

const EXE: &str = env!("CARGO_BIN_EXE_pool-bench");
const K: u64 = 50;

fn tiny() -> Sizes {
    Sizes {
        trivial_n: 5000,
        per_task_n: 40,
        round_trips: 3,
        big_results: 3,
        big_result_bytes: 1 << 16,
        payload_tasks: 3,
        ..Sizes::quick()
    }
}

fn bench(args: &[&str]) -> std::process::Output {
    let sizes = serde_json::to_string(&tiny()).unwrap();
    let out = Command::new(EXE)
        .args(args)
        .args([
            "--n-jobs",
            "2",
            "--k-per-ms",
            &K.to_string(),
            "--sizes",
            &sizes,
        ])
        .output()
        .expect("running pool-bench");
    assert!(
        out.status.success(),
        "pool-bench {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn one_prints_its_checked_row_as_json() {
    let out = bench(&["--one", "rayon", "steady-slice", "--runs", "2"]);
    let row: Row = serde_json::from_slice(&out.stdout).expect("one JSON row on stdout");
    assert_eq!(row.contender, "rayon");
    assert_eq!(row.status, Status::Ok, "{:?}", row.error);
    assert_eq!(row.times_s.len(), 2);
    let expected = reference_checksum(WorkloadKind::SteadySlice, &tiny(), K);
    assert_eq!(
        (row.checksum, row.expected_checksum),
        (Some(expected), expected)
    );
}

#[test]
fn one_marks_a_wrong_reference_invalid() {
    let out = bench(&[
        "--one", "rayon", "trivial", "--runs", "1", "--expect", "12345",
    ]);
    let row: Row = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row.status, Status::Invalid);
    assert!(row.times_s.is_empty());
}

/// Every contender on every Rust-only row of issue #17 (and `trivial`), each round in a child:
/// all answers right, every row whole, the rates in the notes.
#[test]
fn the_harness_runs_every_row_through_children() {
    let dir = std::env::temp_dir().join(format!("pool-bench-isolation-{}", std::process::id()));
    let only = "trivial,steady-range,steady-slice,steady-owned,steady-words,fresh-range,per-task,\
                round-trips,big-results";
    bench(&[
        "--only",
        only,
        "--skip-python",
        "--runs",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let json = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let workloads = report["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 9);
    for w in workloads {
        let rows: Vec<_> = w["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["language"] == "rust")
            .collect();
        let names: Vec<_> = rows
            .iter()
            .map(|r| r["contender"].as_str().unwrap())
            .collect();
        let name = w["workload"].as_str().unwrap();
        for needed in ["pool-fork", "pool-spawn", "pool-threading"] {
            assert!(
                names.contains(&needed),
                "{name}: no {needed} row in {names:?}"
            );
        }
        if name != "per-task" {
            assert!(
                names.contains(&"rayon"),
                "{name}: no rayon row in {names:?}"
            );
        }
        for r in rows {
            let row: Row = serde_json::from_value((*r).clone()).unwrap();
            assert_eq!(
                row.status,
                Status::Ok,
                "{name} {}: {:?}",
                row.contender,
                row.error
            );
            assert_eq!(row.times_s.len(), 2, "{name} {}", row.contender);
            let rate = row.note.as_deref().unwrap_or_default();
            match name {
                "per-task" => assert!(rate.contains("per task"), "{name}: note {rate:?}"),
                "round-trips" | "big-results" => assert!(rate.contains("GB/s"), "{rate:?}"),
                _ => {}
            }
        }
    }
}

#[test]
fn check_alone_prints_the_three_medians() {
    let out = bench(&["--check-alone", "rayon", "--only", "trivial", "--runs", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for variant in ["alone:", "harness:", "in-process:"] {
        assert!(text.contains(variant), "no {variant} line in {text}");
    }
}
