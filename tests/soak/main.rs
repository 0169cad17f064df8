//! Soak: many rounds of maps under Fork and Spawn with random faults (panic, abort, SIGKILL,
//! timeout, slow tasks). Every round must give the right results or the right error (naming
//! the failing task), never hang, and leave nothing behind: fds, threads, zombie children and
//! pool entries in /dev/shm come back to where they were.
//!
//! Size: `SOAK_ROUNDS` (default 240: ~2 min on 2 cores, 0.5 s a round); `SOAK_SEED` replays a
//! run (the seed is printed first, and in every failure message).
//! Run: `SOAK_ROUNDS=120 cargo test --test soak -- --nocapture`.

use std::time::{Duration, Instant};

use pool::{Cause, MapOptions, PoolError, StartMethod, WorkerPool};

#[ctor::ctor(unsafe)]
fn entry() {
    pool::entry();
}

const NONE: u8 = 0;
const PANIC: u8 = 1;
const ABORT: u8 = 2;
const SIGKILL: u8 = 3;
const HANG: u8 = 4;
const SLOW: u8 = 5;
/// Generous: a panicking task captures and symbolizes a backtrace (slow in debug builds on a
/// loaded machine) before its worker reports it, all within the timeout.
const TASK_TIMEOUT: Duration = Duration::from_millis(1500);

/// The task: `x * x`, unless its input asks for a fault.
fn faulty((x, fault): (u32, u8)) -> u64 {
    match fault {
        PANIC => panic!("soak panic at {x}"),
        ABORT => std::process::abort(),
        SIGKILL => {
            // SAFETY: kill(2) on our own pid.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            std::thread::sleep(Duration::from_secs(5));
        }
        HANG => std::thread::sleep(Duration::from_secs(30)),
        SLOW => std::thread::sleep(Duration::from_millis(3)),
        _ => {}
    }
    u64::from(x) * u64::from(x)
}

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the process holds that a pool could leak.
#[derive(Debug, PartialEq, Eq)]
struct Held {
    fds: usize,
    /// The names of the process's threads (a failure shows which one is extra).
    threads: Vec<String>,
    zombies: usize,
    shm: Vec<String>,
}

fn held() -> Held {
    // The process's heap of shared buffers keeps one memfd open for its life (see the
    // faults' baseline): made before the first count.
    pool_core::shared_bytes::prepare_heap();
    let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let mut shm: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.contains("pool"))
                .collect()
        })
        .unwrap_or_default();
    shm.sort();
    Held {
        fds: count("/proc/self/fd"),
        threads: thread_names(),
        zombies: pool_ipc::fds::zombie_children().unwrap().len(),
        shm,
    }
}

impl Held {
    /// Whether `self` holds anything `base` did not: more fds, threads or zombies, or a pool
    /// entry in /dev/shm that was not there. Holding less is no leak: a helper thread of an
    /// earlier round (a reader finishing its last read) may still have been alive in `base`.
    fn exceeds(&self, base: &Held) -> bool {
        self.fds > base.fds
            || self.threads.len() > base.threads.len()
            || self.zombies > base.zombies
            || self.shm.iter().any(|name| !base.shm.contains(name))
    }
}

/// What the process holds once it stops changing: polled until two readings 200 ms apart agree
/// (at most 5 s), so threads a dropped pool has let go of have had their moment to end.
fn settled() -> Held {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = held();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = held();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .map(|c| c.trim_end().to_owned())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits (a moment, for reader threads to finish) until the process holds no more than it held.
fn back_to(base: &Held, seed: u64, round: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = held();
        if !now.exceeds(base) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed} round {round}: leak: {now:?}, was {base:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_expected_cause(fault: u8, cause: &Cause) -> bool {
    match fault {
        PANIC => matches!(cause, Cause::Panic),
        HANG => matches!(cause, Cause::Timeout(_)),
        _ => matches!(cause, Cause::WorkerDied),
    }
}

fn round(rng: &mut Rng, seed: u64, round: usize) {
    let method = if rng.below(2) == 0 {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    let n = 8 + rng.below(40) as u32;
    let mut inputs: Vec<(u32, u8)> = (0..n)
        .map(|x| (x, if rng.below(8) == 0 { SLOW } else { NONE }))
        .collect();
    // Two rounds in three have a fatal fault somewhere.
    let fatal = (rng.below(3) != 0).then(|| {
        let at = rng.below(u64::from(n)) as usize;
        let kind = 1 + rng.below(4) as u8;
        inputs[at].1 = kind;
        (at, kind)
    });
    let chunk = 1 + rng.below(4) as usize;
    // Up to as many workers as cores, the caller's thread reads their rings itself while it
    // waits; with more, reader threads do (`pool-ipc`'s `backend/duty.rs`).
    let n_jobs = [1, 2, pool_core::cpu_count() + 1][rng.below(3) as usize];
    let ctx = format!(
        "seed {seed} round {round}: {method:?}, {n_jobs} workers, {n} tasks, chunks of {chunk}, \
         fault {fatal:?}"
    );
    let t0 = Instant::now();
    let mut pool = WorkerPool::builder()
        .n_jobs(n_jobs)
        .start_method(method)
        .build()
        .unwrap_or_else(|e| panic!("{ctx}: build: {e}"));
    let opts = MapOptions::default()
        .chunk_size(chunk)
        .task_timeout(TASK_TIMEOUT);
    let out: Result<Vec<u64>, PoolError> = pool.map_with(faulty, inputs.clone(), opts);
    match (fatal, out) {
        (None, Ok(v)) => {
            let want: Vec<u64> = (0..u64::from(n)).map(|x| x * x).collect();
            assert_eq!(v, want, "{ctx}: wrong results");
        }
        (Some((at, kind)), Err(e)) => {
            let f = e
                .failure()
                .unwrap_or_else(|| panic!("{ctx}: not a worker failure: {e}"));
            assert_eq!(f.task, Some(at as u64), "{ctx}: {e}");
            assert!(is_expected_cause(kind, &f.cause), "{ctx}: {e}");
            assert!(f.worker < n_jobs, "{ctx}: {e}");
        }
        (Some(_), Ok(_)) => panic!("{ctx}: a fatal fault went unreported"),
        (None, Err(e)) => panic!("{ctx}: unexpected error: {e}"),
    }
    // The pool works again after whatever happened.
    let again: Vec<u64> = pool
        .map(|x: u64| x + 1, 0..16u64)
        .unwrap_or_else(|e| panic!("{ctx}: after the fault: {e}"));
    assert_eq!(again, (1..17).collect::<Vec<u64>>(), "{ctx}");
    drop(pool);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "{ctx}: took {:?}",
        t0.elapsed()
    );
}

#[test]
fn random_faults_leave_no_trace() {
    let rounds: usize = std::env::var("SOAK_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("soak: {rounds} rounds, SOAK_SEED={seed}");
    let mut rng = Rng(seed);
    let t0 = Instant::now();
    // The first pool starts process-wide helpers (e.g. the panic hook); count after it.
    round(&mut rng, seed, 0);
    let base = settled();
    for r in 1..rounds {
        round(&mut rng, seed, r);
        back_to(&base, seed, r);
    }
    println!("soak: {rounds} rounds in {:.1?}", t0.elapsed());
}
