//! A bulk arena: big payloads written once into shared memory, named in the ring by a small
//! descriptor, then copied out once or decoded in place by the peer.
//!
//! Why: a frame larger than the ring streams through it in chunks, each one waiting for the
//! peer to drain the last (a wake-up per chunk, and on two cores a context switch each), and a
//! payload of a few MiB fills the ring that small messages need. An arena beside the ring takes
//! the payload in one `memcpy`; the ring carries 24 bytes. The arena is part of the link's
//! memfd, sparse: its pages exist once a payload touched them, and the next payload reuses them
//! (no fresh page faults per call). It ends with the link (no name in `/dev/shm`, no extra fd).
//!
//! # Layout (at `base`, 64-aligned)
//! | offset | word | written by |
//! |---|---|---|
//! | 0 | `released: u64`, the stream position the consumer has copied out up to | consumer |
//! | 64.. | `cap` data bytes | producer |
//!
//! # Protocol (one producer, one consumer, payloads consumed in the order they were placed)
//! 1. **Place** (producer): load `released` (Acquire); the oldest byte in use is the later of
//!    `released` and the producer's own `floor`. Nothing outstanding (in use up to `tail`): the
//!    payload goes at offset 0, the start of the next lap, so one big payload after another
//!    reuses the same pages, and that start becomes the `floor` (nothing before it is in use,
//!    though `released` stays behind it until the consumer hands this payload back). Otherwise
//!    it goes at `tail`, or at the start of the next lap when it would cross the end, if its
//!    end is at most `cap` past the oldest byte in use. No room (or a `released` that makes no
//!    sense: ahead of `tail`, or more than `cap` behind): the payload is not placed and the
//!    caller sends it through the ring as before. Placing never waits.
//! 2. **Announce** (producer): a ring frame of kind [`crate::channel::KIND_BULK`] carrying the
//!    [`Descriptor`] `(offset, len, end)`; the ring's Release store of its tail orders the
//!    payload's bytes before it.
//! 3. **Take** (consumer): after the ring's Acquire load, check `offset + len <= cap`, then
//!    either copy the bytes out ([`ArenaReader::take`]) or lend them in place to a decoder
//!    ([`ArenaReader::lend`], a [`Lease`]: the parent decodes results straight from the arena
//!    into their final place, one copy). When the copy is done or the lease dropped, store
//!    `released = end` (Release): the producer may overwrite them now. Leases may end in any
//!    order; `released` only moves past a payload once it and every payload before it ended
//!    (a small queue of ends in stream order), so the producer never overwrites a lent one.
//! 4. **A corrupting peer** cannot make this process touch memory outside the arena: a consumer
//!    checks every descriptor's bounds (step 3, [`ArenaError::OutOfBounds`]) and reads through
//!    the region's bounds-checked [`SharedRegion::bytes`]; a producer computes every offset
//!    itself, masked into the arena, and reads a nonsensical `released` as "no room" (step 1).
//!    At worst a corrupt peer garbles its own payloads, which the decoder then refuses.
//!    A corrupt peer that writes a lent payload while it is decoded garbles only the values
//!    decoded from it: the decoder checks every length against the lent slice, which is fixed.
//! 5. **Death** of either side needs nothing here: the arena lives and dies with the link's
//!    memory (a [`Lease`] keeps it mapped until dropped, after the worker died and the link
//!    was dropped); a payload the consumer never took is simply overwritten by the next
//!    life's link.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::shm::SharedRegion;

/// Bytes before the arena's data.
pub const ARENA_HEADER: usize = 64;

/// Bytes a region needs for an arena of `cap` data bytes.
pub fn arena_len(cap: usize) -> usize {
    ARENA_HEADER + cap
}

/// Where a payload was placed: what a [`crate::channel::KIND_BULK`] frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Offset of the payload in the arena's data.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// The stream position to release when it was copied out.
    pub end: u64,
}

/// Bytes of an encoded [`Descriptor`].
pub const DESCRIPTOR_LEN: usize = 24;

impl Descriptor {
    /// The frame bytes: three little-endian `u64`.
    pub fn encode(&self) -> [u8; DESCRIPTOR_LEN] {
        let mut b = [0u8; DESCRIPTOR_LEN];
        b[..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..16].copy_from_slice(&self.len.to_le_bytes());
        b[16..].copy_from_slice(&self.end.to_le_bytes());
        b
    }

    /// A descriptor from frame bytes; `None` when they are not 24 bytes.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let b: &[u8; DESCRIPTOR_LEN] = bytes.try_into().ok()?;
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Some(Self {
            offset: word(0),
            len: word(8),
            end: word(16),
        })
    }
}

/// A descriptor the consumer refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ArenaError {
    /// A descriptor arrived on a link without an arena.
    #[error("a bulk descriptor arrived on a link without an arena")]
    NoArena,
    /// The frame is not a descriptor.
    #[error("a bulk frame of {0} bytes is no descriptor")]
    Malformed(usize),
    /// The descriptor points outside the arena: the peer corrupted it.
    #[error("a bulk descriptor points outside the arena ({offset} + {len} > {cap})")]
    OutOfBounds {
        /// The announced offset.
        offset: u64,
        /// The announced length.
        len: u64,
        /// The arena's data capacity.
        cap: usize,
    },
}

/// Initializes an arena of `cap` data bytes at `base` (64-aligned) in `region`.
pub fn init(region: &SharedRegion, base: usize, cap: usize) {
    check(region, base, cap);
    region.atomic_u64(base).store(0, Ordering::Relaxed);
}

fn check(region: &SharedRegion, base: usize, cap: usize) {
    assert_eq!(base % 64, 0, "arena base must be 64-aligned");
    assert!(
        base + arena_len(cap) <= region.len(),
        "arena does not fit in region"
    );
}

fn released(region: &SharedRegion, base: usize) -> &AtomicU64 {
    region.atomic_u64(base)
}

/// The producing end (protocol steps 1 and 2).
#[derive(Debug)]
pub struct ArenaWriter {
    region: Arc<SharedRegion>,
    base: usize,
    cap: usize,
    tail: u64,
    /// Where the last payload placed with nothing outstanding starts: nothing before it is in
    /// use (protocol step 1).
    floor: u64,
}

impl ArenaWriter {
    /// The producer of the arena of `cap` bytes at `base`. Only one may exist.
    pub fn attach(region: Arc<SharedRegion>, base: usize, cap: usize) -> Self {
        check(&region, base, cap);
        let tail = released(&region, base).load(Ordering::Acquire);
        Self {
            region,
            base,
            cap,
            tail,
            floor: tail,
        }
    }

    /// Copies `payload` into the arena and returns where it went; `None` when there is no room
    /// now (the caller sends it another way).
    pub fn place(&mut self, payload: &[u8]) -> Option<Descriptor> {
        let n = payload.len() as u64;
        let cap = self.cap as u64;
        if n > cap {
            return None;
        }
        // The oldest byte in use: nothing before `floor` is (see step 1).
        let in_use = released(&self.region, self.base)
            .load(Ordering::Acquire)
            .max(self.floor);
        let outstanding = self.tail.wrapping_sub(in_use);
        let lap_start = |pos: u64| pos.div_ceil(cap).checked_mul(cap);
        let start = if outstanding == 0 {
            lap_start(self.tail)?
        } else if outstanding > cap {
            return None;
        } else if self.tail % cap + n > cap {
            lap_start(self.tail)?
        } else {
            self.tail
        };
        let end = start.checked_add(n)?;
        if outstanding != 0 && end - in_use > cap {
            return None;
        }
        let offset = start % cap;
        self.region
            .write_at(self.base + ARENA_HEADER + offset as usize, payload);
        self.tail = end;
        if outstanding == 0 {
            self.floor = start;
        }
        Some(Descriptor {
            offset,
            len: n,
            end,
        })
    }
}

/// The consuming end (protocol step 3).
#[derive(Debug)]
pub struct ArenaReader {
    region: Arc<SharedRegion>,
    base: usize,
    cap: usize,
    releases: Arc<Mutex<Releases>>,
}

/// Payloads taken or lent and not yet handed back, in stream order: `(end, done)`; the
/// first is lease number `first` (leases are numbered as they are made, so a peer that
/// announces the same `end` twice cannot make one lease release another's payload).
#[derive(Debug, Default)]
struct Releases {
    first: u64,
    pending: VecDeque<(u64, bool)>,
}

impl Releases {
    /// Records a new lease of the payload ending at `end`; returns its number.
    fn open(&mut self, end: u64) -> u64 {
        self.pending.push_back((end, false));
        self.first + self.pending.len() as u64 - 1
    }

    /// Marks lease `number` done; returns the stream position up to which every payload is
    /// done, when it moved.
    fn finish(&mut self, number: u64) -> Option<u64> {
        let at = usize::try_from(number - self.first).expect("a lease of this reader");
        self.pending[at].1 = true;
        let mut moved = None;
        while let Some(&(end, true)) = self.pending.front() {
            moved = Some(end);
            self.pending.pop_front();
            self.first += 1;
        }
        moved
    }
}

impl ArenaReader {
    /// The consumer of the arena of `cap` bytes at `base`. Only one may exist.
    pub fn attach(region: Arc<SharedRegion>, base: usize, cap: usize) -> Self {
        check(&region, base, cap);
        Self {
            region,
            base,
            cap,
            releases: Arc::default(),
        }
    }

    /// Lends the payload `d` names in place; its space is released when the lease is dropped
    /// (and every payload before it was released).
    pub fn lend(&self, d: Descriptor) -> Result<Lease, ArenaError> {
        let in_bounds = d
            .offset
            .checked_add(d.len)
            .is_some_and(|e| e <= self.cap as u64);
        if !in_bounds {
            return Err(ArenaError::OutOfBounds {
                offset: d.offset,
                len: d.len,
                cap: self.cap,
            });
        }
        let number = lock(&self.releases).open(d.end);
        Ok(Lease {
            region: Arc::clone(&self.region),
            releases: Arc::clone(&self.releases),
            released_at: self.base,
            offset: self.base + ARENA_HEADER + d.offset as usize,
            len: d.len as usize,
            number,
        })
    }

    /// Copies the payload `d` names into `out` (cleared first) and releases its space.
    pub fn take(&self, d: Descriptor, out: &mut Vec<u8>) -> Result<(), ArenaError> {
        copy_advised(self.lend(d)?.bytes(), out);
        Ok(())
    }
}

/// Copies `bytes` into `out` (cleared first), whose fresh pages are asked for as huge pages
/// before the copy writes them.
pub fn copy_advised(bytes: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve_exact(bytes.len());
    pool_core::huge_pages::advise(out.as_mut_ptr(), bytes.len());
    out.extend_from_slice(bytes);
}

fn lock(m: &Mutex<Releases>) -> std::sync::MutexGuard<'_, Releases> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A payload read in place in the arena (protocol step 3); dropping it hands its space back.
#[derive(Debug)]
pub struct Lease {
    region: Arc<SharedRegion>,
    releases: Arc<Mutex<Releases>>,
    /// Offset of the arena's `released` word.
    released_at: usize,
    offset: usize,
    len: usize,
    /// Its number in [`Releases`].
    number: u64,
}

impl Lease {
    /// The payload's bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: bounds-checked against the arena in `lend` (and again by the region). This
        // process writes an arena only through its producing end, and this is the consuming
        // end's arena; the producer (the peer) writes no byte before `released` passes it,
        // which happens only once this lease is dropped (protocol steps 1 and 3).
        unsafe { self.region.bytes(self.offset, self.len) }
    }
}

impl pool_core::LentBytes for Lease {
    fn bytes(&self) -> &[u8] {
        Lease::bytes(self)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let moved = lock(&self.releases).finish(self.number);
        if let Some(end) = moved {
            released(&self.region, self.released_at).store(end, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena(cap: usize) -> (ArenaWriter, ArenaReader) {
        let r = Arc::new(SharedRegion::create("t", 64 + arena_len(cap)).unwrap());
        init(&r, 64, cap);
        (
            ArenaWriter::attach(r.clone(), 64, cap),
            ArenaReader::attach(r, 64, cap),
        )
    }

    #[test]
    fn payloads_come_back_and_reuse_the_start_when_nothing_is_outstanding() {
        let (mut w, r) = arena(1024);
        let mut out = Vec::new();
        for n in [0usize, 1, 1000, 1024, 7] {
            let p: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            let d = w.place(&p).unwrap();
            assert_eq!(d.offset, 0, "an empty arena takes the payload at its start");
            r.take(d, &mut out).unwrap();
            assert_eq!(out, p);
        }
        assert!(w.place(&[0; 1025]).is_none(), "larger than the arena");
    }

    #[test]
    fn outstanding_payloads_are_never_overwritten() {
        let (mut w, r) = arena(1024);
        let a = w.place(&[1; 600]).unwrap();
        assert!(w.place(&[2; 600]).is_none(), "would overlap the first");
        let b = w.place(&[3; 300]).unwrap();
        assert_eq!(b.offset, 600);
        let mut out = Vec::new();
        r.take(a, &mut out).unwrap();
        assert_eq!(out, [1; 600]);
        // The next lap starts at 0, now free; it must not reach the second payload at 600.
        let c = w.place(&[4; 600]).unwrap();
        assert_eq!(c.offset, 0);
        assert!(
            w.place(&[5; 100]).is_none(),
            "only 424 bytes left behind 600..900"
        );
        r.take(b, &mut out).unwrap();
        assert_eq!(out, [3; 300]);
        r.take(c, &mut out).unwrap();
        assert_eq!(out, [4; 600]);
    }

    /// A payload placed at the start of the next lap (nothing was outstanding) leaves the rest
    /// of the arena free: the next payloads go behind it, not through the ring. The consumer's
    /// `released` still points into the last lap then, and used to count the whole lap between
    /// as taken: after each moment with nothing outstanding, every payload until the first was
    /// consumed went through the ring (a quarter of 1 MiB echoes, `bulk_profile echo`).
    #[test]
    fn after_a_jump_to_the_next_lap_the_rest_of_the_arena_is_free() {
        let (mut w, r) = arena(1024);
        let mut out = Vec::new();
        r.take(w.place(&[1; 100]).unwrap(), &mut out).unwrap();
        let a = w.place(&[2; 300]).unwrap();
        assert_eq!(
            a.offset, 0,
            "nothing outstanding: the start of the next lap"
        );
        let b = w
            .place(&[3; 300])
            .expect("724 bytes are free behind the first");
        assert_eq!(b.offset, 300);
        let c = w
            .place(&[4; 424])
            .expect("424 bytes are free behind the second");
        assert_eq!(c.offset, 600);
        assert!(w.place(&[5; 1]).is_none(), "the arena is full");
        for (d, v) in [(a, 2u8), (b, 3), (c, 4)] {
            r.take(d, &mut out).unwrap();
            assert!(out.iter().all(|&x| x == v));
        }
    }

    #[test]
    fn descriptors_outside_the_arena_are_refused() {
        let (_w, r) = arena(1024);
        let mut out = Vec::new();
        for (offset, len) in [(1000, 25), (0, 1025), (u64::MAX, 2), (2048, 0)] {
            let d = Descriptor {
                offset,
                len,
                end: 0,
            };
            assert!(
                matches!(r.take(d, &mut out), Err(ArenaError::OutOfBounds { .. })),
                "{d:?}"
            );
        }
        let d = Descriptor {
            offset: 3,
            len: 9,
            end: 12,
        };
        assert_eq!(Descriptor::decode(&d.encode()), Some(d));
        assert_eq!(Descriptor::decode(&[0; 23]), None);
    }

    #[test]
    fn a_lent_payload_is_never_overwritten_whatever_order_leases_end_in() {
        let (mut w, r) = arena(1024);
        let a = r.lend(w.place(&[1; 400]).unwrap()).unwrap();
        let b = r.lend(w.place(&[2; 400]).unwrap()).unwrap();
        drop(b);
        // `a` is still lent: the next payload must not take its place (nor the start).
        assert!(w.place(&[3; 400]).is_none(), "only 224 bytes are free");
        assert_eq!(a.bytes(), [1; 400]);
        drop(a);
        let c = w.place(&[4; 1000]).unwrap();
        assert_eq!(c.offset, 0, "all released: the start again");
        let mut out = Vec::new();
        r.take(c, &mut out).unwrap();
        assert_eq!(out, [4; 1000]);
        assert!(matches!(
            r.lend(Descriptor {
                offset: 1000,
                len: 25,
                end: 0
            }),
            Err(ArenaError::OutOfBounds { .. })
        ));
    }

    #[test]
    fn a_repeated_end_cannot_release_another_lease() {
        let (mut w, r) = arena(1024);
        let d = w.place(&[1; 400]).unwrap();
        let first = r.lend(d).unwrap();
        let forged = r.lend(d).unwrap();
        drop(forged);
        assert_eq!(released(&r.region, 64).load(Ordering::Acquire), 0);
        drop(first);
        assert_eq!(released(&r.region, 64).load(Ordering::Acquire), 400);
    }

    #[test]
    fn a_nonsensical_release_reads_as_no_room() {
        let (mut w, _r) = arena(1024);
        w.place(&[1; 10]).unwrap();
        w.region
            .atomic_u64(64)
            .store(u64::MAX / 2, Ordering::Release);
        assert!(w.place(&[2; 10]).is_none());
    }
}
