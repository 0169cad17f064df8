//! A single-producer single-consumer ring of variable-length byte frames in shared memory.
//!
//! Why: pipes and sockets cost a syscall per message and a wake-up per message; a ring in a
//! `MAP_SHARED` region costs a copy, two atomics and a fence, and a syscall only when the peer
//! actually sleeps. Frames of any size pass: frames larger than the ring are streamed in chunks.
//!
//! # Layout (offsets from the ring's base, each line 64 bytes apart so the producer's and the
//! consumer's hot words never share a cache line)
//! | offset | word | written by |
//! |---|---|---|
//! | 0 | `tail: u64`, total bytes ever published | producer |
//! | 64 | `head: u64`, total bytes ever consumed | consumer |
//! | 128 | `rx_sleep: u32`, 1 = consumer is (about to be) asleep on this futex | both |
//! | 192 | `tx_sleep: u32`, 1 = producer is (about to be) asleep waiting for space | both |
//! | 256 | `closed: u32`, 1 = either side hung up; `cap: u64` at 264 | closer / init |
//! | 384.. | `cap` data bytes, `cap` a power of two | producer writes, consumer reads |
//!
//! A chunk is an 8-byte header word (`len` in the low 32 bits; `flags` in the high 32: bit 0
//! `MORE` = the frame continues in the next chunk, bits 8..16 a user `kind` byte) followed by
//! `len` bytes, padded to 8; positions are 8-aligned so a header never straddles the end;
//! payloads may wrap around.
//!
//! # Protocol
//! 1. **Publish** (producer): copy the chunk into `[tail, tail+n)` (it knows the bytes are free
//!    because it loaded `head` with Acquire), then `tail.store(tail+n, Release)`.
//! 2. **Consume** (consumer): `tail.load(Acquire)`; copy out; `head.store(head+n, Release)`.
//! 3. **Sleep** (consumer, after spinning up to `spins` times, as many as its recent waits
//!    needed (`pool_core::patience`), and yielding `yields` times):
//!    `rx_sleep.store(1)`, `fence(SeqCst)`, re-load `tail` and `closed`; if still nothing,
//!    `futex_wait(rx_sleep, 1, timeout)`.
//! 4. **Wake** (producer, after each publish): `fence(SeqCst)`; only if `rx_sleep == 1`:
//!    `rx_sleep.compare_exchange(1, 0)` and if that took it, `futex_wake`. The two fences make
//!    this a Dekker pair: either the consumer sees the new tail before sleeping, or the producer
//!    sees the flag. A stream of messages to an awake consumer therefore costs no syscall at all.
//! 5. **Back-pressure**: the producer waits for space exactly like 3 on `tx_sleep` and `head`;
//!    the consumer wakes it like 4 after advancing `head`. The consumer publishes `head` in
//!    batches (every `cap / 8` bytes, after each chunk of a streamed frame, and always before it
//!    waits), so the fence of step 4 is paid once per batch, and a producer can never wait on
//!    space the consumer holds while it sleeps.
//! 6. **Batching** (producer): [`RingSender::send_deferred`] publishes `tail` but skips step 4;
//!    [`RingSender::flush`] (or the next `send`, or the producer blocking for space, which always
//!    flushes first) does it once for the whole batch.
//! 7. **Hang-up**: `close()` (by either end, on drop, or by a third party that saw the peer
//!    process die, through a [`RingCloser`]) sets `closed`, `fence(SeqCst)` (a Dekker pair with
//!    step 3's fence, as in step 4), then clears both sleep words and wakes every sleeper. A consumer still drains what was published, then gets `Disconnected`; a
//!    producer gets `Disconnected` at once. Nobody sleeps forever on a dead peer as long as someone
//!    (the death watcher in the parent; `PR_SET_PDEATHSIG` in a worker) reacts to the death.
//! 8. **Timeouts** apply until the first chunk of a frame moved; once a frame is in flight the
//!    call finishes it (or sees the hang-up), so a frame is never torn by a timeout.
//! 9. **A corrupting peer** (a worker with a wild pointer) cannot make this process touch memory
//!    outside the ring: every copy is masked into the data area, a length larger than the ring
//!    is [`RecvError::Corrupt`] (and closes the ring), and a nonsensical `head` reads as "no
//!    space" (the death watcher or a timeout then ends the wait).
//!
//! Checked: `tests/loom_ring.rs` model-checks steps 1 to 7 with loom (atomics, fences and the
//! futex go through `crate::sync`, which loom replaces); `tests/decode_props.rs` feeds step 9
//! arbitrary and damaged rings. Both run from `scripts/verify.sh`.
//!
//! Costs (2-vCPU VM, see `examples/ring_throughput.rs`): ~20 ns of code per 64-byte frame
//! (send + receive), 10–14 M frames/s parent ⇄ forked child, 5–11 GB/s for 1 MiB frames, and a
//! ping-pong of 0.2–0.7 µs when both sides are awake on different CPUs versus 6–20 µs when they
//! share one or sleep: where workers run matters more than the wait policy.

use std::sync::Arc;
use std::time::Instant;

use crate::shm::SharedRegion;
use crate::sync::{self, AtomicU32, AtomicU64, Ordering, fence, futex};

mod memory;
mod receiver;
mod sender;

use memory::RingMemory;
pub use receiver::RingReceiver;
pub use sender::{BeforeWait, RingSender};

pub(super) const TAIL: usize = 0;
pub(super) const HEAD: usize = 64;
pub(super) const RX_SLEEP: usize = 128;
pub(super) const TX_SLEEP: usize = 192;
pub(super) const CLOSED: usize = 256;
#[cfg_attr(loom, allow(dead_code))]
pub(super) const CAP: usize = 264;
/// Bytes of header before the ring's data.
pub const HEADER_LEN: usize = 384;
pub(super) const CHUNK_HDR: usize = 8;
pub(super) const MORE: u32 = 1;

/// How long a waiting side spins and yields before it sleeps on the futex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Busy-wait iterations (`spin_loop` hint) before yielding.
    pub spins: u32,
    /// `sched_yield` calls before sleeping. On a 2-core machine a spinning peer steals a core from
    /// the workers, so keep both small.
    pub yields: u32,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            spins: 200,
            yields: 10,
        }
    }
}

impl WaitPolicy {
    /// A worker process waiting for its next command: spins up to ~60 µs on the development VM
    /// (a `pause` takes ~30 ns there) while spinning keeps paying, down to the fixed floor when it
    /// does not (see `pool_core::patience`). One-task chunks arrive microseconds apart, and a worker
    /// that slept between them cost a futex wake-up per task.
    pub const WORKER: Self = Self {
        spins: 2000,
        yields: 10,
    };

    /// A worker process of a pool of `workers` on `cpus` CPUs. While a CPU is left for the
    /// caller, [`WaitPolicy::WORKER`]. Otherwise the caller's thread shares the CPUs with the
    /// workers and makes their next commands, and a worker that spins waiting for one delays
    /// it: spin at most the floor (~6 µs), then yield. Two Fork workers on two CPUs with
    /// one-task chunks: 0.78–0.86 µs a task spinning up to ~60 µs, 0.34–0.46 µs at the floor
    /// (`round_trip_profile 5 200000 fork 2`, BENCHMARKS.md).
    pub fn worker(workers: usize, cpus: usize) -> Self {
        if workers < cpus {
            Self::WORKER
        } else {
            Self {
                spins: pool_core::patience::FLOOR,
                ..Self::WORKER
            }
        }
    }

    /// The parent's end of a worker's link: its reader thread sleeps at once. It shares two
    /// cores with the caller's thread and the workers; spinning there took the caller's core.
    /// (When the workers do not outnumber the cores, the caller's thread reads the rings itself
    /// and spins there instead: `backend/duty.rs`.)
    /// With these two policies a `chunk_size(1)` task under Fork took 3.3 µs instead of 4.0 µs
    /// (the harness's `per-task`, BENCHMARKS.md), and no uniform or uneven row moved beyond its
    /// run-to-run spread, with 2 workers or 8 on two cores.
    pub const PARENT: Self = Self {
        spins: 0,
        yields: 0,
    };
}

/// Sending failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The ring was closed (the receiver hung up or its process died).
    #[error("ring closed: the receiving side is gone")]
    Disconnected,
    /// No space before the deadline; nothing was sent.
    #[error("timed out waiting for space in the ring")]
    Timeout,
}

/// Receiving failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// A chunk header announced more bytes than the ring holds: the peer corrupted the shared
    /// memory (a worker with a memory bug). The ring is closed.
    #[error("corrupt ring: a chunk header announced {len} bytes")]
    Corrupt {
        /// The announced length.
        len: usize,
    },
    /// The ring is closed and drained.
    #[error("ring closed: the sending side is gone")]
    Disconnected,
    /// No frame before the deadline.
    #[error("timed out waiting for a frame")]
    Timeout,
}

/// Bytes a region needs to hold a ring of `cap` data bytes.
pub fn ring_len(cap: usize) -> usize {
    HEADER_LEN + cap
}

/// Initializes a ring of `cap` bytes (a power of two, at least 64) at `base` (64-aligned) in
/// `region`. Call once, before any endpoint attaches.
pub fn init(region: &SharedRegion, base: usize, cap: usize) {
    RingMemory::init(region, base, cap);
}

/// What both endpoints share: the ring's memory and its capacity.
#[derive(Debug, Clone)]
pub(super) struct Ring {
    mem: RingMemory,
    pub(super) cap: usize,
}

impl Ring {
    pub(super) fn attach(region: Arc<SharedRegion>, base: usize) -> Self {
        let mem = RingMemory::attach(region, base);
        let cap = mem.cap();
        Self { mem, cap }
    }
    pub(super) fn u64(&self, off: usize) -> &AtomicU64 {
        self.mem.u64(off)
    }
    pub(super) fn u32(&self, off: usize) -> &AtomicU32 {
        self.mem.u32(off)
    }
    pub(super) fn closed(&self) -> bool {
        self.u32(CLOSED).load(Ordering::Acquire) != 0
    }
    pub(super) fn close(&self) {
        if sync::model_unwinding() {
            return;
        }
        self.u32(CLOSED).store(1, Ordering::SeqCst);
        // Pairs with the sleeper's fence (step 3): either it sees `closed`, or its sleep flag
        // comes before the clearing store below and the wake-up finds it. Without this fence
        // the argument rests on the total order of SeqCst stores, which loom does not model.
        fence(Ordering::SeqCst);
        for off in [RX_SLEEP, TX_SLEEP] {
            self.u32(off).store(0, Ordering::SeqCst);
            futex::wake(self.u32(off), i32::MAX);
        }
    }
    /// Copies `data` into the data area at stream position `pos`, wrapping around.
    /// `data.len()` must not exceed `cap` (the sender never writes more than the free space).
    pub(super) fn copy_in(&self, pos: u64, data: &[u8]) {
        self.mem.copy_in(self.at(pos), data);
    }
    /// Where stream position `pos` is in the data area.
    fn at(&self, pos: u64) -> usize {
        (pos as usize) & (self.cap - 1)
    }
    /// Writes a chunk header (one aligned word: never straddles the end) at position `pos`.
    pub(super) fn store_header(&self, pos: u64, len: u32, flags: u32) {
        let word = u64::from(len) | (u64::from(flags) << 32);
        self.mem.store_word(self.at(pos) & !7, word);
    }
    /// Reads the chunk header at `pos`: `(len, flags)`.
    pub(super) fn load_header(&self, pos: u64) -> (u32, u32) {
        let word = self.mem.load_word(self.at(pos) & !7);
        (word as u32, (word >> 32) as u32)
    }
    /// Copies `len` bytes (at most `cap`) at stream position `pos` out, wrapping around, into
    /// raw (possibly uninitialized) memory.
    ///
    /// # Safety
    /// `dst` must be valid for `len` bytes of writes and not overlap the region.
    pub(super) unsafe fn copy_out_raw(&self, pos: u64, dst: *mut u8, len: usize) {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { self.mem.copy_out_raw(self.at(pos), dst, len) }
    }
    /// Wakes the peer sleeping on `word`, if it announced it sleeps (protocol step 4).
    pub(super) fn notify(&self, word: usize) {
        fence(Ordering::SeqCst);
        let w = self.u32(word);
        // A compare-exchange, not a swap: it writes only when it takes the flag, so the waker
        // never stores a 0 that could be ordered after the sleeper's next 1 (loom found that
        // its model, which orders concurrent stores loosely, otherwise loses this wake-up).
        if w.load(Ordering::Relaxed) == 1
            && w.compare_exchange(1, 0, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            futex::wake(w, 1);
        }
    }
    /// Waits until `ready()` or the ring closes or `deadline` passes (protocol steps 3 and 5),
    /// spinning and yielding as `policy` says first. Returns Ok(true) when ready, Ok(false) when
    /// closed, Err(()) on timeout; `spun` says whether the spinning alone ended the wait.
    pub(super) fn wait(
        &self,
        word: usize,
        policy: WaitPolicy,
        deadline: Option<Instant>,
        spun: &mut bool,
        mut ready: impl FnMut() -> bool,
    ) -> Result<bool, ()> {
        *spun = true;
        for _ in 0..policy.spins {
            if ready() {
                return Ok(true);
            }
            sync::spin_loop();
        }
        *spun = false;
        for _ in 0..policy.yields {
            if ready() {
                return Ok(true);
            }
            sync::yield_now();
        }
        let w = self.u32(word);
        loop {
            w.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if ready() {
                w.store(0, Ordering::Relaxed);
                return Ok(true);
            }
            if self.closed() {
                w.store(0, Ordering::Relaxed);
                return Ok(ready());
            }
            let timeout = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        w.store(0, Ordering::Relaxed);
                        return Err(());
                    }
                },
            };
            futex::wait(w, 1, timeout);
        }
    }
}

pub(super) fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// Closes a ring from anywhere (e.g. a death watcher thread), waking both ends.
#[derive(Debug, Clone)]
pub struct RingCloser(pub(super) Ring);

impl RingCloser {
    /// A closer for the ring initialized at `base` in `region`.
    pub fn attach(region: Arc<SharedRegion>, base: usize) -> Self {
        Self(Ring::attach(region, base))
    }
    /// Marks the ring closed and wakes every sleeper.
    pub fn close(&self) {
        self.0.close();
    }
    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.0.closed()
    }
    /// Wakes the consumer if it sleeps on the ring (protocol step 4 without a publish), so that
    /// a consumer waiting with [`RingReceiver::recv_unless`] looks at its condition again.
    pub fn nudge_receiver(&self) {
        self.0.notify(RX_SLEEP);
    }
}
