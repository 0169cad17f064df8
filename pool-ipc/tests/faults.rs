//! Worker deaths are reported with the right reason, promptly, leaving no zombie and no fd.

mod common;

use std::sync::Arc;
use std::time::Duration;

use pool_ipc::channel::{ChannelError, Link};
use pool_ipc::fds::zombie_children;
use pool_ipc::process::{EXIT_PANICKED, ExitReason, WorkerProcess};
use pool_ipc::ring::WaitPolicy;
use pool_ipc::watcher::DeathWatcher;

/// Runs `work` in a forked worker watched by a [`DeathWatcher`]; returns the reaped reason.
fn death_of(work: impl FnOnce() -> i32, kill: bool) -> ExitReason {
    let (watcher, deaths) = DeathWatcher::new().unwrap();
    let mut w = common::fork(work);
    watcher.watch(&w, 42).unwrap();
    if kill {
        std::thread::sleep(Duration::from_millis(20));
        w.kill(libc::SIGKILL).unwrap();
    }
    let d = deaths
        .recv_timeout(Duration::from_secs(5))
        .expect("death not reported");
    assert_eq!((d.token, d.pid), (42, w.pid()));
    assert!(w.has_exited());
    let r = w.wait().unwrap();
    assert_eq!(w.exit_reason(), Some(r));
    r
}

/// Asserts no zombie and no extra fd after `f`.
fn leak_free(f: impl FnOnce()) {
    let _g = common::serial();
    let fds = common::fd_table();
    f();
    assert_eq!(
        zombie_children().unwrap(),
        Vec::<i32>::new(),
        "zombies left"
    );
    assert_eq!(common::opened_since(&fds), [], "fds leaked");
}

#[test]
fn exit_code_is_reported() {
    leak_free(|| {
        let r = death_of(|| 3, false);
        assert_eq!(r, ExitReason::Exited { code: 3 });
        assert_eq!(r.to_string(), "exited with code 3");
    });
}

#[test]
fn process_exit_inside_a_task_is_reported() {
    leak_free(|| {
        let r = death_of(|| std::process::exit(7), false);
        assert_eq!(r.code(), Some(7));
    });
}

#[test]
fn segfault_is_reported_as_sigsegv() {
    leak_free(|| {
        let r = death_of(
            || {
                common::no_core();
                // SAFETY: deliberately faulting to test crash reporting.
                unsafe { std::ptr::null_mut::<u64>().write_volatile(1) };
                0
            },
            false,
        );
        assert_eq!(r.signal(), Some(libc::SIGSEGV), "{r}");
        assert_eq!(r.signal_name(), Some("SIGSEGV"));
    });
}

#[test]
fn abort_is_reported_as_sigabrt() {
    leak_free(|| {
        let r = death_of(
            || {
                common::no_core();
                std::process::abort()
            },
            false,
        );
        assert_eq!(r.signal_name(), Some("SIGABRT"), "{r}");
        assert!(r.to_string().starts_with("killed by signal 6 (SIGABRT)"));
    });
}

#[test]
fn sigkill_is_reported() {
    leak_free(|| {
        let r = death_of(
            || {
                std::thread::sleep(Duration::from_secs(30));
                0
            },
            true,
        );
        assert_eq!(
            r,
            ExitReason::Signaled {
                signal: libc::SIGKILL,
                core_dumped: false
            }
        );
    });
}

#[test]
fn panic_becomes_exit_code_101() {
    leak_free(|| {
        let r = death_of(|| panic!("boom in worker"), false);
        assert_eq!(r.code(), Some(EXIT_PANICKED));
    });
}

#[test]
fn dropping_a_live_worker_kills_and_reaps_it() {
    leak_free(|| {
        let w = common::fork(|| {
            std::thread::sleep(Duration::from_secs(30));
            0
        });
        let pid = w.pid();
        drop(w);
        // SAFETY: probing a pid with signal 0 has no effect.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "worker {pid} still exists");
    });
}

#[test]
fn wait_timeout_returns_none_then_the_reason() {
    leak_free(|| {
        let mut w = common::fork(|| {
            std::thread::sleep(Duration::from_millis(300));
            5
        });
        assert_eq!(w.wait_timeout(Duration::from_millis(10)).unwrap(), None);
        assert_eq!(w.try_wait().unwrap(), None);
        let r = w.wait_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(r, Some(ExitReason::Exited { code: 5 }));
    });
}

#[test]
fn a_dead_worker_unblocks_the_parent_through_the_watcher() {
    leak_free(|| {
        let link = Link::new(4096).unwrap();
        let closer = link.clone();
        let watcher = DeathWatcher::with_callback(move |_| closer.close()).unwrap();
        let l2 = link.clone();
        let mut w = common::fork(move || {
            let mut ch = l2.worker_end(WaitPolicy::default());
            let _: u32 = ch.recv().unwrap();
            common::no_core();
            std::process::abort()
        });
        watcher.watch(&w, 1).unwrap();
        let mut ch = link.parent_end(WaitPolicy::default());
        ch.send(&1u32).unwrap();
        // The worker dies without answering; the watcher closes the link, so this returns.
        let r: Result<u32, _> = ch.recv();
        assert!(matches!(r, Err(ChannelError::Disconnected)), "{r:?}");
        assert_eq!(w.wait().unwrap().signal(), Some(libc::SIGABRT));
        drop((watcher, ch, link));
    });
}

#[test]
fn watcher_reports_many_workers_each_once() {
    leak_free(|| {
        let (watcher, deaths) = DeathWatcher::new().unwrap();
        let mut ws: Vec<WorkerProcess> = (0..6)
            .map(|i| {
                common::fork(move || {
                    std::thread::sleep(Duration::from_millis(20 * i));
                    i as i32
                })
            })
            .collect();
        for (i, w) in ws.iter().enumerate() {
            watcher.watch(w, i as u64).unwrap();
        }
        let mut seen: Vec<u64> = (0..6)
            .map(|_| deaths.recv_timeout(Duration::from_secs(5)).unwrap().token)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
        assert!(watcher.is_empty());
        for (i, w) in ws.iter_mut().enumerate() {
            assert_eq!(w.wait().unwrap().code(), Some(i as i32));
        }
    });
}

#[test]
fn a_worker_dies_with_its_parent() {
    leak_free(|| {
        let region = Arc::new(pool_ipc::shm::SharedRegion::create("pid", 4096).unwrap());
        let r2 = Arc::clone(&region);
        let mut middle = common::fork(move || {
            let grandchild = common::fork(|| {
                std::thread::sleep(Duration::from_secs(30));
                0
            });
            r2.atomic_u32(0)
                .store(grandchild.pid() as u32, std::sync::atomic::Ordering::SeqCst);
            // Exit without reaping: the grandchild must be killed by PR_SET_PDEATHSIG.
            // SAFETY: _exit ends this child immediately.
            unsafe { libc::_exit(0) }
        });
        assert!(middle.wait().unwrap().success());
        let gc = region
            .atomic_u32(0)
            .load(std::sync::atomic::Ordering::SeqCst) as i32;
        assert!(gc > 0);
        common::assert_dies_soon(gc, "grandchild");
    });
}

#[test]
fn watching_an_already_reaped_worker_reports_at_once() {
    leak_free(|| {
        let (watcher, deaths) = DeathWatcher::new().unwrap();
        let mut w = common::fork(|| 0);
        assert!(w.wait().unwrap().success());
        watcher.watch(&w, 7).unwrap();
        assert_eq!(
            deaths.recv_timeout(Duration::from_secs(5)).unwrap().token,
            7
        );
        assert!(!watcher.unwatch(7));
    });
}

#[test]
fn unwatched_workers_are_not_reported() {
    leak_free(|| {
        let (watcher, deaths) = DeathWatcher::new().unwrap();
        let mut w = common::fork(|| {
            std::thread::sleep(Duration::from_millis(50));
            0
        });
        watcher.watch(&w, 1).unwrap();
        assert!(watcher.unwatch(1));
        assert!(w.wait().unwrap().success());
        assert!(deaths.recv_timeout(Duration::from_millis(100)).is_err());
    });
}

#[test]
fn a_sender_blocked_on_a_dead_worker_gets_disconnected() {
    leak_free(|| {
        let link = Link::new(1 << 12).unwrap();
        let closer = link.clone();
        let watcher = DeathWatcher::with_callback(move |_| closer.close()).unwrap();
        let l2 = link.clone();
        let mut w = common::fork(move || {
            let mut ch = l2.worker_end(WaitPolicy::default());
            let _: u32 = ch.recv().unwrap();
            // Dies without reading the big frame that follows.
            std::process::exit(9)
        });
        watcher.watch(&w, 1).unwrap();
        let mut ch = link.parent_end(WaitPolicy::default());
        ch.send(&1u32).unwrap();
        let r = ch.send_bytes(&vec![0u8; 10 << 20]);
        assert!(matches!(r, Err(ChannelError::Disconnected)), "{r:?}");
        assert_eq!(w.wait().unwrap().code(), Some(9));
        drop((watcher, ch, link));
    });
}
