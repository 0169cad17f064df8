//! The SPSC ring: ordering, big frames, back-pressure, timeouts, hang-ups, across threads and fork.

mod common;

use std::sync::Arc;
use std::time::Duration;

use pool_ipc::ring::{self, RecvError, RingReceiver, RingSender, SendError, WaitPolicy};
use pool_ipc::shm::SharedRegion;

fn ring_pair(cap: usize) -> (RingSender, RingReceiver) {
    let region = Arc::new(SharedRegion::create("test-ring", ring::ring_len(cap)).unwrap());
    ring::init(&region, 0, cap);
    let p = WaitPolicy::default();
    (
        RingSender::attach(Arc::clone(&region), 0, p),
        RingReceiver::attach(region, 0, p),
    )
}

fn frame(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i.wrapping_mul(31) ^ j) as u8).collect()
}

#[test]
fn threads_stream_frames_of_varied_sizes_in_order() {
    let _w = common::watchdog();
    let (mut tx, mut rx) = ring_pair(4096);
    let n = 20_000;
    let t = std::thread::spawn(move || {
        for i in 0..n {
            tx.send(&frame(i, i % 700), (i % 250) as u8).unwrap();
        }
    });
    let mut buf = Vec::new();
    for i in 0..n {
        let kind = rx.recv(&mut buf).unwrap();
        assert_eq!(kind, (i % 250) as u8);
        assert_eq!(buf, frame(i, i % 700), "frame {i}");
    }
    t.join().unwrap();
    assert_eq!(rx.recv(&mut buf), Err(RecvError::Disconnected));
}

#[test]
fn frames_larger_than_the_ring_are_streamed() {
    let _w = common::watchdog();
    let (mut tx, mut rx) = ring_pair(1024);
    let sizes = [0, 1, 511, 1024, 4097, 100_000, 3];
    let t = std::thread::spawn(move || {
        for (i, &s) in sizes.iter().enumerate() {
            tx.send(&frame(i, s), 7).unwrap();
        }
    });
    let mut buf = Vec::new();
    for (i, &s) in sizes.iter().enumerate() {
        assert_eq!(rx.recv(&mut buf).unwrap(), 7);
        assert_eq!(buf, frame(i, s));
    }
    t.join().unwrap();
}

#[test]
fn recv_times_out_on_an_empty_ring() {
    let _w = common::watchdog();
    let (_tx, mut rx) = ring_pair(256);
    let mut buf = Vec::new();
    assert_eq!(
        rx.recv_timeout(&mut buf, Duration::from_millis(20)),
        Err(RecvError::Timeout)
    );
    assert_eq!(rx.try_recv(&mut buf), Ok(None));
}

#[test]
fn send_blocks_when_full_and_times_out_without_sending() {
    let _w = common::watchdog();
    let (mut tx, mut rx) = ring_pair(256);
    tx.send(&[1; 100], 0).unwrap();
    tx.send(&[2; 100], 0).unwrap();
    assert_eq!(
        tx.send_timeout(&[3; 100], 0, Duration::from_millis(20)),
        Err(SendError::Timeout)
    );
    let mut buf = Vec::new();
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, [1; 100]);
    tx.send_timeout(&[3; 100], 0, Duration::from_millis(20))
        .unwrap();
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, [2; 100]);
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, [3; 100]);
}

#[test]
fn blocked_sender_is_released_by_the_receiver() {
    let _w = common::watchdog();
    let (mut tx, mut rx) = ring_pair(256);
    let t = std::thread::spawn(move || {
        for i in 0..50u8 {
            tx.send(&[i; 120], 0).unwrap();
        }
    });
    let mut buf = Vec::new();
    for i in 0..50u8 {
        std::thread::sleep(Duration::from_micros(200));
        rx.recv(&mut buf).unwrap();
        assert_eq!(buf, [i; 120]);
    }
    t.join().unwrap();
}

#[test]
fn receiver_drains_then_sees_the_hang_up() {
    let _w = common::watchdog();
    let (mut tx, mut rx) = ring_pair(256);
    tx.send(b"a", 0).unwrap();
    tx.send(b"b", 0).unwrap();
    drop(tx);
    let mut buf = Vec::new();
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, b"a");
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, b"b");
    assert_eq!(rx.recv(&mut buf), Err(RecvError::Disconnected));
}

#[test]
fn closer_wakes_a_sleeping_receiver_and_a_blocked_sender() {
    let _w = common::watchdog();
    let (mut tx, mut rx) = ring_pair(256);
    let closer = rx.closer();
    let t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        rx.recv(&mut buf)
    });
    std::thread::sleep(Duration::from_millis(30));
    closer.close();
    assert_eq!(t.join().unwrap(), Err(RecvError::Disconnected));
    assert_eq!(tx.send(b"x", 0), Err(SendError::Disconnected));

    let (mut tx, rx) = ring_pair(256);
    let closer = tx.closer();
    tx.send(&[0; 200], 0).unwrap();
    let t = std::thread::spawn(move || tx.send(&[0; 200], 0));
    std::thread::sleep(Duration::from_millis(30));
    closer.close();
    assert_eq!(t.join().unwrap(), Err(SendError::Disconnected));
    drop(rx);
}

#[test]
fn echo_across_fork() {
    let _g = common::serial();
    let cap = 4096;
    let region = Arc::new(SharedRegion::create("test-ring", 2 * ring::ring_len(cap)).unwrap());
    ring::init(&region, 0, cap);
    ring::init(&region, ring::ring_len(cap), cap);
    let r2 = Arc::clone(&region);
    let mut child = common::fork(move || {
        let p = WaitPolicy::default();
        let mut rx = RingReceiver::attach(Arc::clone(&r2), 0, p);
        let mut tx = RingSender::attach(r2, ring::ring_len(cap), p);
        let mut buf = Vec::new();
        while let Ok(kind) = rx.recv(&mut buf) {
            buf.reverse();
            tx.send(&buf, kind).unwrap();
        }
        0
    });
    let p = WaitPolicy::default();
    let mut tx = RingSender::attach(Arc::clone(&region), 0, p);
    let mut rx = RingReceiver::attach(Arc::clone(&region), ring::ring_len(cap), p);
    let mut buf = Vec::new();
    for i in 0..2000 {
        let mut f = frame(i, (i * 7) % 9000);
        tx.send(&f, 1).unwrap();
        rx.recv(&mut buf).unwrap();
        f.reverse();
        assert_eq!(buf, f);
    }
    drop(tx);
    assert_eq!(rx.recv(&mut buf), Err(RecvError::Disconnected));
    assert!(child.wait().unwrap().success());
}

#[test]
fn deferred_frames_reach_a_sleeping_receiver_on_flush() {
    let _w = common::watchdog();
    let region = Arc::new(SharedRegion::create("test-ring", ring::ring_len(1024)).unwrap());
    ring::init(&region, 0, 1024);
    let sleepy = WaitPolicy {
        spins: 0,
        yields: 0,
    };
    let mut tx = RingSender::attach(Arc::clone(&region), 0, sleepy);
    let mut rx = RingReceiver::attach(region, 0, sleepy);
    let t = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for _ in 0..100 {
            rx.recv(&mut buf).unwrap();
            got.push(buf[0]);
        }
        got
    });
    // Batches larger than the ring force flushes while blocked for space; the tail is flushed.
    for round in 0..4u8 {
        std::thread::sleep(Duration::from_millis(10));
        for i in 0..25u8 {
            tx.send_deferred(&[round * 25 + i; 60], 0).unwrap();
        }
        tx.flush();
    }
    assert_eq!(t.join().unwrap(), (0..100).collect::<Vec<u8>>());
}

#[test]
fn a_corrupted_header_is_an_error_not_a_panic() {
    let _w = common::watchdog();
    let region = Arc::new(SharedRegion::create("test-ring", ring::ring_len(256)).unwrap());
    ring::init(&region, 0, 256);
    let p = WaitPolicy::default();
    let mut tx = RingSender::attach(Arc::clone(&region), 0, p);
    let mut rx = RingReceiver::attach(Arc::clone(&region), 0, p);
    tx.send(b"hello", 0).unwrap();
    // Scribble over the chunk's length, as a worker with a wild pointer might.
    region
        .atomic_u64(ring::HEADER_LEN)
        .store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
    let mut buf = Vec::new();
    assert!(matches!(rx.recv(&mut buf), Err(RecvError::Corrupt { .. })));
    assert_eq!(tx.send(b"x", 0), Err(SendError::Disconnected));
}

#[test]
fn tiny_ring_with_sleeping_sides_stays_correct() {
    let _w = common::watchdog();
    // Every wait goes straight to the futex, and most frames are streamed in pieces.
    let region = Arc::new(SharedRegion::create("test-ring", ring::ring_len(64)).unwrap());
    ring::init(&region, 0, 64);
    let sleepy = WaitPolicy {
        spins: 0,
        yields: 0,
    };
    let mut tx = RingSender::attach(Arc::clone(&region), 0, sleepy);
    let mut rx = RingReceiver::attach(region, 0, sleepy);
    let n = 5000;
    let t = std::thread::spawn(move || {
        for i in 0..n {
            if i % 3 == 0 {
                tx.send_deferred(&frame(i, i % 200), 1).unwrap();
            } else {
                tx.send(&frame(i, i % 200), 1).unwrap();
            }
        }
        tx.flush();
    });
    let mut buf = Vec::new();
    for i in 0..n {
        rx.recv(&mut buf).unwrap();
        assert_eq!(buf, frame(i, i % 200), "frame {i}");
    }
    t.join().unwrap();
}

/// A sender that must wait for space first runs its hook: the parent's thread hands the
/// listening duty back there, so that a worker waiting for its results to be read (which then
/// reads no commands) is read by its reader thread. Here the receiver reads only once the hook
/// ran; without it the third send would wait forever.
#[test]
fn a_sender_runs_its_hook_before_it_waits_for_space() {
    let _w = common::watchdog();
    let (mut tx, mut rx) = ring_pair(64);
    let handed_back = Arc::new(std::sync::Barrier::new(2));
    let hook = handed_back.clone();
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    tx.before_waiting(Arc::new(move || {
        if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            hook.wait();
        }
    }));
    let reader = std::thread::spawn(move || {
        handed_back.wait();
        let mut buf = Vec::new();
        for i in 0..3 {
            assert_eq!(rx.recv(&mut buf).unwrap(), i);
            assert_eq!(buf, frame(i as usize, 24));
        }
    });
    for i in 0..3u8 {
        tx.send(&frame(i as usize, 24), i).unwrap();
    }
    reader.join().unwrap();
    assert!(
        runs.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the third frame had to wait"
    );
}

#[test]
fn a_worker_spins_long_only_while_a_cpu_is_left_for_the_caller() {
    assert_eq!(WaitPolicy::worker(1, 2), WaitPolicy::WORKER);
    assert_eq!(WaitPolicy::worker(3, 8), WaitPolicy::WORKER);
    for (workers, cpus) in [(2, 2), (8, 2), (1, 1)] {
        let p = WaitPolicy::worker(workers, cpus);
        assert_eq!(p.spins, pool_core::patience::FLOOR, "{workers} on {cpus}");
        assert_eq!(p.yields, WaitPolicy::WORKER.yields);
    }
}
