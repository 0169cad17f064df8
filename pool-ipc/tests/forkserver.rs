//! The forkserver without the pool: launches, exit reports relayed by the server, fds passed
//! to workers, the server's death and its replacement. This binary never calls the entry hook,
//! so the server is started lazily, by forking this process (the documented fallback).

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

use pool_ipc::entry::WorkerBoot;
use pool_ipc::forkserver;
use pool_ipc::process::ExitReason;

/// One test at a time: one of them kills the shared server.
static SERIAL: Mutex<()> = Mutex::new(());

/// Writes its payload to the fd it was given, then exits with code 7.
fn echo_main(mut boot: WorkerBoot) -> i32 {
    let fd = boot.take_fd(0).expect("an fd");
    let mut f = std::fs::File::from(fd);
    std::io::Write::write_all(&mut f, &boot.payload).unwrap();
    7
}

fn sleep_main(_: WorkerBoot) -> i32 {
    std::thread::sleep(Duration::from_secs(30));
    0
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (r.into(), w.into())
}

#[test]
fn a_worker_gets_its_fds_and_its_exit_code_is_relayed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (r, w) = pipe();
    let mut p = forkserver::launch(echo_main, 3, b"hello".to_vec(), &[w.as_fd()]).unwrap();
    drop(w);
    let server = forkserver::server_pid().expect("a server runs now");
    assert_ne!(p.pid(), server);
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    assert_eq!(out, "hello");
    assert_eq!(p.wait().unwrap(), ExitReason::Exited { code: 7 });
    // Not our child: the server reaped it.
    assert!(pool_ipc::fds::zombie_children().unwrap().is_empty());
}

#[test]
fn a_killed_worker_reads_as_killed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = forkserver::launch(sleep_main, 0, Vec::new(), &[]).unwrap();
    assert_eq!(p.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    p.kill(libc::SIGKILL).unwrap();
    let r = p.wait().unwrap();
    assert_eq!(r.signal(), Some(libc::SIGKILL), "{r}");
}

#[test]
fn a_dead_server_fails_its_workers_clearly_and_is_replaced() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = forkserver::launch(sleep_main, 0, Vec::new(), &[]).unwrap();
    let server = forkserver::server_pid().unwrap();
    // SAFETY: kill(2) on the server this process started.
    unsafe { libc::kill(server, libc::SIGKILL) };
    let e = p.wait().unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "the forkserver (pid {server}) ended (killed by signal 9 (SIGKILL))"
        )),
        "{e}"
    );
    let (r, w) = pipe();
    let mut q = forkserver::launch(echo_main, 1, b"again".to_vec(), &[w.as_fd()]).unwrap();
    drop(w);
    assert_ne!(forkserver::server_pid(), Some(server), "a new server");
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    assert_eq!(out, "again");
    assert_eq!(q.wait().unwrap().code(), Some(7));
    // The old server was reaped by its reading thread.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !pool_ipc::fds::zombie_children().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "a zombie server");
        std::thread::sleep(Duration::from_millis(10));
    }
}
