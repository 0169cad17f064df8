//! Property tests of what the parent decodes from a worker process: the ring's chunk headers and
//! frames in shared memory the worker can scribble over, and the wire messages it sends. Arbitrary
//! and mutated inputs give an error, never a panic, a hang or a write outside the ring (a guard
//! of known bytes follows the ring in its region and must stay intact; Valgrind checks reads).

use std::sync::Arc;
use std::time::Duration;

use pool_core::{Event, ExitReason, Failure};
use pool_ipc::bulk::{self, ArenaReader, ArenaWriter, Descriptor};
use pool_ipc::channel::{self, ChannelError, KIND_BULK, KIND_BYTES, KIND_MSG, Link};
use pool_ipc::ring::{self, HEADER_LEN, RecvError, RingReceiver, RingSender, WaitPolicy};
use pool_ipc::shm::SharedRegion;
use pool_wire::msg::FromWorker;
use proptest::prelude::*;

const CAP: usize = 256;
/// Bytes after the ring that must never change (a read or write past the ring would show).
const TAIL_GUARD: usize = 64;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn no_spin() -> WaitPolicy {
    WaitPolicy {
        spins: 0,
        yields: 0,
    }
}

/// A ring at offset 0, with a guard of known bytes after it.
fn region() -> Arc<SharedRegion> {
    let region =
        Arc::new(SharedRegion::create("decode-props", ring::ring_len(CAP) + TAIL_GUARD).unwrap());
    ring::init(&region, 0, CAP);
    region.write_at(ring::ring_len(CAP), &[0xa5; TAIL_GUARD]);
    region
}

fn guard_intact(region: &SharedRegion) -> bool {
    let mut g = [0u8; TAIL_GUARD];
    region.read_at(ring::ring_len(CAP), &mut g);
    g == [0xa5; TAIL_GUARD]
}

/// Receives until the ring is empty, closed or corrupt (at most `n` frames); every outcome but
/// a panic or a hang is allowed.
fn drain(rx: &mut RingReceiver, n: usize) -> Vec<Result<Option<u8>, RecvError>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..n {
        let r = rx.try_recv(&mut buf);
        let stop = !matches!(r, Ok(Some(_)));
        out.push(r);
        if stop {
            break;
        }
    }
    out
}

fn failure() -> Failure {
    Failure {
        phase: pool_core::Phase::Task,
        cause: pool_core::Cause::Panic,
        worker: 3,
        task: Some(17),
        args: Some("17".into()),
        message: "boom".into(),
        backtrace: None,
        attempts: 1,
        earlier: Vec::new(),
    }
}

fn wire_event() -> impl Strategy<Value = FromWorker> {
    prop_oneof![
        Just(FromWorker::Ready),
        (any::<u64>(), any::<u64>())
            .prop_map(|(call, first)| FromWorker::ChunkDone { call, first }),
        Just(FromWorker::Failed { failure: failure() }),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..16)).prop_map(|exit_result| {
            FromWorker::Exited {
                reason: ExitReason::Lifespan,
                exit_result,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// A worker that wrote garbage over the whole ring (data, `tail`, `head`): the parent's
    /// receiver reads frames, `Corrupt` or nothing, and never touches memory past the ring.
    #[test]
    fn a_ring_full_of_garbage_is_read_safely(
        data in prop::collection::vec(any::<u8>(), CAP),
        tail in prop_oneof![any::<u64>(), 0u64..(2 * CAP as u64)],
        head in prop_oneof![any::<u64>(), 0u64..(2 * CAP as u64)],
    ) {
        let region = region();
        region.write_at(HEADER_LEN, &data);
        region.atomic_u64(0).store(tail, std::sync::atomic::Ordering::Release);
        region.atomic_u64(64).store(head, std::sync::atomic::Ordering::Release);
        let mut rx = RingReceiver::attach(region.clone(), 0, no_spin());
        let results = drain(&mut rx, 64);
        if let Some(Err(RecvError::Corrupt { len })) = results.last() {
            prop_assert!(*len > CAP - 8);
        }
        prop_assert!(guard_intact(&region));
    }

    /// Valid frames, then some bytes of the ring (headers included) overwritten: the frames that
    /// survive come out, a damaged header is `Corrupt` (and closes the ring) or a shorter frame.
    #[test]
    fn damaged_frames_are_read_safely(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..5),
        damage in prop::collection::vec((0usize..CAP, any::<u8>()), 1..6),
    ) {
        let region = region();
        let mut tx = RingSender::attach(region.clone(), 0, no_spin());
        let mut rx = RingReceiver::attach(region.clone(), 0, no_spin());
        let mut sent = 0;
        for f in &frames {
            if tx.send_timeout(f, 1, Duration::ZERO).is_err() {
                break;
            }
            sent += 1;
        }
        for &(at, b) in &damage {
            region.write_at(HEADER_LEN + at, &[b]);
        }
        // The worker hangs up (or dies): a damaged header that announces a continuation must
        // then end in `Disconnected`, not in a wait for the rest of the frame.
        let closer = tx.closer();
        drop(tx);
        let results = drain(&mut rx, sent + 1);
        if matches!(results.last(), Some(Err(RecvError::Corrupt { .. }))) {
            prop_assert!(closer.is_closed(), "a corrupt ring is closed");
        }
        prop_assert!(guard_intact(&region));
    }

    /// A producer reading a nonsensical `head` (the consumer's word, written by the worker)
    /// sees no space and times out, or sends; it never writes outside the ring.
    #[test]
    fn a_wild_head_never_lets_the_sender_write_outside(
        head in any::<u64>(),
        frame in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let region = region();
        region.atomic_u64(64).store(head, std::sync::atomic::Ordering::Release);
        let mut tx = RingSender::attach(region.clone(), 0, no_spin());
        let r = tx.send_timeout(&frame, 1, Duration::ZERO);
        prop_assert!(matches!(r, Ok(()) | Err(ring::SendError::Timeout)), "{r:?}");
        prop_assert!(guard_intact(&region));
    }

    /// Wire messages decode back to what was sent.
    #[test]
    fn wire_events_round_trip(ev in wire_event()) {
        let bytes = postcard::to_stdvec(&ev).unwrap();
        let back: FromWorker = channel::decode(&bytes).unwrap();
        prop_assert_eq!(format!("{back:?}"), format!("{ev:?}"));
    }

    /// Arbitrary bytes, or a valid message damaged, decode to a message or to an error.
    #[test]
    fn arbitrary_and_damaged_wire_events_are_errors_not_panics(
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        ev in wire_event(),
        damage in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
    ) {
        if let Ok(ev) = channel::decode::<FromWorker>(&garbage) {
            let _: Event = ev.into_event(1, 0, Vec::new());
        }
        let mut bytes = postcard::to_stdvec(&ev).unwrap();
        for &(i, b) in &damage {
            let n = bytes.len();
            bytes[i % n] = b;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(ev) = channel::decode::<FromWorker>(&bytes) {
            let _: Event = ev.into_event(1, 0, Vec::new());
        }
    }
}

const ARENA: usize = 4096;

/// An arena at offset 64, with guards of known bytes before and after it.
fn arena_region() -> Arc<SharedRegion> {
    let region = Arc::new(
        SharedRegion::create("decode-props", 64 + bulk::arena_len(ARENA) + TAIL_GUARD).unwrap(),
    );
    region.write_at(0, &[0xa5; 64]);
    bulk::init(&region, 64, ARENA);
    region.write_at(64 + bulk::arena_len(ARENA), &[0xa5; TAIL_GUARD]);
    region
}

fn arena_guards_intact(region: &SharedRegion) -> bool {
    let (mut a, mut b) = ([0u8; 64], [0u8; TAIL_GUARD]);
    region.read_at(0, &mut a);
    region.read_at(64 + bulk::arena_len(ARENA), &mut b);
    a == [0xa5; 64] && b == [0xa5; TAIL_GUARD]
}

proptest! {
    #![proptest_config(config(512))]

    /// Whatever descriptor a corrupt worker announces, the parent copies out only bytes of the
    /// arena (exactly `len` of them) or refuses it.
    #[test]
    fn a_bulk_descriptor_never_reads_outside_the_arena(
        offset in prop_oneof![0..2 * ARENA as u64, any::<u64>()],
        len in prop_oneof![0..2 * ARENA as u64, any::<u64>()],
        end in any::<u64>(),
    ) {
        let region = arena_region();
        let reader = ArenaReader::attach(region.clone(), 64, ARENA);
        let mut out = vec![9u8; 3];
        let d = Descriptor { offset, len, end };
        match reader.take(d, &mut out) {
            Ok(()) => {
                prop_assert!(offset + len <= ARENA as u64);
                prop_assert_eq!(out.len() as u64, len);
            }
            Err(_) => prop_assert!(offset.checked_add(len).is_none_or(|e| e > ARENA as u64)),
        }
        // Lent in place (results the parent decodes where they lie): the same bounds.
        match reader.lend(d) {
            Ok(lease) => prop_assert_eq!(lease.bytes().len() as u64, len),
            Err(_) => prop_assert!(offset.checked_add(len).is_none_or(|e| e > ARENA as u64)),
        }
        prop_assert!(arena_guards_intact(&region));
    }

    /// Whatever a corrupt worker stores as `released`, the parent's writer places payloads
    /// inside the arena, or not at all.
    #[test]
    fn a_wild_release_never_lets_the_writer_write_outside(
        released in any::<u64>(),
        sizes in prop::collection::vec(0..2 * ARENA, 1..6),
    ) {
        let region = arena_region();
        let mut writer = ArenaWriter::attach(region.clone(), 64, ARENA);
        prop_assert!(writer.place(&[1; 100]).is_some());
        region.atomic_u64(64).store(released, std::sync::atomic::Ordering::Release);
        for n in sizes {
            if let Some(d) = writer.place(&vec![2; n]) {
                prop_assert!(d.offset + d.len <= ARENA as u64);
                prop_assert_eq!(d.len as usize, n);
            }
        }
        prop_assert!(arena_guards_intact(&region));
    }

    /// Arbitrary bytes in a bulk frame on a real link: an error that closes the link, or bytes
    /// of the arena, never a panic.
    #[test]
    fn a_forged_bulk_frame_is_an_error_or_arena_bytes(
        frame in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            (any::<u64>(), 0..1u64 << 21, any::<u64>())
                .prop_map(|(o, l, e)| Descriptor { offset: o % (1 << 21), len: l, end: e }
                    .encode()
                    .to_vec()),
        ],
    ) {
        let cap = 4096;
        // Copied out (`recv_bytes`), then lent in place (`recv_data`, the parent's results).
        for lent in [false, true] {
            let link = Link::with_arena(cap, 1 << 20).unwrap();
            let mut parent = link.parent_end(no_spin());
            // The worker's ring, written by hand as a corrupt worker could.
            let again =
                Arc::new(SharedRegion::from_fd(link.region().inheritable_fd().unwrap()).unwrap());
            let mut forged = RingSender::attach(again, 64 + ring::ring_len(cap), no_spin());
            forged.send(&frame, KIND_BULK).unwrap();
            let mut out = Vec::new();
            let got = if lent {
                parent
                    .recv_data()
                    .map(|d| d.encoded().map_or(usize::MAX, <[u8]>::len))
            } else {
                parent
                    .recv_bytes_timeout(&mut out, Duration::from_secs(1))
                    .map(|()| out.len())
            };
            match got {
                Ok(n) => prop_assert!(n <= 1 << 20),
                Err(e) => prop_assert!(matches!(e, ChannelError::Bulk(_)), "{e:?}"),
            }
        }
    }
}

/// A frame of the wrong kind is an error naming both kinds, not a misread.
#[test]
fn a_frame_of_the_wrong_kind_is_refused() {
    let link = Link::new(4096).unwrap();
    let mut parent = link.parent_end(no_spin());
    let mut worker = link.worker_end(no_spin());
    worker.send_bytes(b"not a message").unwrap();
    match parent.recv::<FromWorker>() {
        Err(ChannelError::UnexpectedKind { expected, got }) => {
            assert_eq!((expected, got), (KIND_MSG, KIND_BYTES));
        }
        other => panic!("expected a kind mismatch, got {other:?}"),
    }
}
