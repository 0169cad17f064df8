//! Output of concurrent jobs is never mixed; `--results`, `--joblog` and `--insights`.

use std::fs;

use crate::util::*;

/// Each job writes 5 lines in two halves, sleeping in between, so that jobs overlap.
const CHATTY: &str =
    "for i in 1 2 3 4 5; do printf '%s-%s ' {} $i; sleep 0.01; printf '%s-%s\\n' {} $i; done";

fn inputs() -> Vec<&'static str> {
    vec!["a", "b", "c", "d", "e", "f", "g", "h"]
}

#[test]
fn grouped_output_is_one_block_per_job() {
    let mut args = vec!["run", "-j4", "--shell", CHATTY, ":::"];
    args.extend(inputs());
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 40);
    for block in lines.chunks(5) {
        let job = &block[0][..1];
        for (i, l) in block.iter().enumerate() {
            assert_eq!(*l, format!("{job}-{n} {job}-{n}", n = i + 1), "in {text}");
        }
    }
}

#[test]
fn line_buffered_output_keeps_lines_whole() {
    let mut args = vec!["run", "-j4", "--line-buffer", "--shell", CHATTY, ":::"];
    args.extend(inputs());
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let mut n = 0;
    for l in text.lines() {
        let (a, b) = l.split_once(' ').unwrap();
        assert_eq!(a, b, "line mixed: {l:?}");
        n += 1;
    }
    assert_eq!(n, 40);
}

#[test]
fn large_outputs_stay_whole() {
    // More than a pipe buffer (64 KiB) per job, on stdout and stderr.
    let o = run(&[
        "run",
        "-j3",
        "--shell",
        "seq {} 100000; seq 1 20000 >&2",
        ":::",
        "1",
        "2",
        "3",
    ]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    let mut lines = text.lines().peekable();
    let mut jobs = 0;
    while let Some(first) = lines.next() {
        let start: u32 = first.parse().unwrap();
        for want in start + 1..=100_000 {
            assert_eq!(lines.next().unwrap().parse::<u32>().unwrap(), want);
        }
        jobs += 1;
    }
    assert_eq!(jobs, 3);
    assert_eq!(
        o.stderr.len(),
        3 * (1..=20000)
            .map(|i: u32| i.to_string().len() + 1)
            .sum::<usize>()
    );
}

#[test]
fn stderr_goes_to_stderr() {
    let o = run(&["run", "--shell", "echo out {}; echo err {} >&2", ":::", "x"]);
    assert_eq!(stdout(&o), "out x\n");
    assert_eq!(stderr(&o), "err x\n");
}

#[test]
fn results_dir_has_each_jobs_output() {
    let dir = tempfile::tempdir().unwrap();
    let res = dir.path().join("res");
    let o = run(&[
        "run",
        "--results",
        res.to_str().unwrap(),
        "--shell",
        "echo out {}; echo err {} >&2",
        ":::",
        "a",
        "b",
    ]);
    assert_eq!(code(&o), 0);
    // GNU parallel's tree: DIR/<source>/<value>/{seq,stdout,stderr}.
    assert_eq!(
        fs::read_to_string(res.join("1/a/stdout")).unwrap(),
        "out a\n"
    );
    assert_eq!(
        fs::read_to_string(res.join("1/a/stderr")).unwrap(),
        "err a\n"
    );
    assert_eq!(fs::read_to_string(res.join("1/a/seq")).unwrap(), "1");
    assert_eq!(
        fs::read_to_string(res.join("1/b/stdout")).unwrap(),
        "out b\n"
    );
    // Output is still printed.
    assert_eq!(sorted_lines(&stdout(&o)), ["out a", "out b"]);
}

#[test]
fn joblog_has_gnu_parallel_columns() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("jobs.tsv");
    let o = run(&[
        "run",
        "-j2",
        "--joblog",
        log.to_str().unwrap(),
        "--shell",
        "printf hello; exit {}",
        ":::",
        "0",
        "3",
    ]);
    assert_eq!(code(&o), 1);
    let text = fs::read_to_string(&log).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"
    );
    let mut rows: Vec<Vec<String>> = lines
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    rows.sort_by_key(|r| r[0].parse::<u64>().unwrap());
    assert_eq!(rows.len(), 2);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 9, "{r:?}");
        assert_eq!(r[0], (i + 1).to_string());
        assert_eq!(r[1], ":");
        let start: f64 = r[2].parse().unwrap();
        assert!((now - start).abs() < 60.0, "start {start}");
        let runtime: f64 = r[3].trim().parse().unwrap();
        assert!((0.0..30.0).contains(&runtime));
        assert_eq!(r[4], "0");
        assert_eq!(r[5], "5", "Receive: bytes of stdout");
        assert_eq!(r[7], "0");
    }
    assert_eq!(rows[0][6], "0");
    assert_eq!(rows[1][6], "3");
    assert_eq!(rows[0][8], "printf hello; exit 0");
}

#[test]
fn insights_table() {
    let o = run(&[
        "run",
        "-j2",
        "--insights",
        "sleep",
        ":::",
        "0.1",
        "0.2",
        "0",
    ]);
    assert_eq!(code(&o), 0);
    let err = stderr(&o);
    assert!(
        err.contains("pool run insights: 3 jobs on 2 slots"),
        "{err}"
    );
    assert!(err.contains("slowest jobs:"), "{err}");
    assert!(err.contains("#2 0.2"), "{err}");
}

#[test]
fn closed_stdout_stops_the_run() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    // 400 jobs of 0.1 s on 2 slots would take 20 s; the reader leaves after one line.
    let inputs: Vec<String> = (1..=400).map(|i| i.to_string()).collect();
    let mut args = vec!["run", "-j2", "--shell", "seq 1 1000; sleep 0.1", ":::"];
    args.extend(inputs.iter().map(String::as_str));
    let t0 = Instant::now();
    let mut child = pool(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "1\n");
    // The reader is dropped here: our stdout is closed.
    wait_timeout(&mut child, Duration::from_secs(15));
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn progress_bar_leaves_stdout_alone() {
    for flag in ["--bar", "--eta"] {
        let o = run(&["run", "-k", flag, "echo", ":::", "a", "b"]);
        assert_eq!(code(&o), 0);
        assert_eq!(stdout(&o), "a\nb\n");
    }
}

#[test]
fn a_closed_stdout_ends_the_run_promptly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Duration;

    // `pool run --lb yes ::: a | head -1`
    let mut child = pool(&["run", "--lb", "yes", ":::", "a"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "a\n");
    drop(out);
    wait_timeout(&mut child, Duration::from_secs(5));

    // Grouped output: nothing is written until a job ends, yet the closed pipe is noticed.
    let mut child = pool(&["run", "yes", ":::", "a"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(child.stdout.take());
    wait_timeout(&mut child, Duration::from_secs(5));
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn results_tree_is_gnu_parallels() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    let o = run(&[
        "run",
        "--results",
        ours.to_str().unwrap(),
        "echo",
        ":::",
        "a",
        "b/c",
        ":::",
        "1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let recorded = [
        "1/a/2/1/seq",
        "1/a/2/1/stderr",
        "1/a/2/1/stdout",
        "1/b\\_c/2/1/seq",
        "1/b\\_c/2/1/stderr",
        "1/b\\_c/2/1/stdout",
    ];
    assert_eq!(tree(&ours), recorded);
    if let Some(mut g) = gnu_parallel(&[]) {
        let theirs = dir.path().join("theirs");
        g.args([
            "--results",
            theirs.to_str().unwrap(),
            "echo",
            ":::",
            "a",
            "b/c",
            ":::",
            "1",
        ]);
        assert!(g.output().unwrap().status.success());
        assert_eq!(tree(&theirs), recorded);
    }
    assert_eq!(
        fs::read_to_string(ours.join("1/b\\_c/2/1/stdout")).unwrap(),
        "b/c 1\n"
    );
}
