//! The duplex link: typed messages and bulk bytes between a parent and a forked worker.

mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use pool_ipc::channel::{self, ChannelError, KIND_BYTES, KIND_MSG, Link};
use pool_ipc::ring::WaitPolicy;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Job {
    Square(u64),
    Concat { parts: Vec<String> },
    Stop,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Answer {
    Number(u64),
    Text(String),
}

#[test]
fn typed_requests_and_answers_across_fork() {
    let _g = common::serial();
    let link = Link::new(1 << 12).unwrap();
    let l2 = link.clone();
    let mut w = common::fork(move || {
        let mut ch = l2.worker_end(WaitPolicy::default());
        loop {
            let a = match ch.recv::<Job>().unwrap() {
                Job::Square(x) => Answer::Number(x * x),
                Job::Concat { parts } => Answer::Text(parts.concat()),
                Job::Stop => return 0,
            };
            ch.send(&a).unwrap();
        }
    });
    let mut ch = link.parent_end(WaitPolicy::default());
    for x in 0..1000u64 {
        ch.send(&Job::Square(x)).unwrap();
        assert_eq!(ch.recv::<Answer>().unwrap(), Answer::Number(x * x));
    }
    ch.send(&Job::Concat {
        parts: vec!["a".into(), "é".repeat(5000), "z".into()],
    })
    .unwrap();
    assert_eq!(
        ch.recv::<Answer>().unwrap(),
        Answer::Text(format!("a{}z", "é".repeat(5000)))
    );
    ch.send(&Job::Stop).unwrap();
    assert!(w.wait().unwrap().success());
    assert!(matches!(
        ch.recv_timeout::<Answer>(Duration::from_secs(1)),
        Err(ChannelError::Disconnected)
    ));
}

/// A forked worker that answers every byte frame with its bytes plus one, until the link closes.
fn echo_plus_one(link: &Link) -> pool_ipc::process::WorkerProcess {
    let link = link.clone();
    common::fork(move || {
        let mut ch = link.worker_end(WaitPolicy::default());
        let mut buf = Vec::new();
        while ch.recv_bytes(&mut buf).is_ok() {
            for b in &mut buf {
                *b = b.wrapping_add(1);
            }
            ch.send_bytes(&buf).unwrap();
        }
        0
    })
}

#[test]
fn one_mib_payloads_both_ways_across_fork() {
    let _g = common::serial();
    let link = Link::new(1 << 16).unwrap();
    let mut w = echo_plus_one(&link);
    let mut ch = link.parent_end(WaitPolicy::default());
    let payload: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut back = Vec::new();
    for _ in 0..4 {
        ch.send_bytes(&payload).unwrap();
        ch.recv_bytes(&mut back).unwrap();
        assert_eq!(back.len(), payload.len());
        assert!(
            back.iter()
                .zip(&payload)
                .all(|(b, p)| *b == p.wrapping_add(1))
        );
    }
    drop(ch);
    assert!(w.wait().unwrap().success());
}

#[test]
fn frame_kinds_are_checked() {
    let _w = common::watchdog();
    let link = Link::new(256).unwrap();
    let mut a = link.parent_end(WaitPolicy::default());
    let mut b = link.worker_end(WaitPolicy::default());
    a.send_bytes(b"raw").unwrap();
    let r = b.recv::<u32>();
    assert!(
        matches!(
            r,
            Err(ChannelError::UnexpectedKind {
                expected: 1,
                got: 2
            })
        ),
        "{r:?}"
    );
    a.send(&5u32).unwrap();
    let mut buf = Vec::new();
    assert!(matches!(
        b.recv_bytes(&mut buf),
        Err(ChannelError::UnexpectedKind { .. })
    ));
    assert!(matches!(
        b.recv_timeout::<u32>(Duration::from_millis(10)),
        Err(ChannelError::Timeout)
    ));
}

#[test]
fn halves_work_from_separate_threads() {
    let _w = common::watchdog();
    let link = Link::new(1024).unwrap();
    let (mut ptx, mut prx) = link.parent_end(WaitPolicy::default()).split();
    let mut w = link.worker_end(WaitPolicy::default());
    let t = std::thread::spawn(move || {
        for i in 0..5000u32 {
            ptx.send(&i).unwrap();
        }
    });
    let echo = std::thread::spawn(move || {
        for _ in 0..5000 {
            let v: u32 = w.recv().unwrap();
            w.send(&(v + 1)).unwrap();
        }
    });
    for i in 0..5000u32 {
        assert_eq!(prx.recv::<u32>().unwrap(), i + 1);
    }
    t.join().unwrap();
    echo.join().unwrap();
}

#[test]
fn mixed_frames_are_told_apart() {
    let _w = common::watchdog();
    let link = Link::new(4096).unwrap();
    let mut a = link.parent_end(WaitPolicy::default());
    let mut b = link.worker_end(WaitPolicy::default());
    a.send(&Job::Square(3)).unwrap();
    a.send_bytes(&[9; 1000]).unwrap();
    let (kind, frame) = b.recv_frame(None).unwrap();
    assert_eq!(kind, KIND_MSG);
    assert_eq!(channel::decode::<Job>(frame).unwrap(), Job::Square(3));
    let (kind, frame) = b.recv_frame(Some(Duration::from_secs(1))).unwrap();
    assert_eq!((kind, frame.len()), (KIND_BYTES, 1000));
    assert!(matches!(
        b.recv_frame(Some(Duration::from_millis(5))),
        Err(ChannelError::Timeout)
    ));
}

/// Sizes around every threshold (the bulk arena's minimum, the ring's capacity, the arena's
/// capacity) arrive intact, whichever path each takes, in both directions across a fork.
#[test]
fn payloads_around_the_thresholds_arrive_intact() {
    let _g = common::serial();
    let ring = 1 << 16;
    let arena = 1 << 20;
    let link = Link::with_arena(ring, arena).unwrap();
    let mut w = echo_plus_one(&link);
    let mut ch = link.parent_end(WaitPolicy::default());
    let min = channel::BULK_MIN;
    let sizes = [
        0,
        1,
        ring - 1,
        ring,
        ring + 1,
        min - 1,
        min,
        min + 1,
        arena - 1,
        arena,
        arena + 1,
        3 * arena + 5,
    ];
    let mut back = Vec::new();
    for (k, &n) in sizes.iter().enumerate() {
        let payload: Vec<u8> = (0..n).map(|i| (i % 251 + k) as u8).collect();
        ch.send_bytes(&payload).unwrap();
        ch.recv_bytes(&mut back).unwrap();
        assert_eq!(back.len(), n);
        assert!(
            back.iter()
                .zip(&payload)
                .all(|(b, p)| *b == p.wrapping_add(1)),
            "payload of {n} bytes garbled"
        );
    }
    // Several big payloads in flight at once: each takes its own place in the arena.
    let many: Vec<Vec<u8>> = (0..3).map(|k| vec![k as u8; min + k]).collect();
    for p in &many {
        ch.send_bytes(p).unwrap();
    }
    for p in &many {
        ch.recv_bytes(&mut back).unwrap();
        assert_eq!(back.len(), p.len());
        assert!(back.iter().all(|b| *b == p[0] + 1));
    }
    drop(ch);
    assert!(w.wait().unwrap().success());
}

/// A worker killed while its big payload sits in the arena, not yet taken: the payload it
/// announced still arrives whole (the arena is the link's memory, not the worker's), the link
/// then reports the hang-up, and nothing is left open.
#[test]
fn a_worker_killed_mid_payload_loses_nothing_and_leaks_nothing() {
    let _g = common::serial();
    let inode;
    {
        let link = Link::new(1 << 16).unwrap();
        inode = inode_of(link.region().fd().as_raw_fd());
        let l2 = link.clone();
        let big = channel::BULK_MIN * 4 + 3;
        let mut w = common::fork(move || {
            let (mut tx, _rx) = l2.worker_end(WaitPolicy::default()).split();
            let payload: Vec<u8> = (0..big).map(|i| (i % 241) as u8).collect();
            tx.send_bytes(&payload).unwrap();
            // SAFETY: kill(2) on our own pid.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            0
        });
        // Dead before the parent reads a byte.
        let r = w.wait().unwrap();
        assert_eq!(r.signal(), Some(libc::SIGKILL));
        link.close();
        let mut ch = link.parent_end(WaitPolicy::default());
        let mut back = Vec::new();
        ch.recv_bytes(&mut back).unwrap();
        assert_eq!(back.len(), big);
        assert!(back.iter().enumerate().all(|(i, b)| *b == (i % 241) as u8));
        assert!(matches!(
            ch.recv_bytes_timeout(&mut back, Duration::from_secs(5)),
            Err(ChannelError::Disconnected)
        ));
    }
    assert_memfd_closed(inode);
}

/// Big payloads are lent in place (`recv_data`, what the parent's reader uses for results), small
/// ones owned; several leases may be held at once and dropped in any order, and they stay
/// readable after their worker was SIGKILLed and its link closed; nothing is left open after.
#[test]
fn lent_payloads_are_read_in_place_and_outlive_their_worker() {
    let _g = common::serial();
    let inode;
    let big = channel::BULK_MIN * 2 + 5;
    let pattern = |k: usize, i: usize| ((i * 7 + k) % 253) as u8;
    {
        let link = Link::new(1 << 16).unwrap();
        inode = inode_of(link.region().fd().as_raw_fd());
        let l2 = link.clone();
        let mut w = common::fork(move || {
            let (mut tx, _rx) = l2.worker_end(WaitPolicy::default()).split();
            for k in 0..3 {
                let payload: Vec<u8> = (0..big + k).map(|i| pattern(k, i)).collect();
                tx.send_bytes(&payload).unwrap();
            }
            tx.send_bytes(&[9; 100]).unwrap();
            // SAFETY: kill(2) on our own pid.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            0
        });
        assert_eq!(w.wait().unwrap().signal(), Some(libc::SIGKILL));
        link.close();
        let (_tx, mut rx) = link.parent_end(WaitPolicy::default()).split();
        let mut got: Vec<pool_core::Data> = (0..4).map(|_| rx.recv_data().unwrap()).collect();
        let small = got.pop().unwrap();
        assert!(
            matches!(&small, pool_core::Data::Bytes(b) if b == &[9; 100]),
            "{small:?}"
        );
        // Dropped out of order: the middle one first.
        let middle = got.remove(1);
        drop(middle);
        for (k, d) in [(0, &got[0]), (2, &got[1])] {
            assert!(matches!(d, pool_core::Data::Lent(_)), "{d:?}");
            let bytes = d.encoded().unwrap();
            assert_eq!(bytes.len(), big + k);
            assert!(bytes.iter().enumerate().all(|(i, b)| *b == pattern(k, i)));
        }
        assert!(matches!(rx.recv_data(), Err(ChannelError::Disconnected)));
        drop(link);
        drop(rx);
        // The leases alone keep the memory mapped and readable.
        assert_eq!(got[1].encoded().unwrap()[big], pattern(2, big));
    }
    assert_memfd_closed(inode);
}

/// The inode of what `fd` refers to (0 when it is not open).
fn inode_of(fd: i32) -> u64 {
    // SAFETY: an all-zero `stat` is a valid out value; fstat writes it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out pointer; a closed fd is an error, not undefined behaviour.
    if unsafe { libc::fstat(fd, &mut st) } == 0 {
        st.st_ino
    } else {
        0
    }
}

/// No fd of this process is the memfd `inode` (other tests of this binary open links
/// meanwhile, so the count of open fds proves nothing).
fn assert_memfd_closed(inode: u64) {
    let open: Vec<_> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&fd| inode_of(fd) == inode)
        .collect();
    assert!(
        open.is_empty(),
        "the link's memfd is still open as fds {open:?}"
    );
}
