//! Who listens to the workers' rings: the reader threads, or the caller's thread itself.
//!
//! Why: a result that goes worker → reader thread → caller costs two wake-ups, and with
//! one-task chunks those wake-ups were most of a task's 2.5–3.5 µs (issue #17). When the
//! workers do not outnumber the cores, the caller's thread (the one driving the pool: a map's
//! caller, or the `apply_async` collector) reads the rings itself while it waits for results,
//! spinning briefly, and the readers stand aside; when it is about to sleep,
//! it hands the duty back and a reader wakes it as before. Readers are still what notices a
//! death and reaps the process. (With as many workers as cores, the default, a one-task chunk
//! under Fork took 3.7–4.7 µs through the readers and 1.0–2.0 µs so; with four times as many
//! workers as cores, the caller's spinning took 5–15 % from uniform work, so it does not poll
//! then.)
//!
//! Each worker's receiving end sits behind a lock, and only its holder touches the ring (its
//! sleep word included), so the two never read one ring at once and each worker's events reach
//! the channel in the order it sent them. The duty is one word: bit 0 set = the caller has it;
//! the bits above count bells, so that a reader never sleeps through one.
//! 1. **Take** (caller, before it polls, unless its last sleep on the events channel was long:
//!    then results come slowly, polling saves nothing and the readers keep the duty; see
//!    `WORTH_POLLING`): set bit 0. If it was clear, nudge every ring
//!    (`RingCloser::nudge_receiver`): a reader asleep in `recv_unless` wakes, sees the bit,
//!    gives up its wait and releases its lock.
//! 2. **Poll** (caller): lock each worker's end (a reader still holding one gives it up at
//!    once after the nudge, or after forwarding the message in its hands) and take what is
//!    already there with `try_recv`, which never touches the sleep word. Spin while nothing
//!    came, as long as its patience allows (`pool_core::patience`). On a single CPU (an
//!    affinity mask, a cgroup quota) spinning cannot help, as the worker runs only when the
//!    caller gives up the CPU: the caller yields a few times instead, looking after each. (Pinned
//!    to one core with one worker, a one-task chunk under Fork took 9.1–9.5 µs when it spun
//!    and then slept through the reader, 1.9–2.9 µs so.)
//! 3. **Hand back** (caller, before any blocking wait on the events channel, at the end of a
//!    call, and before a send to a worker waits for space, as that worker may be waiting for
//!    its results to be read): clear bit 0, add a bell, `futex_wake` all.
//! 4. **Stand aside** (reader): while bit 0 is set and its ring is not closed, `futex_wait` on the
//!    word with the value it read; any change (step 3, a bell) wakes it or keeps it from
//!    sleeping.
//! 5. **Listen** (reader): lock its end and `recv_unless(bit 0 set and ring open)`; forward each
//!    message; on giving up, unlock and go to 4.
//! 6. **Bell** (death watcher, after closing a dead worker's link; caller, when a worker's end
//!    ended in its hands: closed, or closed by it for a protocol violation): add a bell and
//!    `futex_wake` all, so the reader drains the ring, sees it closed and reports the end.
//!
//! With the caller polling, a worker's sends find no sleeper on its ring: no syscall at all. A
//! reader's wait ends only by a message, a nudge, a close or a bell; the caller's own waits on
//! the channel end by its tick as well, and it polls again after each.
//!
//! Checked: `tests/loom_ring.rs` model-checks steps 1 to 5 on the real ring and this word (a
//! lost nudge or a hand-back that forgot its wake-up shows there as a deadlock);
//! `tests/faults` runs every worker death with one worker (the caller polling) and with one
//! more than there are cores (the readers listening), and the soak test mixes both.

use crate::sync::{AtomicU32, Ordering, futex};

const CALLER: u32 = 1;
const BELL: u32 = 2;

/// The listening duty of one pool's workers' rings (see the protocol above; public for the
/// loom model in `tests/loom_ring.rs`).
#[derive(Debug, Default)]
pub struct Duty {
    word: AtomicU32,
}

impl Duty {
    /// Whether the caller's thread has the duty (then readers stand aside).
    pub fn caller_has_it(&self) -> bool {
        self.word.load(Ordering::SeqCst) & CALLER != 0
    }

    /// Step 1: the caller takes the duty; returns whether it was the readers' (then nudge).
    pub fn take(&self) -> bool {
        self.word.fetch_or(CALLER, Ordering::SeqCst) & CALLER == 0
    }

    /// Step 3: the caller hands the duty back to the readers.
    pub fn hand_back(&self) {
        let mut now = self.word.load(Ordering::SeqCst);
        loop {
            if now & CALLER == 0 {
                return;
            }
            let next = (now & !CALLER).wrapping_add(BELL);
            match self
                .word
                .compare_exchange(now, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(seen) => now = seen,
            }
        }
        futex::wake(&self.word, i32::MAX);
    }

    /// Step 6: wakes every reader standing aside so that it looks at its ring again.
    pub fn ring_bell(&self) {
        self.word.fetch_add(BELL, Ordering::SeqCst);
        futex::wake(&self.word, i32::MAX);
    }

    /// Step 4: a reader waits while the caller has the duty, unless `closed()` (its ring).
    pub fn stand_aside(&self, closed: impl Fn() -> bool) {
        loop {
            let seen = self.word.load(Ordering::SeqCst);
            if seen & CALLER == 0 || closed() {
                return;
            }
            futex::wait(&self.word, seen, None);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_reader_stands_aside_until_the_duty_comes_back_or_its_ring_closes() {
        let duty = Arc::new(Duty::default());
        assert!(duty.take(), "the readers had it");
        assert!(!duty.take(), "taking it twice nudges once");
        let closed = Arc::new(AtomicBool::new(false));
        let (d, c) = (duty.clone(), closed.clone());
        let reader = std::thread::spawn(move || d.stand_aside(|| c.load(Ordering::SeqCst)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished(), "it waits while the caller listens");
        duty.hand_back();
        reader.join().unwrap();
        assert!(!duty.caller_has_it());

        duty.take();
        let (d, c) = (duty.clone(), closed.clone());
        let reader = std::thread::spawn(move || d.stand_aside(|| c.load(Ordering::SeqCst)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished());
        closed.store(true, Ordering::SeqCst);
        duty.ring_bell();
        reader.join().unwrap();
        assert!(duty.caller_has_it(), "a bell leaves the duty where it is");
    }
}
