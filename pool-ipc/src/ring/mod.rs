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
//! 3. **Sleep** (consumer, after spinning `spins` times and yielding `yields` times):
//!    `rx_sleep.store(1)`, `fence(SeqCst)`, re-load `tail` and `closed`; if still nothing,
//!    `futex_wait(rx_sleep, 1, timeout)`.
//! 4. **Wake** (producer, after each publish): `fence(SeqCst)`; only if `rx_sleep == 1`:
//!    `rx_sleep.swap(0)` and if it was 1, `futex_wake`. The two fences make this a Dekker pair:
//!    either the consumer sees the new tail before sleeping, or the producer sees the flag. A
//!    stream of messages to an awake consumer therefore costs no syscall at all.
//! 5. **Back-pressure**: the producer waits for space exactly like 3 on `tx_sleep` and `head`;
//!    the consumer wakes it like 4 after advancing `head`. The consumer publishes `head` in
//!    batches (every `cap / 8` bytes, after each chunk of a streamed frame, and always before it
//!    waits), so the fence of step 4 is paid once per batch, and a producer can never wait on
//!    space the consumer holds while it sleeps.
//! 6. **Batching** (producer): [`RingSender::send_deferred`] publishes `tail` but skips step 4;
//!    [`RingSender::flush`] (or the next `send`, or the producer blocking for space, which always
//!    flushes first) does it once for the whole batch.
//! 7. **Hang-up**: `close()` (by either end, on drop, or by a third party that saw the peer
//!    process die, through a [`RingCloser`]) sets `closed`, then clears both sleep words and wakes
//!    every sleeper. A consumer still drains what was published, then gets `Disconnected`; a
//!    producer gets `Disconnected` at once. Nobody sleeps forever on a dead peer as long as someone
//!    (the death watcher in the parent; `PR_SET_PDEATHSIG` in a worker) reacts to the death.
//! 8. **Timeouts** apply until the first chunk of a frame moved; once a frame is in flight the
//!    call finishes it (or sees the hang-up), so a frame is never torn by a timeout.
//! 9. **A corrupting peer** (a worker with a wild pointer) cannot make this process touch memory
//!    outside the ring: every copy is masked into the data area, a length larger than the ring
//!    is [`RecvError::Corrupt`] (and closes the ring), and a nonsensical `head` reads as "no
//!    space" (the death watcher or a timeout then ends the wait).
//!
//! Costs (2-vCPU VM, see `examples/ring_throughput.rs`): ~20 ns of code per 64-byte frame
//! (send + receive), 10–14 M frames/s parent ⇄ forked child, 5–11 GB/s for 1 MiB frames, and a
//! ping-pong of 0.2–0.7 µs when both sides are awake on different CPUs versus 6–20 µs when they
//! share one or sleep: where workers run matters more than the wait policy.

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::Instant;

use crate::futex;
use crate::shm::SharedRegion;

mod receiver;
mod sender;

pub use receiver::RingReceiver;
pub use sender::RingSender;

pub(super) const TAIL: usize = 0;
pub(super) const HEAD: usize = 64;
pub(super) const RX_SLEEP: usize = 128;
pub(super) const TX_SLEEP: usize = 192;
const CLOSED: usize = 256;
const CAP: usize = 264;
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
    assert!(
        cap.is_power_of_two() && cap >= 64,
        "ring capacity must be a power of two >= 64"
    );
    assert_eq!(base % 64, 0, "ring base must be 64-aligned");
    assert!(
        base + ring_len(cap) <= region.len(),
        "ring does not fit in region"
    );
    for off in [TAIL, HEAD, CAP] {
        region.atomic_u64(base + off).store(0, Ordering::Relaxed);
    }
    for off in [RX_SLEEP, TX_SLEEP, CLOSED] {
        region.atomic_u32(base + off).store(0, Ordering::Relaxed);
    }
    region
        .atomic_u64(base + CAP)
        .store(cap as u64, Ordering::Release);
}

/// What both endpoints share: the region and where the ring is in it.
#[derive(Debug, Clone)]
pub(super) struct Ring {
    /// Keeps the mapping that `ctl` and `data` point into alive.
    _region: Arc<SharedRegion>,
    /// Start of the ring's header (`region + base`), checked in bounds and 64-aligned.
    ctl: NonNull<u8>,
    /// Start of the data area (`ctl + HEADER_LEN`), `cap` bytes.
    data: NonNull<u8>,
    pub(super) cap: usize,
}

// SAFETY: `ctl` and `data` point into the mapping kept alive by `region` (itself Send + Sync);
// all access through them is atomic or follows the ring protocol.
unsafe impl Send for Ring {}
// SAFETY: as for Send.
unsafe impl Sync for Ring {}

impl Ring {
    pub(super) fn attach(region: Arc<SharedRegion>, base: usize) -> Self {
        assert_eq!(base % 64, 0, "ring base must be 64-aligned");
        let cap = region.atomic_u64(base + CAP).load(Ordering::Acquire) as usize;
        assert!(
            cap.is_power_of_two() && cap >= 64,
            "no initialized ring at offset {base}"
        );
        assert!(
            base + ring_len(cap) <= region.len(),
            "ring does not fit in region"
        );
        // SAFETY: `base + ring_len(cap)` is within the mapping (checked above), so both offsets
        // stay inside it; the mapping's address is non-null.
        let (ctl, data) = unsafe {
            let ctl = region.as_ptr().add(base);
            (
                NonNull::new_unchecked(ctl),
                NonNull::new_unchecked(ctl.add(HEADER_LEN)),
            )
        };
        Self {
            _region: region,
            ctl,
            data,
            cap,
        }
    }
    pub(super) fn u64(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off < HEADER_LEN && off.is_multiple_of(8));
        // SAFETY: `off` is one of the 8-aligned header offsets below HEADER_LEN; `ctl` is
        // 64-aligned and in bounds; the mapping lives as long as `self.region`.
        unsafe { AtomicU64::from_ptr(self.ctl.as_ptr().add(off).cast()) }
    }
    pub(super) fn u32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off < HEADER_LEN && off.is_multiple_of(4));
        // SAFETY: as in `u64`, for a 4-aligned header offset.
        unsafe { AtomicU32::from_ptr(self.ctl.as_ptr().add(off).cast()) }
    }
    pub(super) fn closed(&self) -> bool {
        self.u32(CLOSED).load(Ordering::Acquire) != 0
    }
    pub(super) fn close(&self) {
        self.u32(CLOSED).store(1, Ordering::SeqCst);
        for off in [RX_SLEEP, TX_SLEEP] {
            self.u32(off).store(0, Ordering::SeqCst);
            futex::wake(self.u32(off), i32::MAX);
        }
    }
    /// Copies `data` into the data area at stream position `pos`, wrapping around.
    /// `data.len()` must not exceed `cap` (the sender never writes more than the free space).
    pub(super) fn copy_in(&self, pos: u64, data: &[u8]) {
        assert!(data.len() <= self.cap);
        let at = (pos as usize) & (self.cap - 1);
        let first = data.len().min(self.cap - at);
        // SAFETY: `at + first <= cap` and `data.len() - first <= cap`, so both destination
        // ranges lie in the data area; `data` is a caller's buffer, never the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.data.as_ptr().add(at), first);
            if first < data.len() {
                std::ptr::copy_nonoverlapping(
                    data.as_ptr().add(first),
                    self.data.as_ptr(),
                    data.len() - first,
                );
            }
        }
    }
    fn header(&self, pos: u64) -> &AtomicU64 {
        let at = (pos as usize) & (self.cap - 1) & !7;
        // SAFETY: `at + 8 <= cap` (cap is a multiple of 8, `at` 8-aligned), inside the data
        // area, which is 64-aligned.
        unsafe { AtomicU64::from_ptr(self.data.as_ptr().add(at).cast()) }
    }
    /// Writes a chunk header (one aligned word: never straddles the end) at position `pos`.
    pub(super) fn store_header(&self, pos: u64, len: u32, flags: u32) {
        let word = u64::from(len) | (u64::from(flags) << 32);
        self.header(pos).store(word, Ordering::Relaxed);
    }
    /// Reads the chunk header at `pos`: `(len, flags)`.
    pub(super) fn load_header(&self, pos: u64) -> (u32, u32) {
        let word = self.header(pos).load(Ordering::Relaxed);
        (word as u32, (word >> 32) as u32)
    }
    /// Copies `len` bytes (at most `cap`) at stream position `pos` out, wrapping around, into
    /// raw (possibly uninitialized) memory.
    ///
    /// # Safety
    /// `dst` must be valid for `len` bytes of writes and not overlap the region.
    pub(super) unsafe fn copy_out_raw(&self, pos: u64, dst: *mut u8, len: usize) {
        assert!(len <= self.cap);
        let at = (pos as usize) & (self.cap - 1);
        let first = len.min(self.cap - at);
        // SAFETY: both source ranges lie in the data area (as in `copy_in`); the caller
        // guarantees `dst` is valid for `len` bytes; `first <= len`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.as_ptr().add(at), dst, first);
            if first < len {
                std::ptr::copy_nonoverlapping(self.data.as_ptr(), dst.add(first), len - first);
            }
        }
    }
    /// Wakes the peer sleeping on `word`, if it announced it sleeps (protocol step 4).
    pub(super) fn notify(&self, word: usize) {
        fence(Ordering::SeqCst);
        let w = self.u32(word);
        if w.load(Ordering::Relaxed) == 1 && w.swap(0, Ordering::SeqCst) == 1 {
            futex::wake(w, 1);
        }
    }
    /// Waits until `ready()` or the ring closes or `deadline` passes (protocol steps 3 and 5).
    /// Returns Ok(true) when ready, Ok(false) when closed, Err(()) on timeout.
    pub(super) fn wait(
        &self,
        word: usize,
        policy: WaitPolicy,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> Result<bool, ()> {
        for _ in 0..policy.spins {
            if ready() {
                return Ok(true);
            }
            std::hint::spin_loop();
        }
        for _ in 0..policy.yields {
            if ready() {
                return Ok(true);
            }
            std::thread::yield_now();
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
}
