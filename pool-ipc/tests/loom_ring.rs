//! Loom models of the shared-memory ring's protocol (see `pool_ipc::ring`'s module docs): every
//! interleaving (up to a preemption bound) of a producer and a consumer thread, on the real ring
//! code with loom's atomics, fences and an emulated futex (`pool_ipc`'s `sync` module).
//!
//! A lost wake-up shows as a loom deadlock, a frame read before it was published as a data race
//! on the ring's data cells, a wrong byte count as a torn or missing frame.
//!
//! Run (a separate target dir keeps normal builds intact):
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!  cargo test -p pool-ipc --release --test loom_ring`
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use pool_ipc::backend::Duty;
use pool_ipc::ring::{
    self, RecvError, RingCloser, RingReceiver, RingSender, SendError, WaitPolicy,
};
use pool_ipc::shm::SharedRegion;

/// No spinning, no yielding: every wait goes straight to the sleep protocol (steps 3 to 5).
const SLEEP_AT_ONCE: WaitPolicy = WaitPolicy {
    spins: 0,
    yields: 0,
};

/// A fresh ring of `cap` data bytes and its two ends.
fn pair(cap: usize) -> (RingSender, RingReceiver) {
    let region = Arc::new(SharedRegion::create("loom-ring", ring::ring_len(cap)).unwrap());
    ring::init(&region, 0, cap);
    (
        RingSender::attach(region.clone(), 0, SLEEP_AT_ONCE),
        RingReceiver::attach(region, 0, SLEEP_AT_ONCE),
    )
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i as u8)).collect()
}

/// Steps 3 and 4: a consumer that goes to sleep is woken by the next publish. The sender stays
/// alive until the frame arrived, so only the wake-up (not the hang-up) can end the wait.
#[test]
fn a_sleeping_receiver_is_woken_by_a_send() {
    loom::model(|| {
        let (mut tx, mut rx) = pair(64);
        let sender = thread::spawn(move || {
            tx.send(&payload(5, 1), 7).unwrap();
            tx
        });
        let mut out = Vec::new();
        assert_eq!(rx.recv(&mut out), Ok(7));
        assert_eq!(out, payload(5, 1));
        drop(sender.join().unwrap());
    });
}

/// Step 6: frames published with `send_deferred` are all delivered after one `flush`.
#[test]
fn a_deferred_batch_is_woken_by_one_flush() {
    loom::model(|| {
        let (mut tx, mut rx) = pair(64);
        let sender = thread::spawn(move || {
            tx.send_deferred(&payload(3, 1), 1).unwrap();
            tx.send_deferred(&payload(4, 2), 2).unwrap();
            tx.flush();
            tx
        });
        let mut out = Vec::new();
        assert_eq!(rx.recv(&mut out), Ok(1));
        assert_eq!(out, payload(3, 1));
        assert_eq!(rx.recv(&mut out), Ok(2));
        assert_eq!(out, payload(4, 2));
        drop(sender.join().unwrap());
    });
}

/// Step 5: a producer that fills the ring sleeps until the consumer hands space back, and every
/// frame arrives whole and in order. Three 24-byte frames (32 bytes with their headers) do not
/// fit a 64-byte ring at once.
#[test]
fn a_full_ring_makes_the_sender_wait_for_space() {
    loom::model(|| {
        let (mut tx, mut rx) = pair(64);
        let sender = thread::spawn(move || {
            for k in 0..3u8 {
                tx.send(&payload(24, k), k).unwrap();
            }
            tx
        });
        let mut out = Vec::new();
        for k in 0..3u8 {
            assert_eq!(rx.recv(&mut out), Ok(k));
            assert_eq!(out, payload(24, k));
        }
        drop(sender.join().unwrap());
    });
}

/// Steps 1, 2 and 5 with the byte counters wrapping: a frame more than twice the ring's size
/// streams through it in chunks, `tail` and `head` passing the end of the data area several
/// times, and arrives intact.
#[test]
fn a_frame_larger_than_the_ring_streams_through_it() {
    loom::model(|| {
        let (mut tx, mut rx) = pair(64);
        let sender = thread::spawn(move || {
            tx.send(&payload(150, 9), 3).unwrap();
            tx
        });
        let mut out = Vec::new();
        assert_eq!(rx.recv(&mut out), Ok(3));
        assert_eq!(out, payload(150, 9));
        drop(sender.join().unwrap());
    });
}

/// Step 7, producer side: a sender hanging up after a frame leaves it to be drained; then the
/// receiver sees `Disconnected` instead of sleeping forever.
#[test]
fn a_receiver_drains_then_sees_the_hang_up() {
    loom::model(|| {
        let (mut tx, mut rx) = pair(64);
        let sender = thread::spawn(move || {
            tx.send(&payload(8, 4), 4).unwrap();
            drop(tx);
        });
        let mut out = Vec::new();
        assert_eq!(rx.recv(&mut out), Ok(4));
        assert_eq!(out, payload(8, 4));
        assert_eq!(rx.recv(&mut out), Err(RecvError::Disconnected));
        sender.join().unwrap();
    });
}

/// Step 7, consumer side: a sender waiting for space in a full ring is woken by the receiver
/// hanging up and fails with `Disconnected`.
#[test]
fn a_sender_blocked_on_a_full_ring_sees_the_hang_up() {
    loom::model(|| {
        let (mut tx, rx) = pair(64);
        let sender = thread::spawn(move || {
            let mut sent = 0;
            let err = loop {
                match tx.send(&payload(24, 0), 0) {
                    Ok(()) => sent += 1,
                    Err(e) => break e,
                }
            };
            (sent, err)
        });
        drop(rx);
        let (sent, err) = sender.join().unwrap();
        assert_eq!(err, SendError::Disconnected);
        assert!(
            sent <= 2,
            "{sent} frames of 32 bytes cannot fit a 64-byte ring"
        );
    });
}

/// Step 7, third party: a death watcher closing the ring wakes a receiver asleep on it.
#[test]
fn a_closer_wakes_a_sleeping_receiver() {
    loom::model(|| {
        let (tx, mut rx) = pair(64);
        let closer: RingCloser = tx.closer();
        let watcher = thread::spawn(move || closer.close());
        let mut out = Vec::new();
        assert_eq!(rx.recv(&mut out), Err(RecvError::Disconnected));
        watcher.join().unwrap();
        drop(tx);
    });
}

/// The listening duty of `pool_ipc::backend` (steps 1 to 6 of its `backend/duty.rs`): a reader
/// thread and the caller's thread take turns on one ring under a lock, as the process back end
/// does. The caller takes the duty, polls once (waiting for the lock, which the reader gives
/// up when nudged), hands the duty back and sleeps on its events; whatever the interleaving,
/// the frame reaches it exactly once: a lost nudge would leave the caller waiting for the lock
/// and a lost hand-back would strand the frame in the ring, both loom deadlocks.
#[test]
fn a_frame_reaches_the_caller_whoever_listens() {
    loom::model(|| {
        let (mut tx, rx) = pair(64);
        let ring = rx.closer();
        let rx = Arc::new(loom::sync::Mutex::new(rx));
        let duty = Arc::new(Duty::default());
        let (events_tx, events) = loom::sync::mpsc::channel();
        let reader = {
            let (rx, ring, duty) = (rx.clone(), ring.clone(), duty.clone());
            thread::spawn(move || {
                let stop = || duty.caller_has_it() && !ring.is_closed();
                let mut out = Vec::new();
                loop {
                    duty.stand_aside(|| ring.is_closed());
                    let mut rx = rx.lock().unwrap();
                    loop {
                        match rx.recv_unless(&mut out, &stop) {
                            Ok(kind) => events_tx.send(kind).unwrap(),
                            Err(RecvError::Timeout) => break,
                            Err(_) => return,
                        }
                    }
                }
            })
        };
        let sender = thread::spawn(move || {
            tx.send(&payload(3, 1), 7).unwrap();
            tx
        });
        let mut polled = 0;
        if duty.take() {
            ring.nudge_receiver();
        }
        {
            let mut rx = rx.lock().unwrap();
            let mut out = Vec::new();
            while let Ok(Some(kind)) = rx.try_recv(&mut out) {
                assert_eq!((kind, &out[..]), (7, &payload(3, 1)[..]));
                polled += 1;
            }
        }
        duty.hand_back();
        if polled == 0 {
            assert_eq!(events.recv().unwrap(), 7);
        }
        let tx = sender.join().unwrap();
        ring.close();
        reader.join().unwrap();
        drop(tx);
        assert!(events.try_recv().is_err(), "delivered once");
    });
}
