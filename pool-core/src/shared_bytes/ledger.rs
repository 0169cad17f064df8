//! Ledgers: which references to heap blocks a worker process holds, written where its parent
//! can read them, so that a worker that dies without running its drops (killed by a timeout,
//! by the end of a failed call, by the OOM killer) gives its blocks back all the same.
//!
//! Why: reference counts live in the heap, but what each process holds lives in its values;
//! when a process dies, its values are gone and their counts stay up, and the blocks would be
//! out of use until the whole family exits.
//!
//! # Layout
//! A ledger is [`ENTRIES`] words in the heap's ledger area; a word packs a block's index + 1
//! (high 32 bits; 0: free) with how many references the worker holds to it (low 32 bits).
//! Which ledgers are claimed is a bitmap in the heap's header.
//!
//! # Protocol
//! 1. **Claim** (a parent, before it forks a worker): set a clear bit of the bitmap. The
//!    ledger's words are all zero (step 5 left them so). The worker is forked knowing it.
//! 2. **Credit** (the worker, for a reference it took: a block taken, a clone, an argument
//!    decoded again; the parent, for the references a command to the worker carries, before
//!    it sends it): after the reference exists in the block's count, add 1 to the word of the
//!    block: probing from the block's hash, the first word that names it or holds no
//!    references (then claimed for the block by a compare-exchange; a block may so have two
//!    words, whose counts add up). No such word in the whole ledger: the reference goes
//!    unrecorded.
//! 3. **Debit** (the worker, for a reference it gives up): subtract 1 from the first word that
//!    names the block with at least one reference, *before* the block's count drops; none:
//!    nothing (its credit went unrecorded).
//! 4. **Hand over** (the worker encodes a handle to its parent): nothing here; the reference
//!    it adds travels with the handle and is its receiver's.
//! 5. **Drain** (the parent, once the worker is reaped: nothing else writes the ledger): give
//!    back every reference recorded, zero the words, clear the bit.
//!
//! Order is what keeps a death at any instant safe: a reference is counted in the block
//! before it is credited here, and debited here before it leaves the block's count, so a
//! ledger never records a reference that does not exist. A death between the two steps, or an
//! unrecorded reference, leaves a block out of use until the family exits; nothing is ever
//! given back twice.

use super::sync::{AtomicU64, Ordering};

/// Words per ledger: distinct blocks a worker can hold at once and have recorded.
pub(crate) const ENTRIES: usize = 1024;
/// Ledgers per heap: worker processes alive at once in the family.
pub(crate) const LEDGERS: usize = 256;

const COUNT: u64 = 0xffff_ffff;

fn key(word: u64) -> u32 {
    (word >> 32) as u32
}

/// Where probing for `index` starts in a ledger of `n` words.
fn home(index: u32, n: usize) -> usize {
    (index.wrapping_mul(0x9E37_79B9) >> 22) as usize % n
}

/// Adds one reference to `index` (protocol step 2); false when the ledger is full.
pub(crate) fn credit(words: &[AtomicU64], index: u32) -> bool {
    let name = u64::from(index + 1) << 32;
    let n = words.len();
    for i in 0..n {
        let w = &words[(home(index, n) + i) % n];
        let mut now = w.load(Ordering::Relaxed);
        loop {
            let new = if key(now) == index + 1 && now & COUNT < COUNT {
                now + 1
            } else if now & COUNT == 0 {
                name | 1
            } else {
                break;
            };
            match w.compare_exchange_weak(now, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => now = seen,
            }
        }
    }
    false
}

/// Takes one reference to `index` off the ledger (protocol step 3); false when none was
/// recorded.
pub(crate) fn debit(words: &[AtomicU64], index: u32) -> bool {
    let n = words.len();
    for i in 0..n {
        let w = &words[(home(index, n) + i) % n];
        let mut now = w.load(Ordering::Relaxed);
        while key(now) == index + 1 && now & COUNT > 0 {
            match w.compare_exchange_weak(now, now - 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => now = seen,
            }
        }
    }
    false
}

/// Empties the ledger (protocol step 5), calling `give_back` once per recorded reference.
pub(crate) fn drain(words: &[AtomicU64], mut give_back: impl FnMut(u32)) {
    for w in words {
        let word = w.swap(0, Ordering::Acquire);
        if key(word) > 0 {
            for _ in 0..word & COUNT {
                give_back(key(word) - 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Vec<AtomicU64> {
        (0..ENTRIES).map(|_| AtomicU64::new(0)).collect()
    }

    fn drained(words: &[AtomicU64]) -> Vec<u32> {
        let mut out = Vec::new();
        drain(words, |i| out.push(i));
        out.sort_unstable();
        out
    }

    #[test]
    fn what_is_credited_and_not_debited_is_given_back_once() {
        let l = ledger();
        assert!(credit(&l, 7) && credit(&l, 7) && credit(&l, 9) && credit(&l, 0));
        assert!(debit(&l, 7));
        assert!(!debit(&l, 8), "never credited");
        assert_eq!(drained(&l), [0, 7, 9]);
        assert_eq!(drained(&l), [] as [u32; 0], "a drained ledger is empty");
    }

    #[test]
    fn a_full_ledger_refuses_new_blocks_and_reuses_words_at_zero() {
        let l = ledger();
        for i in 0..ENTRIES as u32 {
            assert!(credit(&l, i));
        }
        assert!(!credit(&l, 5000), "full");
        assert!(credit(&l, 3), "a block it names still counts up");
        assert!(debit(&l, 3) && debit(&l, 3));
        assert!(credit(&l, 5000), "the word of block 3, at zero, is reused");
        assert!(!debit(&l, 3));
        let back = drained(&l);
        assert_eq!(back.len(), ENTRIES);
        assert!(back.contains(&5000) && !back.contains(&3));
    }

    #[test]
    fn two_threads_crediting_and_debiting_the_same_blocks_agree() {
        let l = ledger();
        std::thread::scope(|s| {
            for t in 0..2u32 {
                let l = &l;
                s.spawn(move || {
                    for round in 0..20_000u32 {
                        let b = (round * 7 + t) % 64;
                        assert!(credit(l, b));
                        if round % 3 != 0 {
                            assert!(debit(l, b));
                        }
                    }
                });
            }
        });
        let kept = (0..20_000u32).filter(|r| r % 3 == 0).count() * 2;
        assert_eq!(drained(&l).len(), kept);
    }
}
