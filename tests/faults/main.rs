//! Faults of worker processes: each one gives a clear error naming the worker, the task and
//! what happened, and leaves nothing behind (no zombie, no leaked fd, nothing in /dev/shm).
//!
//! Tests here run one at a time (they count this process's fds and children).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pool::{Cause, MapOptions, PoolError, StartMethod, WorkerPool};

mod dying_sends;
mod forkserver;
mod idle;
mod scenarios;
mod shared_bytes;

static SERIAL: Mutex<()> = Mutex::new(());

/// Spawned workers and scenario children re-execute this binary.
#[ctor::ctor(unsafe)]
fn entry() {
    pool::entry();
    scenarios::run_if_asked();
    forkserver::run_if_asked();
}

/// What must be back to where it was after a fault.
struct Baseline {
    fds: BTreeMap<i32, String>,
    shm: Vec<String>,
}

/// This process's open fds, each with what it names (`pipe:[123]`), so a leak report says
/// which fd it is.
fn open_fds() -> BTreeMap<i32, String> {
    pool_ipc::fds::open_fds()
        .unwrap()
        .into_iter()
        .filter_map(|fd| {
            let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect()
}

/// Entries of /dev/shm that could be the pool's. (It uses memfds, which never appear there, and
/// other programs on the machine, e.g. Open MPI, come and go there, so only these count.)
fn dev_shm() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.contains("pool"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Baseline {
    fn take() -> Self {
        // The process's heap of shared buffers keeps one memfd open for its life, made with
        // the first Fork or Spawn pool: make it now, so that it is no test's leak.
        pool_core::shared_bytes::prepare_heap();
        Baseline {
            fds: open_fds(),
            shm: dev_shm(),
        }
    }

    /// Asserts no zombie child, no fd that was not open before and the same /dev/shm
    /// (allowing a moment for reader threads to finish). An fd open before that is gone is
    /// reported, not failed: nothing is left behind then, and the pool never held it.
    fn check(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let zombies = pool_ipc::fds::zombie_children().unwrap();
            let fds = open_fds();
            let new: Vec<_> = fds
                .iter()
                .filter(|&(fd, name)| self.fds.get(fd) != Some(name))
                .collect();
            if zombies.is_empty() && new.is_empty() && dev_shm() == self.shm {
                let gone: Vec<_> = self
                    .fds
                    .iter()
                    .filter(|&(fd, name)| fds.get(fd) != Some(name))
                    .collect();
                if !gone.is_empty() {
                    eprintln!("NOTE: fds open before the test and closed during it: {gone:?}");
                }
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "leak: zombies {zombies:?}, fds {new:?} not open before (all: {fds:?}), \
                     /dev/shm {:?} (was {:?})",
                    dev_shm(),
                    self.shm
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `task` over 0..8 under `m`, expecting task 5 to kill its worker: on one worker (the
/// caller's thread then reads the worker's ring itself, see `pool-ipc`'s `backend/duty.rs`)
/// and on one more than there are cores (reader threads do). Gives both errors.
fn fault(
    m: StartMethod,
    task: impl Fn(u32) -> u32 + Copy + Send + Sync + 'static,
) -> [PoolError; 2] {
    [
        fault_on(m, 1, task),
        fault_on(m, pool_core::cpu_count() + 1, task),
    ]
}

fn fault_on(
    m: StartMethod,
    n_jobs: usize,
    task: impl Fn(u32) -> u32 + Copy + Send + Sync + 'static,
) -> PoolError {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    let err = {
        let mut p = workers(m, n_jobs);
        let t0 = Instant::now();
        let err = p
            .map_with(task, 0..8u32, MapOptions::default().chunk_size(1))
            .unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(10), "no hang");
        // The pool works again after the fault.
        assert_eq!(p.map(|x: u32| x + 1, 0..4u32).unwrap(), vec![1, 2, 3, 4]);
        err
    };
    base.check();
    let f = err
        .failure()
        .unwrap_or_else(|| panic!("not a worker failure: {err}"));
    assert_eq!(f.task, Some(5), "{err}");
    assert!(f.worker < n_jobs);
    err
}

fn died(errs: &[PoolError], what: &str) {
    for err in errs {
        let f = err.failure().unwrap();
        assert_eq!(f.cause, Cause::WorkerDied, "{err}");
        let text = err.to_string();
        assert!(text.contains("task #5 lost its worker"), "{text}");
        assert!(text.contains("(args: 5)"), "{text}");
        assert!(text.contains(what), "{text}");
    }
}

fn segfaults(x: u32) -> u32 {
    if x == 5 {
        // SAFETY: not safe at all: this writes through a null pointer to crash the worker.
        unsafe { std::ptr::null_mut::<u32>().write_volatile(1) };
    }
    x
}

fn aborts(x: u32) -> u32 {
    if x == 5 {
        std::process::abort();
    }
    x
}

fn exits(x: u32) -> u32 {
    if x == 5 {
        std::process::exit(3);
    }
    x
}

fn sigkills_itself(x: u32) -> u32 {
    if x == 5 {
        // SAFETY: kill(2) on our own pid.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        std::thread::sleep(Duration::from_secs(5));
    }
    x
}

/// Under an address-space limit (`RLIMIT_AS`) a large allocation fails: Rust's handler says so
/// on stderr and aborts.
fn allocation_fails(x: u32) -> u32 {
    if x == 5 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let vm_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        let limit = libc::rlimit {
            rlim_cur: (vm_kib + (64 << 10)) << 10,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit with a valid rlimit; it only lowers this worker's soft limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
        let big: Vec<u8> = Vec::with_capacity(1 << 30);
        std::hint::black_box(big);
    }
    x
}

fn panics(x: u32) -> u32 {
    if x == 5 {
        panic!("cannot parse record {x}");
    }
    x
}

macro_rules! both {
    ($($name:ident => $body:expr;)*) => {
        $(
            mod $name {
                #[test]
                fn fork() {
                    #[allow(clippy::redundant_closure_call)]
                    ($body)(pool::StartMethod::Fork);
                }
                #[test]
                fn spawn() {
                    #[allow(clippy::redundant_closure_call)]
                    ($body)(pool::StartMethod::Spawn);
                }
                #[test]
                fn forkserver() {
                    #[allow(clippy::redundant_closure_call)]
                    ($body)(pool::StartMethod::Forkserver);
                }
            }
        )*
    };
}

both! {
    segfault => |m| super::died(&super::fault(m, super::segfaults), "killed by signal 11 (SIGSEGV)");
    abort => |m| super::died(&super::fault(m, super::aborts), "killed by signal 6 (SIGABRT)");
    process_exit => |m| super::died(&super::fault(m, super::exits), "exited with code 3");
    sigkill => |m| super::died(&super::fault(m, super::sigkills_itself), "killed by signal 9 (SIGKILL)");
    panic_carries_message_and_backtrace => |m| for err in super::fault(m, super::panics) {
        let f = err.failure().unwrap();
        assert_eq!(f.cause, pool::Cause::Panic);
        assert!(f.message.contains("cannot parse record 5"), "{err}");
        // Symbolizing reads the binary (an fd for a moment): not while another test counts fds.
        let _serial = super::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let bt = f.backtrace.as_ref().expect("a backtrace").to_string();
        // Symbolized in this process (a spawned worker's modules are loaded elsewhere), from
        // the task function down: the panic machinery above it is left out.
        let top = bt.lines().next().unwrap_or_default();
        // (`faults::panics`, or `panics` where only line tables are kept, as in release.)
        let function = top.rsplit([' ', ':']).next();
        assert_eq!(function, Some("panics"), "the backtrace starts at the task function: {bt}");
    };
    timeout_kills_and_replaces_the_worker => super::timeout;
    unserializable_result_names_the_task => super::unserializable;
    dead_worker_under_keep_going => super::keep_going_after_death;
    killed_while_sending_a_result_names_the_task => super::killed_while_sending;
    dead_workers_task_is_retried => super::retried_after_death;
    a_task_cut_short_by_its_worker_s_death_runs_elsewhere => super::dying_sends::cut_short;
    failed_allocation_carries_the_worker_s_last_words => |m| {
        let errs = super::fault(m, super::allocation_fails);
        super::died(&errs, "killed by signal 6 (SIGABRT)");
        for err in errs {
            assert!(
                err.to_string().contains("memory allocation of 1073741824 bytes failed"),
                "{err}"
            );
        }
    };
}

fn timeout(m: StartMethod) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    {
        let mut p = two_workers(m);
        let opts = MapOptions::default()
            .chunk_size(1)
            .task_timeout(Duration::from_millis(300))
            .keep_going(0);
        let out = p.map_results(sigkills_later, 0..8u32, opts).unwrap();
        assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 7);
        let e = out[5].as_ref().unwrap_err();
        assert!(e.to_string().contains("task #5 timed out"), "{e}");
    }
    base.check();
}

fn sigkills_later(x: u32) -> u32 {
    if x == 5 {
        std::thread::sleep(Duration::from_secs(30));
    }
    x
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Unserializable(u32);

impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 != 5 {
            return s.serialize_u32(self.0);
        }
        Err(serde::ser::Error::custom(format!(
            "value {} refuses to be serialized",
            self.0
        )))
    }
}

/// A pool of two workers under `m`, with the defaults otherwise.
fn two_workers(m: StartMethod) -> WorkerPool {
    workers(m, 2)
}

/// A pool of `n_jobs` workers under `m`, with the defaults otherwise.
fn workers(m: StartMethod, n_jobs: usize) -> WorkerPool {
    WorkerPool::builder()
        .n_jobs(n_jobs)
        .start_method(m)
        .build()
        .unwrap()
}
/// `map_results(f, 0..8, chunk_size(chunk).keep_going(0))` on another thread, bounded: a call
/// that has not ended within 30 s fails the test with `stuck`. Gives each result's number, and
/// the pool back.
fn eight_results_within<R, F>(
    mut p: WorkerPool,
    f: F,
    number: fn(R) -> u32,
    chunk: usize,
    stuck: &str,
) -> (Vec<Result<u32, PoolError>>, WorkerPool)
where
    R: pool_core::Payload,
    // A fn item (not a pointer): Spawn and Forkserver workers must find it in their binary.
    F: Fn(u32) -> R + Send + Sync + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let call = std::thread::spawn(move || {
        let opts = MapOptions::default().chunk_size(chunk).keep_going(0);
        let out = p.map_results(f, 0..8u32, opts).unwrap();
        let _ = tx.send(out.into_iter().map(|r| r.map(number)).collect::<Vec<_>>());
        p
    });
    let out = rx.recv_timeout(Duration::from_secs(30)).expect(stuck);
    (out, call.join().unwrap())
}

fn unserializable_at_5(x: u32) -> Unserializable {
    Unserializable(x)
}

/// The value's own message is kept (postcard replaces it with "Serde Serialization Error"),
/// and the task that made the value is named, with its arguments, even inside a chunk.
fn unserializable(m: StartMethod) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    {
        let mut p = two_workers(m);
        let e = p
            .map_with(
                unserializable_at_5,
                0..8u32,
                MapOptions::default().chunk_size(4),
            )
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("task #5 could not be serialized")
                && text.contains("value 5 refuses to be serialized"),
            "{text}"
        );
        let f = e.failure().unwrap();
        assert_eq!((f.task, f.args.as_deref()), (Some(5), Some("5")), "{text}");
        // Under keep_going the refusing result fails in place; its chunk's others arrive.
        let (out, mut p) =
            eight_results_within(p, unserializable_at_5, |v| v.0, 4, "the call never ended");
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(*v as usize, i),
                Err(e) => assert!(i == 5 && e.to_string().contains("value 5 refuses"), "{e}"),
            }
        }
        assert!(out[5].is_err());
        let e = p
            .map(|x: Unserializable| x.0, vec![Unserializable(5)])
            .unwrap_err();
        assert!(matches!(e, PoolError::Serialization { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("inputs of tasks #0..#1") && text.contains("value 5 refuses"),
            "{text}"
        );
    }
    base.check();
}

fn keep_going_after_death(m: StartMethod) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    {
        let mut p = two_workers(m);
        let out = p
            .map_results(
                aborts,
                0..20u32,
                MapOptions::default().chunk_size(3).keep_going(0),
            )
            .unwrap();
        assert_eq!(out.len(), 20);
        for (i, r) in out.iter().enumerate() {
            if i == 5 {
                let e = r.as_ref().unwrap_err();
                assert!(e.to_string().contains("SIGABRT"), "{e}");
            } else {
                assert_eq!(*r.as_ref().unwrap(), i as u32);
            }
        }
    }
    base.check();
}

/// A large result whose encoding the worker does not survive: its task has ended (the worker
/// holds no task in hand) but its result never reaches the parent.
#[derive(Debug, Clone, serde::Deserialize)]
struct DiesWhenSent(u32, Vec<u8>);

impl serde::Serialize for DiesWhenSent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 5 {
            // SAFETY: kill(2) on our own pid.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            std::thread::sleep(Duration::from_secs(5));
        }
        (self.0, &self.1).serialize(s)
    }
}

fn large_result(x: u32) -> DiesWhenSent {
    DiesWhenSent(x, vec![7; 64 << 10])
}

/// The lost task is named, with its arguments, and under `keep_going` it fails in place (it is
/// not run again and again).
fn killed_while_sending(m: StartMethod) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    {
        let mut p = two_workers(m);
        let err = p
            .map_with(large_result, 0..8u32, MapOptions::default().chunk_size(1))
            .unwrap_err();
        let f = err.failure().unwrap_or_else(|| panic!("{err}"));
        assert_eq!((f.task, &f.cause), (Some(5), &Cause::WorkerDied), "{err}");
        assert!(err.to_string().contains("task #5 lost its worker"), "{err}");
        let (out, _p) = eight_results_within(
            p,
            large_result,
            |v| v.0,
            1,
            "keep_going ran the lost task again and again",
        );
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(*v as usize, i),
                Err(e) => {
                    assert_eq!(i, 5, "{e}");
                    let f = e.failure().unwrap();
                    assert_eq!(f.task, Some(5), "{e}");
                    assert_eq!(f.args.as_deref(), Some("5"), "{e}");
                }
            }
        }
        assert!(out[5].is_err());
    }
    base.check();
}

#[test]
fn a_dead_parent_leaves_no_orphan_workers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    scenarios::parent_killed_leaves_no_orphans();
}

#[test]
fn oom_kill_in_a_memory_cgroup_quotes_the_kernel_s_figures() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    scenarios::oom_in_a_memory_cgroup();
}

#[test]
fn worker_lines_never_split_the_parent_s() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    scenarios::worker_lines_never_split_the_parent_s();
}

#[test]
fn worker_stderr_reaches_the_parent_s() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    scenarios::worker_stderr_reaches_the_parent_s();
}

#[test]
fn ctrl_c_stops_the_workers_and_returns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    scenarios::ctrl_c();
}

#[test]
fn copy_on_write_shared_objects_are_not_copied() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    scenarios::copy_on_write();
}

/// Forked workers whose tasks panic, started while threads of the parent keep panicking too:
/// a fork made while another thread held a panic's backtrace lock left the child's own panic
/// hanging on that lock forever (and its call with it). Forks now fall between panic reports.
#[test]
fn forking_while_other_threads_panic() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A thread pool whose every task panics: its workers capture and resolve backtraces
    // (holding std's backtrace lock) all the time.
    let noise = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut p = WorkerPool::builder()
                .n_jobs(2)
                .start_method(StartMethod::Threading)
                .keep_alive(true)
                .build()
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let out = p.map_results(
                    |x: u32| -> u32 { panic!("noise {x}") },
                    0..8u32,
                    MapOptions::default().keep_going(0),
                );
                assert!(out.unwrap().iter().all(Result::is_err));
            }
        })
    };
    for round in 0..30 {
        let mut p = WorkerPool::builder()
            .n_jobs(2)
            .start_method(StartMethod::Fork)
            .build()
            .unwrap();
        let err = p
            .map_with(
                |x: u32| if x == 1 { panic!("bad {x}") } else { x },
                0..4u32,
                MapOptions::default().task_timeout(Duration::from_secs(10)),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("bad 1"),
            "round {round}: a forked worker hung instead of reporting its panic: {err}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.join().unwrap();
}

#[test]
fn forkserver_killed_mid_call_then_replaced() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    forkserver::server_killed_mid_call();
}

#[test]
fn a_dead_parent_takes_its_forkserver_and_workers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    forkserver::parent_killed_takes_server_and_workers();
}

/// Fork copies a lock another thread holds, held, into the worker: the task hangs (cut short
/// by its timeout here). Forkserver workers come from a process forked before that thread
/// existed: the same task runs.
#[test]
fn a_lock_held_by_a_parent_thread_blocks_fork_not_forkserver() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let err = forkserver::map_while_a_thread_holds_a_lock(StartMethod::Fork).unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    let out = forkserver::map_while_a_thread_holds_a_lock(StartMethod::Forkserver).unwrap();
    assert_eq!(out, vec![0, 1, 2, 3]);
}

/// Task 5 aborts its worker on its first attempt (a marker file remembers it), or on every
/// attempt when the marker directory is empty.
fn aborts_once((x, dir): (u32, String)) -> u32 {
    let marker = std::path::Path::new(&dir).join("aborted");
    if x == 5 && (dir.is_empty() || std::fs::File::create_new(marker).is_ok()) {
        std::process::abort();
    }
    x
}

fn retried_after_death(m: StartMethod) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_string_lossy().into_owned();
        let mut p = two_workers(m);
        let opts = || MapOptions::default().chunk_size(3).keep_going(1);
        let inputs: Vec<(u32, String)> = (0..12).map(|x| (x, path.clone())).collect();
        let out = p.map_results(aborts_once, inputs, opts()).unwrap();
        let got: Vec<u32> = out.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(got, (0..12).collect::<Vec<_>>());
        // Dying on every attempt: the error counts them and says why each failed.
        let inputs: Vec<(u32, String)> = (0..12).map(|x| (x, String::new())).collect();
        let out = p.map_results(aborts_once, inputs, opts()).unwrap();
        let e = out[5].as_ref().unwrap_err();
        let f = e.failure().unwrap();
        assert_eq!(
            (f.task, &f.cause, f.attempts),
            (Some(5), &Cause::WorkerDied, 2),
            "{e}"
        );
        assert!(f.earlier[0].contains("SIGABRT"), "{e}");
        assert!(e.to_string().contains("after 2 attempts"), "{e}");
        assert!(out.iter().filter(|r| r.is_ok()).count() == 11, "{out:?}");
    }
    base.check();
}
