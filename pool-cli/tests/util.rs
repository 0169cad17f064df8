//! Running the binary and looking for leftover processes.

use std::io::Write;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `pool` binary, with the given arguments, stdin closed.
pub(crate) fn pool(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pool"));
    c.args(args).stdin(Stdio::null());
    c
}

/// Runs `pool` to its end.
pub(crate) fn run(args: &[&str]) -> Output {
    pool(args).output().expect("pool runs")
}

/// Runs `pool` with `input` on stdin.
pub(crate) fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut child = pool(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pool starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("pool runs");
    writer.join().unwrap();
    out
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().expect("pool exits with a code")
}

/// Sorted lines.
pub(crate) fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// A number no other test (or run) uses, to find our own `sleep` processes by their argv.
pub(crate) fn marker() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{}{:03}.{}", 7000 + std::process::id() % 1000, n, 7)
}

/// Live (non-zombie) processes whose command line contains `needle`.
pub(crate) fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if cmd.contains(needle) && !zombie {
            found.push(format!("{pid}: {cmd}"));
        }
    }
    found
}

/// Waits (up to 3 s) until no live process has `needle` in its command line.
pub(crate) fn assert_no_process(needle: &str) {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_with(needle);
        if left.is_empty() {
            return;
        }
        if Instant::now() > until {
            panic!("processes left behind: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (up to 10 s) until `n` live processes have `needle` in their command line.
pub(crate) fn wait_for_processes(needle: &str, n: usize) {
    let until = Instant::now() + Duration::from_secs(10);
    while processes_with(needle).len() < n {
        assert!(Instant::now() < until, "jobs with {needle} never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` at most `limit`.
pub(crate) fn wait_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let until = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("pool did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a run printed on stdout and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) stdout: String,
    pub(crate) code: i32,
}

impl Seen {
    pub(crate) fn new(stdout: &str, code: i32) -> Self {
        Seen {
            stdout: stdout.to_string(),
            code,
        }
    }

    fn of(o: &Output, sort: bool) -> Self {
        let text = stdout(o);
        let text = if sort {
            sorted_lines(&text)
                .iter()
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            text
        };
        Seen {
            stdout: text,
            code: code(o),
        }
    }
}

/// GNU parallel, run like `pool run` (stdin closed, its own config dir, no citation notice).
pub(crate) fn gnu_parallel(args: &[&str]) -> Option<Command> {
    let found = Command::new("parallel")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "GNU parallel is not installed, and CI must compare with it (apt-get install parallel)"
        );
        eprintln!(
            "\n*** SKIPPED: the comparison with GNU parallel (not installed); checked against the \
             recorded expectation only ***\n"
        );
        return None;
    }
    let home = std::env::temp_dir().join("pool-cli-tests-parallel-home");
    let _ = std::fs::create_dir_all(&home);
    let _ = std::fs::write(home.join("will-cite"), "");
    let mut c = Command::new("parallel");
    c.args(args)
        .env("PARALLEL_HOME", &home)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null());
    Some(c)
}

/// `pool run ARGS` prints and exits as `recorded`, and so does `parallel ARGS` when GNU parallel
/// is installed (the recorded expectation is GNU's behaviour, checked whenever it can be).
/// With `sort`, lines are compared sorted (completion order may differ).
pub(crate) fn like_gnu(args: &[&str], recorded: Seen, sort: bool) {
    like_gnu_stdin(args, None, recorded, sort)
}

/// [`like_gnu`] with `input` on stdin.
pub(crate) fn like_gnu_stdin(args: &[&str], input: Option<&[u8]>, recorded: Seen, sort: bool) {
    let feed = |mut c: Command| -> Output {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().expect("starts");
        if let Some(bytes) = input {
            let mut w = child.stdin.take().unwrap();
            let bytes = bytes.to_vec();
            std::thread::spawn(move || {
                let _ = w.write_all(&bytes);
            });
        }
        child.wait_with_output().expect("runs")
    };
    if let Some(g) = gnu_parallel(args) {
        let o = feed(g);
        assert_eq!(
            Seen::of(&o, sort),
            recorded,
            "GNU parallel {args:?} no longer behaves as recorded; stderr: {}",
            stderr(&o)
        );
    }
    let mut p = pool(&["run"]);
    p.args(args);
    let o = feed(p);
    assert_eq!(
        Seen::of(&o, sort),
        recorded,
        "pool run {args:?} differs from GNU parallel; stderr: {}",
        stderr(&o)
    );
}

/// Runs `c` with `input` on stdin, to its end.
pub(crate) fn feed(c: &mut Command, input: &[u8]) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut w = child.stdin.take().unwrap();
    let bytes = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&bytes);
    });
    let out = child.wait_with_output().expect("runs");
    writer.join().unwrap();
    out
}
