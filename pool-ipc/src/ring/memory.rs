//! Where a ring's words and bytes live: the only code that touches the ring's memory.
//!
//! Normal builds point into the [`SharedRegion`] (header words as atomics, the data area copied
//! through raw pointers). Under `--cfg loom` the same ring lives in loom's model instead: header
//! words are loom atomics and the data area is loom `UnsafeCell` words, so a copy that is not
//! ordered after the matching publish (a missing Release or Acquire) is reported as a data race.
//! The loom memory is found by the ring's address in the region, so models use the real
//! [`super::init`] and `attach` calls.

use std::sync::Arc;

use crate::shm::SharedRegion;
#[cfg(not(loom))]
pub(super) use real::RingMemory;

#[cfg(loom)]
pub(super) use model::RingMemory;

use super::ring_len;

fn check_cap(cap: usize, base: usize, region: &SharedRegion) {
    assert!(
        cap.is_power_of_two() && cap >= 64,
        "no ring of a valid capacity (a power of two >= 64) at offset {base}"
    );
    assert_eq!(base % 64, 0, "ring base must be 64-aligned");
    assert!(
        base + ring_len(cap) <= region.len(),
        "ring does not fit in region"
    );
}

#[cfg(not(loom))]
mod real {
    use std::ptr::NonNull;

    use super::*;
    use crate::ring::{CAP, HEADER_LEN};
    use crate::sync::{AtomicU32, AtomicU64, Ordering};

    /// The ring's header and data area inside a shared region.
    #[derive(Debug, Clone)]
    pub(in crate::ring) struct RingMemory {
        /// Keeps the mapping that `ctl` and `data` point into alive.
        _region: Arc<SharedRegion>,
        /// Start of the ring's header (`region + base`), checked in bounds and 64-aligned.
        ctl: NonNull<u8>,
        /// Start of the data area (`ctl + HEADER_LEN`), `cap` bytes.
        data: NonNull<u8>,
        cap: usize,
    }

    // SAFETY: `ctl` and `data` point into the mapping kept alive by `_region` (itself Send +
    // Sync); all access through them is atomic or follows the ring protocol.
    unsafe impl Send for RingMemory {}
    // SAFETY: as for Send.
    unsafe impl Sync for RingMemory {}

    impl RingMemory {
        pub(in crate::ring) fn init(region: &SharedRegion, base: usize, cap: usize) {
            check_cap(cap, base, region);
            for off in (0..HEADER_LEN).step_by(8) {
                region.atomic_u64(base + off).store(0, Ordering::Relaxed);
            }
            region
                .atomic_u64(base + CAP)
                .store(cap as u64, Ordering::Release);
        }

        pub(in crate::ring) fn attach(region: Arc<SharedRegion>, base: usize) -> Self {
            assert_eq!(base % 64, 0, "ring base must be 64-aligned");
            let cap = region.atomic_u64(base + CAP).load(Ordering::Acquire) as usize;
            check_cap(cap, base, &region);
            // SAFETY: `base + ring_len(cap)` is within the mapping (checked above), so both
            // offsets stay inside it; the mapping's address is non-null.
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

        pub(in crate::ring) fn cap(&self) -> usize {
            self.cap
        }

        pub(in crate::ring) fn u64(&self, off: usize) -> &AtomicU64 {
            debug_assert!(off < HEADER_LEN && off.is_multiple_of(8));
            // SAFETY: `off` is one of the 8-aligned header offsets below HEADER_LEN; `ctl` is
            // 64-aligned and in bounds; the mapping lives as long as `self._region`.
            unsafe { AtomicU64::from_ptr(self.ctl.as_ptr().add(off).cast()) }
        }

        pub(in crate::ring) fn u32(&self, off: usize) -> &AtomicU32 {
            debug_assert!(off < HEADER_LEN && off.is_multiple_of(4));
            // SAFETY: as in `u64`, for a 4-aligned header offset.
            unsafe { AtomicU32::from_ptr(self.ctl.as_ptr().add(off).cast()) }
        }

        fn word(&self, at: usize) -> &AtomicU64 {
            assert!(at + 8 <= self.cap && at.is_multiple_of(8));
            // SAFETY: `at + 8 <= cap` and `at` is 8-aligned (checked), inside the data area,
            // which is 64-aligned.
            unsafe { AtomicU64::from_ptr(self.data.as_ptr().add(at).cast()) }
        }

        /// Stores the data word at `at` (8-aligned, below `cap`).
        pub(in crate::ring) fn store_word(&self, at: usize, word: u64) {
            self.word(at).store(word, Ordering::Relaxed);
        }

        /// Loads the data word at `at` (8-aligned, below `cap`).
        pub(in crate::ring) fn load_word(&self, at: usize) -> u64 {
            self.word(at).load(Ordering::Relaxed)
        }

        /// Copies `src` into the data area from `at` (below `cap`), wrapping around.
        pub(in crate::ring) fn copy_in(&self, at: usize, src: &[u8]) {
            assert!(at < self.cap && src.len() <= self.cap);
            let first = src.len().min(self.cap - at);
            // SAFETY: `at + first <= cap` and `src.len() - first <= cap`, so both destination
            // ranges lie in the data area; `src` is a caller's buffer, never the mapping.
            unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), self.data.as_ptr().add(at), first);
                std::ptr::copy_nonoverlapping(
                    src.as_ptr().add(first),
                    self.data.as_ptr(),
                    src.len() - first,
                );
            }
        }

        /// Copies `len` bytes from `at` (below `cap`) out, wrapping around.
        ///
        /// # Safety
        /// `dst` must be valid for `len` bytes of writes and not overlap the region.
        pub(in crate::ring) unsafe fn copy_out_raw(&self, at: usize, dst: *mut u8, len: usize) {
            assert!(at < self.cap && len <= self.cap);
            let first = len.min(self.cap - at);
            // SAFETY: both source ranges lie in the data area (as in `copy_in`); the caller
            // guarantees `dst` is valid for `len` bytes; `first <= len`.
            unsafe {
                std::ptr::copy_nonoverlapping(self.data.as_ptr().add(at), dst, first);
                std::ptr::copy_nonoverlapping(self.data.as_ptr(), dst.add(first), len - first);
            }
        }
    }
}

#[cfg(loom)]
mod model {
    use loom::cell::UnsafeCell;

    use super::*;
    use crate::ring::{CLOSED, HEAD, RX_SLEEP, TAIL, TX_SLEEP};
    use crate::sync::{AtomicU32, AtomicU64};

    #[derive(Debug)]
    struct Words {
        tail: AtomicU64,
        head: AtomicU64,
        rx_sleep: AtomicU32,
        tx_sleep: AtomicU32,
        closed: AtomicU32,
        /// The data area as 8-byte words, each a loom cell (races on it are reported).
        data: Box<[UnsafeCell<u64>]>,
    }

    // SAFETY: the data cells are only touched through loom's `with`/`with_mut`, which check
    // every access for races: that check is the point of the model.
    unsafe impl Send for Words {}
    // SAFETY: as for Send.
    unsafe impl Sync for Words {}

    loom::lazy_static! {
        /// The rings initialized in this execution, by address (`region + base`).
        static ref RINGS: std::sync::Mutex<Vec<(usize, Arc<Words>)>> = Default::default();
    }

    /// The ring's words in loom's model.
    #[derive(Debug, Clone)]
    pub(in crate::ring) struct RingMemory {
        words: Arc<Words>,
        cap: usize,
    }

    impl RingMemory {
        pub(in crate::ring) fn init(region: &SharedRegion, base: usize, cap: usize) {
            check_cap(cap, base, region);
            let words = Words {
                tail: AtomicU64::new(0),
                head: AtomicU64::new(0),
                rx_sleep: AtomicU32::new(0),
                tx_sleep: AtomicU32::new(0),
                closed: AtomicU32::new(0),
                data: (0..cap / 8).map(|_| UnsafeCell::new(0)).collect(),
            };
            let key = region.as_ptr() as usize + base;
            let mut rings = RINGS.lock().unwrap();
            rings.retain(|(k, _)| *k != key);
            rings.push((key, Arc::new(words)));
        }

        pub(in crate::ring) fn attach(region: Arc<SharedRegion>, base: usize) -> Self {
            let key = region.as_ptr() as usize + base;
            let rings = RINGS.lock().unwrap();
            let words = rings
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, w)| w.clone())
                .unwrap_or_else(|| panic!("no initialized ring at offset {base}"));
            let cap = words.data.len() * 8;
            Self { words, cap }
        }

        pub(in crate::ring) fn cap(&self) -> usize {
            self.cap
        }

        pub(in crate::ring) fn u64(&self, off: usize) -> &AtomicU64 {
            match off {
                TAIL => &self.words.tail,
                HEAD => &self.words.head,
                _ => panic!("no u64 header word at {off}"),
            }
        }

        pub(in crate::ring) fn u32(&self, off: usize) -> &AtomicU32 {
            match off {
                RX_SLEEP => &self.words.rx_sleep,
                TX_SLEEP => &self.words.tx_sleep,
                CLOSED => &self.words.closed,
                _ => panic!("no u32 header word at {off}"),
            }
        }

        pub(in crate::ring) fn store_word(&self, at: usize, word: u64) {
            // SAFETY: loom checks that no other access races with this write.
            self.words.data[at / 8].with_mut(|w| unsafe { *w = word });
        }

        pub(in crate::ring) fn load_word(&self, at: usize) -> u64 {
            // SAFETY: loom checks that no write races with this read.
            self.words.data[at / 8].with(|w| unsafe { *w })
        }

        /// Byte `i` of the data area, as (word index, shift).
        fn byte(&self, i: usize) -> (usize, u32) {
            let i = i & (self.cap - 1);
            (i / 8, (i % 8) as u32 * 8)
        }

        pub(in crate::ring) fn copy_in(&self, at: usize, src: &[u8]) {
            for (k, &b) in src.iter().enumerate() {
                let (w, shift) = self.byte(at + k);
                // SAFETY: loom checks that no other access races with this write.
                self.words.data[w].with_mut(|p| unsafe {
                    *p = (*p & !(0xff << shift)) | (u64::from(b) << shift);
                });
            }
        }

        /// # Safety
        /// `dst` must be valid for `len` bytes of writes.
        pub(in crate::ring) unsafe fn copy_out_raw(&self, at: usize, dst: *mut u8, len: usize) {
            for k in 0..len {
                let (w, shift) = self.byte(at + k);
                // SAFETY: loom checks the read; the caller guarantees `dst` for `len` bytes.
                let b = self.words.data[w].with(|p| unsafe { (*p >> shift) as u8 });
                // SAFETY: `k < len`.
                unsafe { dst.add(k).write(b) };
            }
        }
    }
}
