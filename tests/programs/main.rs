//! Whole programs as users write them, run as child processes, and what a person sees: `main`
//! returning a `PoolError` after a task panicked, and the Spawn trap (a `main` without
//! `pool::entry()`).
//!
//! This binary has its own `main` (`harness = false`) and, on purpose, no `pool::entry()`: run
//! plainly it runs the checks below; with `POOL_TEST_PROGRAM=<name>` it is that program. Each
//! program appends a line to the file named by `POOL_TEST_MAIN_LOG` every time its `main`
//! starts, so a check can count how often `main` ran (spawned workers inherit both variables).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pool::{PoolError, StartMethod, WorkerPool};

const PROGRAM: &str = "POOL_TEST_PROGRAM";
const MAIN_LOG: &str = "POOL_TEST_MAIN_LOG";
/// Set by `entry_in_the_parent_only` once it ran the hook, so its workers (which inherit it)
/// skip the hook: a hook behind a condition that workers see differently.
const HOOK_RAN: &str = "POOL_TEST_HOOK_RAN";

fn main() -> Result<(), PoolError> {
    let Ok(program) = std::env::var(PROGRAM) else {
        run_checks();
        return Ok(());
    };
    log_main_started();
    match program.as_str() {
        "task_panics" => task_panics(),
        "spawn_without_entry" => spawn_without_entry(),
        "entry_in_the_parent_only" => entry_in_the_parent_only(),
        "prompt_then_fork_workers_that_print" => prompt_then_fork_workers_that_print(),
        "stdout_held_while_a_thread_forks_workers" => stdout_held_while_a_thread_forks_workers(),
        other => panic!("no program {other}"),
    }
}

// ---- the programs ----

fn two_workers(method: StartMethod) -> Result<WorkerPool, PoolError> {
    WorkerPool::builder().n_jobs(2).start_method(method).build()
}

/// The README's pattern, `main -> Result<(), PoolError>`, when a task panics.
fn task_panics() -> Result<(), PoolError> {
    let mut pool = two_workers(StartMethod::Fork)?;
    pool.map(
        |x: u64| {
            if x == 3 {
                panic!("cannot parse record {x}");
            }
            x
        },
        0..10u64,
    )?;
    Ok(())
}

/// A Spawn pool in a program whose `main` forgot `pool::entry()`.
fn spawn_without_entry() -> Result<(), PoolError> {
    let mut pool = two_workers(StartMethod::Spawn)?;
    let out = pool.map(|x: u64| x + 1, 0..10u64)?;
    println!("mapped {} inputs", out.len());
    Ok(())
}

/// The hook runs in the parent, but the workers skip it.
fn entry_in_the_parent_only() -> Result<(), PoolError> {
    if std::env::var_os(HOOK_RAN).is_none() {
        pool::entry();
        // SAFETY: no other thread runs yet (the pool starts below).
        unsafe { std::env::set_var(HOOK_RAN, "1") };
    }
    spawn_without_entry()
}

/// A line begun with `print!` (still in `stdout`'s buffer) when Fork workers are made, and
/// workers that print: the line's start is the parent's, written once.
fn prompt_then_fork_workers_that_print() -> Result<(), PoolError> {
    print!("squaring: ");
    let mut pool = two_workers(StartMethod::Fork)?;
    pool.map(
        |x: u64| {
            println!("task {x}");
            x * x
        },
        0..4u64,
    )?;
    println!("done");
    Ok(())
}

/// `main` holds `stdout`'s lock while another thread makes Fork workers and waits for them.
fn stdout_held_while_a_thread_forks_workers() -> Result<(), PoolError> {
    let mut out = std::io::stdout().lock();
    let squares = std::thread::spawn(|| {
        let mut pool = two_workers(StartMethod::Fork)?;
        pool.map(|x: u64| x * x, 0..4u64)
    })
    .join()
    .expect("the pool's thread")?;
    writeln!(out, "squares {squares:?}").expect("stdout");
    Ok(())
}

fn log_main_started() {
    if let Some(path) = std::env::var_os(MAIN_LOG) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        writeln!(f, "main started in pid {}", std::process::id()).unwrap();
    }
}

// ---- the checks ----

fn run_checks() {
    let checks: [(&str, fn()); 7] = [
        (
            "main_result_prints_a_short_report",
            main_result_prints_a_short_report,
        ),
        (
            "main_result_prints_the_backtrace_when_asked",
            main_result_prints_the_backtrace_when_asked,
        ),
        (
            "spawn_without_entry_fails_at_once_and_main_runs_once",
            spawn_without_entry_fails_at_once_and_main_runs_once,
        ),
        (
            "a_worker_that_skips_the_hook_stops_at_its_first_pool",
            a_worker_that_skips_the_hook_stops_at_its_first_pool,
        ),
        (
            "fork_workers_of_the_main_thread_reuse_the_pages_of_big_buffers",
            fork_workers_of_the_main_thread_reuse_the_pages_of_big_buffers,
        ),
        (
            "fork_workers_do_not_repeat_what_the_parent_left_in_stdout_s_buffer",
            fork_workers_do_not_repeat_what_the_parent_left_in_stdout_s_buffer,
        ),
        (
            "a_held_stdout_lock_does_not_stop_fork_workers_from_starting",
            a_held_stdout_lock_does_not_stop_fork_workers_from_starting,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut ran = 0;
    for (name, check) in checks {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        check();
        println!("test {name} ... ok");
        ran += 1;
    }
    println!("{ran} passed, 0 failed");
}

/// A program's outcome: its output, and how many times its `main` started.
struct Run {
    out: Output,
    mains: usize,
    took: Duration,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
}

/// Runs `program` (this binary) with `env`; kills its whole process group after `limit`.
fn run(program: &str, env: &[(&str, &str)], limit: Duration) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mains");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(PROGRAM, program)
        .env(MAIN_LOG, &log)
        .env_remove(HOOK_RAN)
        .env_remove("RUST_BACKTRACE")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a runaway tree can be killed whole.
        .process_group(0);
    let t0 = Instant::now();
    let child = cmd.spawn().unwrap();
    let pgid = child.id() as libc::pid_t;
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        // SAFETY: kill(pid, 0) only checks that the process exists.
        while Instant::now() < deadline && unsafe { libc::kill(pgid, 0) } == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: signals our own child's process group (it may be gone: ESRCH is fine).
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    });
    let out = child.wait_with_output().unwrap();
    let took = t0.elapsed();
    // SAFETY: as above; ends what is left of the group now, so the watchdog returns.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    watchdog.join().unwrap();
    let mains = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    Run { out, mains, took }
}

fn main_result_prints_a_short_report() {
    let r = run(
        "task_panics",
        &[("RUST_BACKTRACE", "0")],
        Duration::from_secs(60),
    );
    let stderr = r.stderr();
    assert_eq!(r.out.status.code(), Some(1), "{stderr}");
    let report = stderr
        .lines()
        .skip_while(|l| !l.starts_with("Error: "))
        .collect::<Vec<_>>();
    assert!(
        report[0].starts_with("Error: task #3 panicked in worker ")
            && report[0].ends_with(" (args: 3): cannot parse record 3"),
        "{stderr}"
    );
    assert!(
        stderr.len() < 400,
        "{} bytes on stderr:\n{stderr}",
        stderr.len()
    );
    assert!(!stderr.contains("worker backtrace:\n"), "{stderr}");
    assert!(stderr.contains("RUST_BACKTRACE=1"), "the hint: {stderr}");
}

fn main_result_prints_the_backtrace_when_asked() {
    let r = run(
        "task_panics",
        &[("RUST_BACKTRACE", "1")],
        Duration::from_secs(60),
    );
    let stderr = r.stderr();
    assert_eq!(r.out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("\nworker backtrace:\n"), "{stderr}");
    // Readable: real line breaks, not one escaped line.
    assert!(!stderr.contains("\\n"), "{stderr}");
}

fn spawn_without_entry_fails_at_once_and_main_runs_once() {
    let r = run("spawn_without_entry", &[], Duration::from_secs(30));
    let stderr = r.stderr();
    assert_eq!(r.out.status.code(), Some(1), "{stderr}");
    assert_eq!(r.mains, 1, "main ran {} times:\n{stderr}", r.mains);
    assert!(
        stderr.starts_with("Error: invalid configuration: "),
        "{stderr}"
    );
    assert!(stderr.contains("`pool::entry()`"), "{stderr}");
    assert!(r.took < Duration::from_secs(20), "took {:?}", r.took);
}

/// Fork copies the parent's memory, `stdout`'s buffer included: a worker's first line would
/// write out again whatever the parent had not flushed yet.
fn fork_workers_do_not_repeat_what_the_parent_left_in_stdout_s_buffer() {
    let stdout = stdout_of_a_clean_run("prompt_then_fork_workers_that_print");
    assert_eq!(stdout.matches("squaring: ").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("task ").count(), 4, "{stdout}");
    assert!(stdout.ends_with("done\n"), "{stdout}");
}

/// The flush before a fork never waits for a lock held elsewhere (`pool-ipc`'s
/// `stdout_flush.rs`): here `main` holds it until the pool's thread, which forks, is done.
fn a_held_stdout_lock_does_not_stop_fork_workers_from_starting() {
    let stdout = stdout_of_a_clean_run("stdout_held_while_a_thread_forks_workers");
    assert_eq!(stdout, "squares [0, 1, 4, 9]\n");
}

/// What `program` printed on stdout, once it ended well within 20 s.
fn stdout_of_a_clean_run(program: &str) -> String {
    let r = run(program, &[], Duration::from_secs(30));
    assert_eq!(r.out.status.code(), Some(0), "{}", r.stderr());
    assert!(r.took < Duration::from_secs(20), "took {:?}", r.took);
    String::from_utf8_lossy(&r.out.stdout).into_owned()
}

fn a_worker_that_skips_the_hook_stops_at_its_first_pool() {
    let r = run("entry_in_the_parent_only", &[], Duration::from_secs(30));
    let stderr = r.stderr();
    assert_eq!(r.out.status.code(), Some(1), "{stderr}");
    // The program's own main, and at most one in each of its two workers: no grandchildren.
    assert!(
        (2..=3).contains(&r.mains),
        "main ran {} times:\n{stderr}",
        r.mains
    );
    // The workers' relayed stderr may interleave with the report on one line: look for the
    // report wherever it starts.
    let report = stderr
        .find("Error: ")
        .and_then(|i| stderr[i..].lines().next())
        .unwrap_or_default();
    assert!(report.contains("`pool::entry()`"), "{stderr}");
    assert!(r.took < Duration::from_secs(20), "took {:?}", r.took);
}

/// Issue #17: a Fork pool built on the main thread (checks run there) forks its workers there,
/// so their allocations come from glibc's main arena, which keeps freed memory for the next
/// task (`M_MMAP_MAX = 0`). Forked from the launcher thread instead, a worker allocated from a
/// thread arena, where 64 MiB is always a fresh `mmap`: 16k page faults on every call.
fn fork_workers_of_the_main_thread_reuse_the_pages_of_big_buffers() {
    fn minor_faults() -> i64 {
        // SAFETY: an all-zero rusage is a valid value, and getrusage only fills it.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid out pointer.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
        u.ru_minflt
    }
    let mut pool = WorkerPool::builder()
        .n_jobs(1)
        .start_method(StartMethod::Fork)
        .build()
        .unwrap();
    let faults = pool
        .map_with(
            |i: u64| {
                let before = minor_faults();
                // Not zero: a filled buffer, as a task's result would be (no `calloc`).
                let v = vec![i as u8 + 1; 64 << 20];
                let after = minor_faults();
                std::hint::black_box(&v);
                after - before
            },
            0..4u64,
            pool::MapOptions::default().chunk_size(1),
        )
        .unwrap();
    pool.join().unwrap();
    // A fresh 64 MiB takes 16,384 faults of 4 KiB pages; reused pages take none.
    assert!(
        faults[1..].iter().all(|&f| f < 2048),
        "64 MiB buffers after the first faulted fresh pages in: {faults:?} faults"
    );
}
