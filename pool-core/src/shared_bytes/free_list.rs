//! A class's free list: a lock-free stack of blocks shared by every process of the family,
//! which may die at any instant (no lock, so none is left held). Heap protocol step 2 uses it.
//!
//! # Protocol
//! 1. The head word packs a *tag* (high 32 bits) with the top block's index + 1 (low 32 bits;
//!    0: empty). Every change of the head bumps the tag.
//! 2. **Push** `i`: read the head, store its index + 1 in block `i`'s link (Relaxed), and
//!    compare-exchange the head to `(tag + 1, i + 1)` with Release: whatever the pusher wrote
//!    before (the block's bytes, its state) happens before the next pop of `i`.
//! 3. **Pop**: read the head (Acquire); empty: none. Else read the top block's link (Relaxed)
//!    and compare-exchange the head to `(tag + 1, link)` with Acquire. The link read may be
//!    stale (another process popped the block, and pushed it again, in between: the ABA case);
//!    the tag has moved then, and the compare-exchange fails and starts over.
//! 4. A head or link past the table (written by a corrupt process) reads as empty.
//!
//! Checked: `loom_models.rs` runs pushes and pops of three threads on one stack, the ABA case
//! among them, in every interleaving loom explores.

use super::sync::{AtomicU32, AtomicU64, Ordering};

/// Pushes block `index` (step 2); `link(i)` is block `i`'s link word.
pub(crate) fn push<'a>(head: &AtomicU64, link: impl Fn(u32) -> &'a AtomicU32, index: u32) {
    let next = link(index);
    let mut h = head.load(Ordering::Relaxed);
    loop {
        next.store((h & 0xffff_ffff) as u32, Ordering::Relaxed);
        let new = ((h >> 32) + 1) << 32 | u64::from(index + 1);
        match head.compare_exchange_weak(h, new, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => h = now,
        }
    }
}

/// Pops a block of the `blocks` the table holds (steps 3 and 4).
pub(crate) fn pop<'a>(
    head: &AtomicU64,
    link: impl Fn(u32) -> &'a AtomicU32,
    blocks: u32,
) -> Option<u32> {
    let mut h = head.load(Ordering::Acquire);
    loop {
        let top = (h & 0xffff_ffff) as u32;
        if top == 0 || top > blocks {
            return None;
        }
        let next = link(top - 1).load(Ordering::Relaxed);
        let new = ((h >> 32) + 1) << 32 | u64::from(next);
        match head.compare_exchange_weak(h, new, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => return Some(top - 1),
            Err(now) => h = now,
        }
    }
}
