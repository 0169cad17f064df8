//! The forkserver's own faults: its death mid-call, its parent's death, and what it protects
//! workers from (a lock held by another thread of the parent at the time of the fork).
//!
//! The process scenarios re-execute this binary with `POOL_FORKSERVER_SCENARIO` set; the
//! child prints the pids of its server(s) and workers, and the test checks them all gone once
//! the child has ended.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pool::{MapOptions, StartMethod, WorkerPool};

const VAR: &str = "POOL_FORKSERVER_SCENARIO";

/// In a scenario child: play it and exit.
pub(crate) fn run_if_asked() {
    let Ok(name) = std::env::var(VAR) else { return };
    // SAFETY: single-threaded at this point (before main).
    unsafe { std::env::remove_var(VAR) };
    match name.as_str() {
        "server_killed" => server_killed_child(),
        "parent_killed" => parent_killed_child(),
        other => panic!("unknown forkserver scenario {other}"),
    }
    std::process::exit(0);
}

fn server_pid() -> i32 {
    pool_ipc::forkserver::server_pid().expect("pool::entry() started a forkserver")
}

fn sleepy(x: u32) -> u32 {
    println!("worker {}", std::process::id());
    std::thread::sleep(Duration::from_secs(if x < 2 { 30 } else { 0 }));
    x
}

fn server_killed_child() {
    println!("server {}", server_pid());
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Forkserver)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let first = p.map_with(sleepy, 0..4u32, MapOptions::default().chunk_size(1));
    match first {
        Ok(v) => println!("first call: unexpected success {v:?}"),
        Err(e) => println!("first call: {e} (after {:?})", t0.elapsed()),
    }
    let second: Vec<u32> = p.map(|x: u32| x + 1, 0..4u32).unwrap();
    println!("second call: {second:?}");
    println!("server {}", server_pid());
    let pids: Vec<u32> = p.map(|_: u8| std::process::id(), 0..2u8).unwrap();
    for pid in pids {
        println!("worker {pid}");
    }
    println!("done");
}

fn parent_killed_child() {
    println!("server {}", server_pid());
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Forkserver)
        .build()
        .unwrap();
    let _ = p.map_with(sleepy, 0..2u32, MapOptions::default().chunk_size(1));
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
        let left: Vec<i32> = pids.iter().copied().filter(|&p| !gone(p)).collect();
        assert!(
            Instant::now() < deadline,
            "processes {left:?} outlived their program"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scenario child and its stdout, read line by line.
struct Scenario {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
    servers: Vec<i32>,
    workers: Vec<i32>,
}

impl Scenario {
    fn start(name: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(VAR, name)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Scenario {
            child,
            out,
            servers: Vec::new(),
            workers: Vec::new(),
        }
    }

    /// Reads lines until one starts with `prefix` (noting pids on the way); returns it.
    fn until(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.out.read_line(&mut line).unwrap() > 0,
                "the scenario ended before printing {prefix:?}"
            );
            if let Some(pid) = line.trim().strip_prefix("server ") {
                self.servers.push(pid.parse().unwrap());
            } else if let Some(pid) = line.trim().strip_prefix("worker ") {
                self.workers.push(pid.parse().unwrap());
            }
            if line.starts_with(prefix) {
                return line.trim().to_string();
            }
        }
    }

    fn everyone(&self) -> Vec<i32> {
        self.servers.iter().chain(&self.workers).copied().collect()
    }
}

/// The server SIGKILLed while a call runs: that call fails naming the forkserver and the
/// signal, the next call works (on a new server), and nothing is left once the program ends.
pub(crate) fn server_killed_mid_call() {
    let mut s = Scenario::start("server_killed");
    s.until("server ");
    s.until("worker ");
    s.until("worker ");
    let server = s.servers[0];
    // SAFETY: kill(2) on the forkserver of our scenario child.
    unsafe { libc::kill(server, libc::SIGKILL) };
    let first = s.until("first call: ");
    assert!(
        first.contains("forkserver") && first.contains("SIGKILL"),
        "the call in flight names the forkserver and how it died: {first}"
    );
    let second = s.until("second call: ");
    assert_eq!(second, "second call: [1, 2, 3, 4]");
    s.until("server ");
    assert_ne!(s.servers[1], server, "a new server serves the next call");
    s.until("done");
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    all_gone_soon(&s.everyone());
}

/// The program SIGKILLed: its server and the server's workers go with it.
pub(crate) fn parent_killed_takes_server_and_workers() {
    let mut s = Scenario::start("parent_killed");
    s.until("server ");
    s.until("worker ");
    s.until("worker ");
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    all_gone_soon(&s.everyone());
}

/// Held by another thread of the parent while workers start.
static REGISTRY: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn registers(x: u32) -> u32 {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).len() as u32 + x
}

/// Runs `registers` on workers of `m` started while another thread holds `REGISTRY`.
pub(crate) fn map_while_a_thread_holds_a_lock(m: StartMethod) -> Result<Vec<u32>, pool::PoolError> {
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        held_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
    });
    held_rx.recv().unwrap();
    let out = WorkerPool::builder()
        .n_jobs(2)
        .start_method(m)
        .build()
        .and_then(|mut p| {
            p.map_with(
                registers,
                0..4u32,
                MapOptions::default().task_timeout(Duration::from_secs(2)),
            )
        });
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    out
}
