//! `SharedBytes` through the faults of Fork workers: a panic, a result that refuses to be
//! serialized, a worker killed outright and one past its timeout, each while a task holds a
//! buffer of the shared heap. Every block comes back to the heap (`SharedBytes::heap_in_use`
//! returns to where it was) once the caller drops its buffers, those a dead worker held too
//! (its ledger, given back once it is reaped).
//!
//! `heap_in_use` counts the blocks of this whole process family: every test here measures it
//! holding `SERIAL`, so no other test of this binary takes blocks meanwhile.

use std::time::{Duration, Instant};

use pool::{Cause, MapOptions, PoolError, SharedBytes, StartMethod, WorkerPool};

use super::{Baseline, SERIAL, two_workers};

const MIB: usize = 1 << 20;
/// Bytes of the block a buffer of [`MIB`] bytes takes (a power of two of 64 KiB: the same).
const BLOCK: u64 = MIB as u64;
/// Small enough to stay in private memory (below `SharedBytes::MIN_SHARED`).
const SMALL: usize = 16;

fn one() -> MapOptions {
    MapOptions::default().chunk_size(1)
}

fn fork_pool() -> WorkerPool {
    two_workers(StartMethod::Fork)
}

fn fork_builder() -> pool::Builder {
    WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Fork)
}

fn kept_alive(b: pool::Builder) -> WorkerPool {
    b.keep_alive(true).build().unwrap()
}

/// The first 256 bytes of a buffer marked `mark`, each plus `plus`: the mark, then a pattern
/// of it, repeated every 256 bytes.
fn period(mark: u8, plus: u8) -> Vec<u8> {
    (0..=255u8)
        .map(|j| (mark ^ j.wrapping_mul(31)).wrapping_add(plus))
        .collect()
}

/// `len` bytes marked `mark` (in the shared heap when `len` is large enough).
fn buffer(mark: u8, len: usize) -> SharedBytes {
    let mut v = period(mark, 0).repeat(len.div_ceil(256));
    v.truncate(len);
    SharedBytes::from(v)
}

/// Whether `v` is the buffer marked `mark`, each byte plus `plus`.
fn intact(v: &[u8], mark: u8, len: usize, plus: u8) -> bool {
    let period = period(mark, plus);
    v.len() == len && v.chunks(256).all(|c| *c == period[..c.len()])
}

/// Waits (a while: a worker or a dropper thread may still be letting go) until the family's
/// blocks in use are `want` bytes, and asserts they are.
fn heap_settles_at(want: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while SharedBytes::heap_in_use() != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let now = SharedBytes::heap_in_use();
    assert_eq!(
        now,
        want,
        "{what}: heap_in_use is {now} bytes, expected {want} (a difference of {} MiB)",
        (now as i64 - want as i64) as f64 / MIB as f64
    );
}

/// `map_with(f, inputs, chunk_size(1))` on another thread, bounded: a call that has not ended
/// within 30 s fails the test. Gives the result and the pool back.
fn map_within<T, R, F>(
    mut p: WorkerPool,
    f: F,
    inputs: Vec<T>,
) -> (Result<Vec<R>, PoolError>, WorkerPool)
where
    T: pool_core::Input,
    R: pool_core::Payload,
    F: Fn(T) -> R + Send + Sync + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let call = std::thread::spawn(move || {
        let _ = tx.send(p.map_with(f, inputs, one()));
        p
    });
    let out = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the call hung");
    (out, call.join().unwrap())
}

/// Shared buffers echoed and rebuilt by the workers: while the caller holds inputs and
/// results, exactly their blocks are in use (an echoed buffer is the caller's own block);
/// once it drops them, none is.
#[test]
fn round_trips_give_every_block_back() {
    round_trips_give_every_block_back_under(StartMethod::Fork);
}

/// Spawned workers map the caller's heap from the memfd it passes them.
#[test]
fn round_trips_give_every_block_back_under_spawn() {
    round_trips_give_every_block_back_under(StartMethod::Spawn);
}

fn round_trips_give_every_block_back_under(m: StartMethod) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    let before = SharedBytes::heap_in_use();
    {
        let mut p = two_workers(m);
        let inputs: Vec<SharedBytes> = (0..32).map(|i| buffer(i, MIB)).collect();
        assert!(
            inputs.iter().all(SharedBytes::is_shared_memory),
            "no shared heap on this machine"
        );
        heap_settles_at(before + 32 * BLOCK, "32 inputs of 1 MiB");

        let echoed = p
            .map_with(|v: SharedBytes| v, inputs.clone(), one())
            .unwrap();
        for (i, (back, sent)) in echoed.iter().zip(&inputs).enumerate() {
            assert_eq!(
                back.as_ptr(),
                sent.as_ptr(),
                "buffer {i} came back in place"
            );
            assert!(intact(back, i as u8, MIB, 0), "buffer {i} echoed");
        }
        heap_settles_at(before + 32 * BLOCK, "inputs, and echoes of them");

        let changed = p
            .map_with(
                |v: SharedBytes| v.iter().map(|b| b.wrapping_add(1)).collect::<SharedBytes>(),
                inputs.clone(),
                one(),
            )
            .unwrap();
        for (i, back) in changed.iter().enumerate() {
            assert!(back.is_shared_memory(), "result {i} made in the heap");
            assert!(intact(back, i as u8, MIB, 1), "result {i}");
        }
        heap_settles_at(before + 64 * BLOCK, "inputs and 32 new results");
        drop((echoed, changed, inputs));
    }
    heap_settles_at(before, "everything dropped");
    base.check();
}

/// Asserts that `held`, task 5's 1 MiB argument, which the caller still holds, is still its
/// own after a failed call: a new buffer takes another block, `held` keeps its bytes, and its
/// block is the only one in use beyond `before`.
fn caller_s_buffer_is_its_own(held: &SharedBytes, before: u64, when: &str) {
    let fresh = buffer(0xee, MIB);
    assert_ne!(
        fresh.as_ptr(),
        held.as_ptr(),
        "{when}: the block of the caller's buffer was handed out again while it holds it"
    );
    assert!(
        intact(held, 5, MIB, 0),
        "{when}: the caller's buffer changed"
    );
    drop(fresh);
    heap_settles_at(before + BLOCK, &format!("{when}, the caller's buffer"));
}

fn panics_on_mark_5(v: SharedBytes) -> usize {
    if v[0] == 5 {
        panic!("task 5 panics holding {} bytes", v.len());
    }
    v.len()
}

/// A task that panics holding its shared argument: the call fails with the panic, and the
/// worker, unwinding, drops its reference (only the caller's is left while it holds its
/// buffer, and none once it drops it). Only task 5's argument is in the heap, so that the
/// worker the failed call terminates meanwhile holds none.
#[test]
fn a_panicking_task_gives_its_shared_argument_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    let before = SharedBytes::heap_in_use();
    {
        let p = fork_pool();
        let inputs: Vec<SharedBytes> = (0..8)
            .map(|i| buffer(i, if i == 5 { MIB } else { SMALL }))
            .collect();
        assert!(
            inputs[5].is_shared_memory(),
            "no shared heap on this machine"
        );
        let (out, _p) = map_within(p, panics_on_mark_5, inputs.clone());
        let err = out.unwrap_err();
        let f = err
            .failure()
            .unwrap_or_else(|| panic!("not a task failure: {err}"));
        assert_eq!((f.task, &f.cause), (Some(5), &Cause::Panic), "{err}");
        assert!(
            f.message.contains("task 5 panics holding 1048576 bytes"),
            "{err}"
        );

        // The caller's buffer is still its own: a new buffer takes another block, and the
        // caller's block is in use.
        caller_s_buffer_is_its_own(&inputs[5], before, "after the panic");
        drop(inputs);
    }
    heap_settles_at(before, "everything dropped");
    base.check();
}

/// A value whose `Serialize` refuses (`true`) or writes a bool.
#[derive(Debug, Clone, serde::Deserialize)]
struct Refuses(bool);

impl serde::Serialize for Refuses {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 {
            return Err(serde::ser::Error::custom("no"));
        }
        s.serialize_bool(false)
    }
}

/// Task 5's result is a new 1 MiB buffer next to a value that refuses to be serialized; the
/// others' buffers are small (private), so that the worker the failed call terminates holds no
/// block.
fn new_buffer_then_refusal(x: u8) -> (SharedBytes, Refuses) {
    let len = if x == 5 { MIB } else { SMALL };
    (buffer(x, len), Refuses(x == 5))
}

fn serialization_failure_of_task_5(err: &PoolError) {
    let f = err
        .failure()
        .unwrap_or_else(|| panic!("not a task failure: {err}"));
    assert_eq!(
        (f.task, &f.cause),
        (Some(5), &Cause::Serialization),
        "{err}"
    );
    assert!(err.to_string().contains("could not be serialized"), "{err}");
}

/// The result's encoding took a reference for the buffer's handle before the refusal: the
/// encoder gives it back, and the worker drops the value, so nothing stays in use.
#[test]
fn a_result_that_refuses_to_serialize_gives_its_handle_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    let before = SharedBytes::heap_in_use();
    {
        let (out, _p) = map_within(fork_pool(), new_buffer_then_refusal, (0..8u8).collect());
        serialization_failure_of_task_5(&out.unwrap_err());
    }
    heap_settles_at(before, "after the refused result");
    base.check();
}

fn echo_then_refusal(v: SharedBytes) -> (SharedBytes, Refuses) {
    let refuses = v[0] == 5;
    (v, Refuses(refuses))
}

/// The same with the task's own argument in the refused result: the caller's buffer keeps its
/// block while it holds it, and gives it back when dropped.
#[test]
fn a_refused_result_holding_the_argument_leaves_the_caller_s_buffer_alone() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    let before = SharedBytes::heap_in_use();
    {
        let inputs: Vec<SharedBytes> = (0..8)
            .map(|i| buffer(i, if i == 5 { MIB } else { SMALL }))
            .collect();
        let (out, _p) = map_within(fork_pool(), echo_then_refusal, inputs.clone());
        serialization_failure_of_task_5(&out.unwrap_err());
        caller_s_buffer_is_its_own(&inputs[5], before, "after the refusal");
        drop(inputs);
    }
    heap_settles_at(before, "everything dropped");
    base.check();
}

/// Kills the worker it runs in when `v` is the buffer marked 5.
fn die_on_mark_5(v: &SharedBytes) {
    if v[0] == 5 {
        // SAFETY: kill(2) on our own pid.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        std::thread::sleep(Duration::from_secs(5));
    }
}

fn killed_on_mark_5(v: SharedBytes) -> usize {
    die_on_mark_5(&v);
    v.len()
}

/// A worker killed outright while it holds a shared argument: the call ends, naming the
/// death, and stops the other worker too, whatever it held. Every block comes back all the
/// same: each worker's ledger records what it holds, and the parent gives that back once the
/// worker is reaped. The pool's next call runs, shared buffers and all.
#[test]
fn a_killed_worker_s_blocks_come_back_once_it_is_reaped() {
    a_killed_worker_s_blocks_come_back_under(StartMethod::Fork);
}

/// A spawned worker's ledger is in the same heap, drained the same way.
#[test]
fn a_killed_spawned_worker_s_blocks_come_back_once_it_is_reaped() {
    a_killed_worker_s_blocks_come_back_under(StartMethod::Spawn);
}

fn a_killed_worker_s_blocks_come_back_under(m: StartMethod) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = Baseline::take();
    let before = SharedBytes::heap_in_use();
    {
        let inputs: Vec<SharedBytes> = (0..16).map(|i| buffer(i, MIB)).collect();
        assert!(
            inputs.iter().all(SharedBytes::is_shared_memory),
            "no shared heap on this machine"
        );
        let (out, p) = map_within(two_workers(m), killed_on_mark_5, inputs.clone());
        let err = out.unwrap_err();
        let f = err
            .failure()
            .unwrap_or_else(|| panic!("not a worker failure: {err}"));
        assert_eq!((f.task, &f.cause), (Some(5), &Cause::WorkerDied), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("task #5 lost its worker") && text.contains("SIGKILL"),
            "{text}"
        );
        for (i, v) in inputs.iter().enumerate() {
            assert!(
                intact(v, i as u8, MIB, 0),
                "the caller's buffer {i} changed"
            );
        }
        drop(inputs);
        heap_settles_at(
            before,
            "the caller's buffers dropped, the dead workers reaped",
        );

        let next: Vec<SharedBytes> = (0..4).map(|i| buffer(i, MIB)).collect();
        let (out, _p) = map_within(p, |v: SharedBytes| v, next.clone());
        let echoed = out.unwrap();
        for (i, (back, sent)) in echoed.iter().zip(&next).enumerate() {
            assert_eq!(
                back.as_ptr(),
                sent.as_ptr(),
                "buffer {i} came back in place"
            );
        }
        drop((echoed, next));
    }
    heap_settles_at(before, "the next call's buffers dropped");
    base.check();
}

/// A worker that runs past its task timeout is killed while it holds its argument and a
/// result it is building: both blocks come back once it is reaped, and the pool goes on.
#[test]
fn a_timed_out_worker_s_blocks_come_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = SharedBytes::heap_in_use();
    {
        let mut p = kept_alive(fork_builder());
        let inputs: Vec<SharedBytes> = (0..6).map(|i| buffer(i, MIB)).collect();
        let out = p.map_with(
            |v: SharedBytes| {
                let copy = SharedBytes::copy_from_slice(&v);
                if v[0] == 3 {
                    std::thread::sleep(Duration::from_secs(30));
                }
                copy.len()
            },
            inputs.clone(),
            one().task_timeout(Duration::from_millis(300)),
        );
        let err = out.unwrap_err();
        assert!(err.to_string().contains("task #3"), "{err}");
        drop(inputs);
        let sums = p
            .map_with(|v: SharedBytes| v.len(), vec![buffer(9, MIB)], one())
            .unwrap();
        assert_eq!(sums, [MIB]);
    }
    heap_settles_at(before, "everything dropped");
}

/// Insights read each task's argument again from its chunk (for the slowest-task list): that
/// second reading takes references of its own, so the caller's buffers stay its own after a
/// call that went well.
#[test]
fn insights_reading_arguments_again_leave_the_caller_s_buffers_alone() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = SharedBytes::heap_in_use();
    {
        let mut p = fork_builder().enable_insights(true).build().unwrap();
        let inputs: Vec<SharedBytes> = (0..8).map(|i| buffer(i, MIB)).collect();
        let sums = p
            .map_with(
                |v: SharedBytes| v.iter().map(|&b| u64::from(b)).sum::<u64>(),
                inputs.clone(),
                MapOptions::default().chunk_size(4),
            )
            .unwrap();
        assert_eq!(sums.len(), 8);
        heap_settles_at(before + 8 * BLOCK, "the caller's 8 inputs, after the call");
        let fresh: Vec<SharedBytes> = (0..8).map(|i| buffer(100 + i, MIB)).collect();
        for (i, v) in inputs.iter().enumerate() {
            assert!(intact(v, i as u8, MIB, 0), "input {i} changed");
            assert!(
                fresh.iter().all(|f| f.as_ptr() != v.as_ptr()),
                "input {i}'s block was handed out again while the caller holds it"
            );
        }
    }
    heap_settles_at(before, "everything dropped");
}

/// Results a caller never reads still give their blocks back: the rest of an `imap` dropped
/// after two results (its later results arrive while the next call runs, or at the pool's
/// end), and the late results of calls that failed while other tasks were making new buffers.
#[test]
fn results_never_read_give_their_blocks_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = SharedBytes::heap_in_use();
    {
        let mut p = kept_alive(fork_builder());
        let firsts: Vec<SharedBytes> = p
            .imap_with(|i: u64| buffer(i as u8, MIB), 0..40u64, one())
            .unwrap()
            .take(2)
            .map(Result::unwrap)
            .collect();
        assert_eq!(firsts.len(), 2);
        drop(firsts);
        // The next call takes what is left of the last one's results first.
        let sums = p.map_with(|x: u64| x, 0..8u64, one()).unwrap();
        assert_eq!(sums.len(), 8);
        heap_settles_at(
            before,
            "an imap dropped after two results, and the next call",
        );

        for round in 0..5 {
            let out = p.map_with(
                |i: u64| {
                    if i == 5 {
                        std::thread::sleep(Duration::from_millis(5));
                        panic!("task 5 fails");
                    }
                    buffer(i as u8, MIB)
                },
                0..16u64,
                one(),
            );
            assert!(out.is_err(), "round {round}");
            let sums = p.map_with(|x: u64| x, 0..8u64, one()).unwrap();
            assert_eq!(sums.len(), 8);
            heap_settles_at(before, &format!("round {round} of a failing call"));
        }
    }
    heap_settles_at(before, "the pool dropped");
}

/// `apply_async` tasks take shared buffers too: each crosses as a handle (the same block comes
/// back), a task that kills its worker is reported and its argument comes back with the
/// worker's ledger, and once everything is dropped no block is in use.
#[test]
fn apply_async_tasks_cross_as_handles_and_give_every_block_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = SharedBytes::heap_in_use();
    {
        let mut p = kept_alive(fork_builder());
        let inputs: Vec<SharedBytes> = (0..12).map(|i| buffer(i, MIB)).collect();
        let pending: Vec<_> = inputs
            .iter()
            .map(|v| p.apply_async(killed_on_mark_5_or_echo, v.clone()).unwrap())
            .collect();
        for (i, (r, sent)) in pending.into_iter().zip(&inputs).enumerate() {
            let got = r.get(Some(Duration::from_secs(30)));
            if i == 5 {
                let err = got.unwrap_err();
                assert!(err.to_string().contains("SIGKILL"), "{err}");
            } else {
                // Tasks sent to the killed worker as it died never ran there: they ran on
                // the worker started in its place.
                let back = got.unwrap_or_else(|e| panic!("task {i}: {e}"));
                assert_eq!(back.as_ptr(), sent.as_ptr(), "task {i}: the same block");
            }
        }
        p.join().unwrap();
        for (i, v) in inputs.iter().enumerate() {
            assert!(
                intact(v, i as u8, MIB, 0),
                "the caller's buffer {i} changed"
            );
        }
    }
    heap_settles_at(before, "everything dropped");
}

fn killed_on_mark_5_or_echo(v: SharedBytes) -> SharedBytes {
    die_on_mark_5(&v);
    v
}
