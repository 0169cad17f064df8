//! Scenarios that need a process of their own (a parent to kill, a Ctrl-C to send): the test
//! re-executes this binary with `POOL_SCENARIO` set, and `run_if_asked` plays the part.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pool::{PoolError, StartMethod, WorkerPool};

const VAR: &str = "POOL_SCENARIO";

/// In a scenario child: play it and exit.
pub(crate) fn run_if_asked() {
    let Ok(name) = std::env::var(VAR) else { return };
    // Scenario children must not run the scenario again in their own workers.
    // SAFETY: single-threaded at this point (before main).
    unsafe { std::env::remove_var(VAR) };
    match name.as_str() {
        "orphans" => orphans(),
        "ctrl_c" => ctrl_c_child(),
        "oom" => oom_child(),
        "stderr" => stderr_child(),
        "stderr_mixed" => stderr_mixed_child(),
        other => panic!("unknown scenario {other}"),
    }
    std::process::exit(0);
}

fn sleep_forever(_: u32) -> u32 {
    println!("worker {}", std::process::id());
    std::thread::sleep(Duration::from_secs(60));
    0
}

fn orphans() {
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Fork)
        .build()
        .unwrap();
    let _ = p.map_with(
        sleep_forever,
        0..2u32,
        pool::MapOptions::default().chunk_size(1),
    );
}

fn ctrl_c_child() {
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Fork)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let r = p.map_with(
        sleep_forever,
        0..2u32,
        pool::MapOptions::default().chunk_size(1),
    );
    match r {
        Err(PoolError::Interrupted) => println!("interrupted after {:?}", t0.elapsed()),
        other => println!("unexpected: {other:?}"),
    }
}

/// Starts a scenario child and reads the pids its workers print.
fn start(
    name: &str,
) -> (
    std::process::Child,
    Vec<i32>,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(VAR, name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut pids = Vec::new();
    let mut line = String::new();
    while pids.len() < 2 {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "scenario {name} ended early"
        );
        if let Some(pid) = line.trim().strip_prefix("worker ") {
            pids.push(pid.parse().unwrap());
        }
    }
    (child, pids, out)
}

/// Whether `pid` is gone (or a zombie waiting for init).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn all_gone_soon(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids.iter().all(|&p| gone(p)) {
        assert!(
            Instant::now() < deadline,
            "workers {pids:?} outlived their parent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn parent_killed_leaves_no_orphans() {
    let (mut child, pids, _out) = start("orphans");
    child.kill().unwrap(); // SIGKILL: the parent gets no chance to clean up
    child.wait().unwrap();
    all_gone_soon(&pids);
}

pub(crate) fn ctrl_c() {
    let (mut child, pids, mut out) = start("ctrl_c");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("interrupted after"),
        "the map call returns Interrupted: {line:?}"
    );
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the program goes on after the interrupted call: {status:?}"
    );
    all_gone_soon(&pids);
}

fn pss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn touch_all(ctx: &mut pool::WorkerContext<'_, Vec<u8>, ()>, _: u8) -> (u64, u64) {
    // Read every page of the shared table, then report this worker's proportional set size.
    let sum: u64 = ctx
        .shared()
        .iter()
        .step_by(4096)
        .map(|&b| u64::from(b))
        .sum();
    (sum, pss_kib())
}

pub(crate) fn copy_on_write() {
    const MIB: usize = 1 << 20;
    for (m, size) in [
        (StartMethod::Fork, 512 * MIB),
        (StartMethod::Spawn, 64 * MIB),
    ] {
        let table = vec![1u8; size];
        let mut p = WorkerPool::builder()
            .n_jobs(2)
            .start_method(m)
            .shared_objects(table)
            .build()
            .unwrap();
        let out = p
            .map_ctx_with(touch_all, 0..2u8, pool::MapOptions::default().chunk_size(1))
            .unwrap();
        let pages = (size / 4096) as u64;
        assert!(out.iter().all(|&(sum, _)| sum == pages));
        let size_kib = (size / 1024) as u64;
        let workers_pss: u64 = out.iter().map(|&(_, pss)| pss).sum();
        match m {
            // Parent and two workers share one copy: the workers' shares add up to at most
            // about two thirds of it, never two copies.
            StartMethod::Fork => assert!(
                workers_pss < size_kib,
                "forked workers: {workers_pss} KiB of Pss for a {size_kib} KiB table"
            ),
            // Each spawned worker holds its own copy.
            _ => assert!(
                workers_pss > 2 * size_kib * 9 / 10,
                "spawned workers: {workers_pss} KiB of Pss for a {size_kib} KiB table"
            ),
        }
    }
}

/// Where the OOM scenario's child puts itself: a memory cgroup.
const CGROUP_VAR: &str = "POOL_SCENARIO_CGROUP";

/// Allocates and touches 16 MiB at a time until the kernel kills it.
fn hog_until_killed(_: u32) -> u32 {
    let mut kept = Vec::new();
    for _ in 0..256 {
        let mut block = vec![0u8; 16 << 20];
        for i in (0..block.len()).step_by(4096) {
            block[i] = 1;
        }
        kept.push(block);
    }
    std::hint::black_box(kept).len() as u32
}

fn oom_child() {
    let cgroup = std::env::var(CGROUP_VAR).expect("the cgroup to join");
    std::fs::write(
        format!("{cgroup}/cgroup.procs"),
        std::process::id().to_string(),
    )
    .expect("joining the cgroup");
    let mut p = WorkerPool::builder()
        .n_jobs(1)
        .start_method(StartMethod::Fork)
        .build()
        .unwrap();
    match p.map(hog_until_killed, 0..1u32) {
        Err(e) => println!("error: {e}"),
        Ok(v) => println!("unexpected: {v:?}"),
    }
}

/// A memory cgroup with a limit and no swap, removed on drop: v2 when /sys/fs/cgroup is the
/// unified hierarchy, else v1's memory controller.
struct MemoryCgroup(std::path::PathBuf);

impl MemoryCgroup {
    fn create(limit: u64) -> Result<Self, String> {
        let name = format!("pool-faults-oom-{}", std::process::id());
        let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let (base, files) = if v2 {
            ("/sys/fs/cgroup", ["memory.max", "memory.swap.max"])
        } else {
            (
                "/sys/fs/cgroup/memory",
                ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
            )
        };
        let dir = std::path::Path::new(base).join(name);
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cg = MemoryCgroup(dir);
        std::fs::write(cg.0.join(files[0]), limit.to_string())
            .map_err(|e| format!("cannot set {}: {e}", files[0]))?;
        // No swapping out of the OOM, where the kernel supports the setting.
        let _ = std::fs::write(
            cg.0.join(files[1]),
            if v2 {
                "0".to_string()
            } else {
                limit.to_string()
            },
        );
        Ok(cg)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // The members are gone by now; the kernel may take a moment to let go of them.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A worker killed by the OOM killer of a 256 MiB cgroup: the error quotes what the kernel
/// knew at the death (the worker's peak, the cgroup's peak and limit), not a stale sample.
pub(crate) fn oom_in_a_memory_cgroup() {
    let cg = match MemoryCgroup::create(256 << 20) {
        Ok(cg) => cg,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to create a memory cgroup: {why}"
            );
            eprintln!("SKIPPED (not run): oom_in_a_memory_cgroup needs a memory cgroup: {why}");
            return;
        }
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .env(VAR, "oom")
        .env(CGROUP_VAR, &cg.0)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "scenario failed: {out:?}");
    assert!(text.starts_with("error: task #0 lost its worker"), "{text}");
    assert!(text.contains("OOM killer"), "{text}");
    let peak: u64 = text
        .split("its peak resident memory was ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak resident memory quoted: {text}"));
    assert!(
        peak >= 128,
        "a stale figure ({peak} MiB) for a worker killed at 256 MiB: {text}"
    );
    assert!(text.contains("of its 256 MiB limit"), "{text}");
}

fn says_hello(x: u32) -> u32 {
    eprintln!("hello from task {x}");
    x
}

fn stderr_child() {
    for m in [StartMethod::Fork, StartMethod::Spawn] {
        let mut p = WorkerPool::builder()
            .n_jobs(2)
            .start_method(m)
            .build()
            .unwrap();
        let opts = pool::MapOptions::default().chunk_size(1);
        assert_eq!(p.map_with(says_hello, 0..20u32, opts).unwrap().len(), 20);
    }
}

/// What the scenario `name` wrote on stderr; it must succeed.
fn stderr_of(name: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(VAR, name)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "scenario failed: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Forty pieces, each its own `write` on the unbuffered stderr.
struct Pieces;

impl std::fmt::Display for Pieces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (0..40).try_for_each(|k| write!(f, "{k:02}."))
    }
}

fn chatty(x: u32) -> u32 {
    for _ in 0..20 {
        eprintln!("hello from task {x}");
    }
    x
}

/// The parent prints lines written in pieces while the workers print theirs.
fn stderr_mixed_child() {
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Fork)
        .build()
        .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let printer = std::thread::spawn(move || {
        let mut i = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 20_000 {
            eprintln!("parent line {i}: {Pieces}");
            i += 1;
        }
    });
    // A worker forked while the printer held stderr's lock would hang at its first line.
    let opts = pool::MapOptions::default()
        .chunk_size(1)
        .task_timeout(Duration::from_secs(10));
    let out = p.map_with(chatty, 0..200u32, opts);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    printer.join().unwrap();
    assert_eq!(out.unwrap().len(), 200);
}

/// A worker's relayed line never lands inside a line the parent is writing (Rust's stderr
/// writes a formatted line in pieces, under its lock; the relay takes the same lock), and a
/// worker forked while a parent thread prints can print too.
pub(crate) fn worker_lines_never_split_the_parent_s() {
    let text = stderr_of("stderr_mixed");
    let pieces = Pieces.to_string();
    let mut parent = 0;
    let mut worker = 0;
    for line in text.lines() {
        if line.starts_with("hello from task ") && line[16..].parse::<u32>().is_ok() {
            worker += 1;
        } else {
            let (head, tail) = line.split_once(": ").unwrap_or((line, ""));
            assert!(
                head.starts_with("parent line ") && tail == pieces,
                "a split line: {line:?}"
            );
            parent += 1;
        }
    }
    assert_eq!(worker, 200 * 20, "every worker line arrives whole");
    assert!(parent > 0, "the parent printed while the workers did");
}

/// Workers' stderr passes through the parent (which keeps their last lines for death
/// reports): every line arrives, whole, while the pool runs.
pub(crate) fn worker_stderr_reaches_the_parent_s() {
    let text = stderr_of("stderr");
    for x in 0..20 {
        let line = format!("hello from task {x}");
        assert_eq!(
            text.lines().filter(|l| *l == line).count(),
            2,
            "{line:?} once per start method in: {text}"
        );
    }
}
