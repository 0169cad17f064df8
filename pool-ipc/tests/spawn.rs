//! The spawn start method: re-executing this test binary as a worker.
//!
//! Each test calls `run_if_worker()` first and re-executes the binary with `--exact <itself>`,
//! so in the worker the harness runs the same test, whose first line turns it into the worker.

mod common;

use std::time::Duration;

use pool_ipc::channel::Link;
use pool_ipc::child::ChildOptions;
use pool_ipc::entry::{self, EXIT_BAD_BOOT, WorkerBoot};
use pool_ipc::fds::zombie_children;
use pool_ipc::process::ExitReason;
use pool_ipc::ring::WaitPolicy;
use pool_ipc::spawn::SpawnCommand;

fn args(test: &str) -> [&str; 4] {
    ["--exact", test, "--nocapture", "--test-threads=1"]
}

fn square_worker(mut boot: WorkerBoot) -> i32 {
    let link = Link::from_fd(boot.take_fd(0).expect("fd 0")).expect("link");
    let mut ch = link.worker_end(WaitPolicy::default());
    ch.send(&(boot.worker_id, boot.payload.clone())).unwrap();
    while let Ok(x) = ch.recv::<u64>() {
        ch.send(&(x * x)).unwrap();
    }
    0
}

#[test]
fn spawned_worker_gets_fds_id_payload_and_serves_requests() {
    entry::run_if_worker();
    let _g = common::serial();
    let fds = common::fd_table();
    assert!(!entry::is_worker());
    assert!(entry::take_worker_boot().is_none());
    let link = Link::new(1 << 12).unwrap();
    let mut w = SpawnCommand::new(square_worker)
        .worker_id(9)
        .payload(b"hello".to_vec())
        .pass_fd(link.region().fd())
        .unwrap()
        .args(args(
            "spawned_worker_gets_fds_id_payload_and_serves_requests",
        ))
        .spawn()
        .unwrap();
    let mut ch = link.parent_end(WaitPolicy::default());
    let hello: (u64, Vec<u8>) = ch.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(hello, (9, b"hello".to_vec()));
    for x in 0..500u64 {
        ch.send(&x).unwrap();
        assert_eq!(ch.recv::<u64>().unwrap(), x * x);
    }
    drop(ch);
    assert_eq!(w.wait().unwrap(), ExitReason::Exited { code: 0 });
    drop((w, link));
    assert_eq!(zombie_children().unwrap(), Vec::<i32>::new());
    assert_eq!(common::opened_since(&fds), []);
}

fn crash_worker(_boot: WorkerBoot) -> i32 {
    common::no_core();
    // SAFETY: deliberately faulting to test crash reporting.
    unsafe { std::ptr::null_mut::<u64>().write_volatile(1) };
    0
}

#[test]
fn spawned_worker_crash_is_reported() {
    entry::run_if_worker();
    let _g = common::serial();
    let mut w = SpawnCommand::new(crash_worker)
        .args(args("spawned_worker_crash_is_reported"))
        .spawn()
        .unwrap();
    let r = w
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("worker did not die");
    assert_eq!(r.signal_name(), Some("SIGSEGV"), "{r}");
}

fn never_runs(_boot: WorkerBoot) -> i32 {
    0
}

#[test]
fn a_different_binary_refuses_to_resolve_the_entry() {
    entry::run_if_worker();
    let _g = common::serial();
    let copy = std::env::temp_dir().join(format!("pool-ipc-copy-{}", std::process::id()));
    std::fs::copy("/proc/self/exe", &copy).unwrap();
    let mut w = SpawnCommand::new(never_runs)
        .program(&copy)
        .args(args("a_different_binary_refuses_to_resolve_the_entry"))
        .spawn()
        .unwrap();
    let r = w.wait().unwrap();
    std::fs::remove_file(&copy).unwrap();
    assert_eq!(r.code(), Some(EXIT_BAD_BOOT));
}

fn sleepy_worker(_boot: WorkerBoot) -> i32 {
    std::thread::sleep(Duration::from_secs(30));
    0
}

#[test]
fn a_spawned_worker_dies_with_its_parent() {
    entry::run_if_worker();
    let _g = common::serial();
    let region = std::sync::Arc::new(pool_ipc::shm::SharedRegion::create("pid", 4096).unwrap());
    let r2 = std::sync::Arc::clone(&region);
    // The middle process spawns the worker, then exits without reaping it.
    let mut middle = common::fork(move || {
        let w = SpawnCommand::new(sleepy_worker)
            .args(args("a_spawned_worker_dies_with_its_parent"))
            .spawn()
            .unwrap();
        r2.atomic_u32(0)
            .store(w.pid() as u32, std::sync::atomic::Ordering::SeqCst);
        // SAFETY: _exit ends this process at once, skipping the handle's kill-on-drop.
        unsafe { libc::_exit(0) }
    });
    assert!(middle.wait().unwrap().success());
    let pid = region
        .atomic_u32(0)
        .load(std::sync::atomic::Ordering::SeqCst) as i32;
    assert!(pid > 0);
    common::assert_dies_soon(pid, "worker");
}

/// Runs `sh -c 'echo "[$POOL_IPC_WORKER_BOOT]"'`: 0 if the shell saw no boot variable.
fn starts_a_program(_boot: WorkerBoot) -> i32 {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("echo \"[${}]\"", entry::ENV_BOOT)])
        .output()
        .expect("sh runs");
    i32::from(String::from_utf8_lossy(&out.stdout).trim() != "[]")
}

/// The boot variable is the worker's alone: a program the worker starts does not inherit it.
#[test]
fn programs_a_worker_starts_do_not_see_its_boot_info() {
    entry::run_if_worker();
    let _g = common::serial();
    let mut w = SpawnCommand::new(starts_a_program)
        .args(args("programs_a_worker_starts_do_not_see_its_boot_info"))
        .spawn()
        .unwrap();
    assert_eq!(w.wait().unwrap(), ExitReason::Exited { code: 0 });
}

/// Printed by the test below when this binary ran as a plain test program.
const RAN_AS_A_PROGRAM: &str = "RAN-AS-A-PROGRAM";

/// A process started with boot info whose parent is not its own parent (its parent died
/// before the worker could arm its death signal, and it was re-parented) exits: it must not
/// run the program's `main` as if it were the user's program. Here `sh` stands in between.
#[test]
fn an_orphaned_worker_exits_instead_of_running_main() {
    entry::run_if_worker();
    if std::env::var_os("POOL_TEST_ORPHAN").is_some() {
        println!("{RAN_AS_A_PROGRAM}");
        return;
    }
    let _g = common::serial();
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let mut w = SpawnCommand::new(never_runs)
        .program("/bin/sh")
        .env("POOL_TEST_ORPHAN", "1")
        .args([
            "-c".as_ref(),
            "\"$0\" --exact an_orphaned_worker_exits_instead_of_running_main --nocapture; exit $?"
                .as_ref(),
            exe.as_os_str(),
        ])
        .spawn()
        .unwrap();
    let r = w.wait().unwrap();
    assert_eq!(r.code(), Some(EXIT_BAD_BOOT), "{r}");
}

/// Sends itself SIGINT (as a terminal's Ctrl-C reaches the whole process group); 0 if it lives.
fn interrupts_itself(_boot: WorkerBoot) -> i32 {
    // SAFETY: raise with a valid signal number.
    unsafe { libc::raise(libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(50));
    0
}

/// A spawned worker ignores Ctrl-C by default (the parent ends the call in order); with
/// `ignore_sigint: false` the signal takes its default course.
#[test]
fn a_spawned_worker_ignores_sigint_unless_told_otherwise() {
    entry::run_if_worker();
    let _g = common::serial();
    let name = "a_spawned_worker_ignores_sigint_unless_told_otherwise";
    let mut w = SpawnCommand::new(interrupts_itself)
        .args(args(name))
        .spawn()
        .unwrap();
    assert_eq!(w.wait().unwrap(), ExitReason::Exited { code: 0 });
    let mut w = SpawnCommand::new(interrupts_itself)
        .child_options(ChildOptions {
            ignore_sigint: false,
        })
        .args(args(name))
        .spawn()
        .unwrap();
    let r = w.wait().unwrap();
    assert_eq!(r.signal_name(), Some("SIGINT"), "{r}");
}
