//! Loom models of the shared heap's lock-free parts over memory of their own: the free lists
//! (`free_list.rs`), the last drop of a reference (`heap.rs`, protocol step 4) and the ledgers
//! (`ledger.rs`). Threads stand for the processes of a family; loom runs every interleaving up
//! to its preemption bound, with the code's own orderings.
//!
//! A block held by two takers at once, or taken before the writes and reads of its last
//! holders are ordered before the taker's, shows as a race on the block's loom cell; a block
//! lost or listed twice, as a wrong count at the end.
//!
//! Run (a separate target dir keeps normal builds intact; `scripts/verify.sh loom` does):
//! `LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!  cargo test -p pool-core --release --lib loom_models`

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use super::free_list;
use super::heap::last_reference_dropped;
use super::ledger;
use super::sync::{AtomicU32, AtomicU64, Ordering};

/// One class's free list over `n` blocks, each with its link, its reference count and its
/// bytes.
struct Blocks {
    head: AtomicU64,
    links: Vec<AtomicU32>,
    refs: Vec<AtomicU32>,
    bytes: Vec<UnsafeCell<u64>>,
}

impl Blocks {
    /// `n` blocks, all on the free list.
    fn free(n: u32) -> Arc<Self> {
        let b = Blocks {
            head: AtomicU64::new(0),
            links: (0..n).map(|_| AtomicU32::new(0)).collect(),
            refs: (0..n).map(|_| AtomicU32::new(0)).collect(),
            bytes: (0..n).map(|_| UnsafeCell::new(0)).collect(),
        };
        for i in 0..n {
            b.push(i);
        }
        Arc::new(b)
    }

    fn push(&self, i: u32) {
        free_list::push(&self.head, |i| &self.links[i as usize], i);
    }

    fn pop(&self) -> Option<u32> {
        free_list::pop(
            &self.head,
            |i| &self.links[i as usize],
            self.links.len() as u32,
        )
    }

    /// Writes `v` in block `i`, as its holder.
    fn write(&self, i: u32, v: u64) {
        // SAFETY: loom checks that no other access to the cell races with this one.
        self.bytes[i as usize].with_mut(|p| unsafe { *p = v });
    }

    fn read(&self, i: u32) -> u64 {
        // SAFETY: loom checks that no write to the cell races with this read.
        self.bytes[i as usize].with(|p| unsafe { *p })
    }

    /// Pops every block left: each once, and then none.
    fn drain(&self) -> Vec<u32> {
        let mut all: Vec<u32> = std::iter::from_fn(|| self.pop()).collect();
        all.sort_unstable();
        all
    }
}

/// Takes a block, writes and reads it as its only holder, gives it back.
fn hold_once(b: &Blocks, me: u64) {
    if let Some(i) = b.pop() {
        b.write(i, me);
        assert_eq!(b.read(i), me, "block {i} written by another holder");
        b.push(i);
    }
}

/// Free-list steps 2 and 3: three processes take and give back two blocks; none is held by two
/// at once, and both are on the list at the end.
#[test]
fn blocks_taken_by_three_processes_are_never_held_twice() {
    loom::model(|| {
        let b = Blocks::free(2);
        let others: Vec<_> = (1..3u64)
            .map(|me| {
                let b = b.clone();
                thread::spawn(move || hold_once(&b, me))
            })
            .collect();
        hold_once(&b, 0);
        for t in others {
            t.join().unwrap();
        }
        assert_eq!(b.drain(), vec![0, 1]);
    });
}

/// Free-list step 3, the ABA case: one process pops while another pops two blocks and pushes
/// the first back, so the first's head looks unchanged but its link is stale; the tag makes its
/// compare-exchange fail, and no block is lost or listed twice.
#[test]
fn a_pop_that_read_a_stale_link_starts_over() {
    loom::model(|| {
        let b = Blocks::free(3);
        let other = {
            let b = b.clone();
            thread::spawn(move || {
                let first = b.pop();
                let second = b.pop();
                for i in [first, second].into_iter().flatten() {
                    b.write(i, 1);
                }
                if let Some(i) = first {
                    b.push(i);
                }
                second
            })
        };
        let mine = b.pop();
        if let Some(i) = mine {
            b.write(i, 0);
        }
        let second = other.join().unwrap();
        for i in [mine, second].into_iter().flatten() {
            b.push(i);
        }
        assert_eq!(b.drain(), vec![0, 1, 2]);
    });
}

/// Heap step 4: a block two processes read is given back by whichever drops the last
/// reference, and a third that takes it from the free list writes it only after both reads.
#[test]
fn the_last_reference_gives_a_block_back_after_every_holder_is_done() {
    loom::model(|| {
        let b = Blocks::free(1);
        let i = b.pop().expect("the one block");
        b.write(i, 7);
        b.refs[i as usize].store(2, Ordering::Relaxed);
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || {
                    assert_eq!(b.read(i), 7);
                    if last_reference_dropped(&b.refs[i as usize]) {
                        b.push(i);
                    }
                })
            })
            .collect();
        let taker = {
            let b = b.clone();
            thread::spawn(move || {
                let got = loop {
                    match b.pop() {
                        Some(got) => break got,
                        None => thread::yield_now(),
                    }
                };
                b.write(got, 9);
            })
        };
        for t in holders {
            t.join().unwrap();
        }
        taker.join().unwrap();
        assert_eq!(b.read(i), 9);
    });
}

/// Ledger steps 2, 3 and 5: a parent credits a worker's ledger for the handles it sends while
/// the worker credits and debits its own; the drain gives back exactly what was held, even
/// when a word's count falls to zero and another block claims the word meanwhile.
#[test]
fn a_ledger_written_from_both_sides_drains_to_what_is_held() {
    loom::model(|| {
        // Four words: blocks share probing paths.
        let words: Arc<Vec<AtomicU64>> = Arc::new((0..4).map(|_| AtomicU64::new(0)).collect());
        let worker = {
            let words = words.clone();
            thread::spawn(move || {
                assert!(ledger::credit(&words, 5));
                assert!(ledger::debit(&words, 5));
                assert!(ledger::credit(&words, 13));
            })
        };
        assert!(ledger::credit(&words, 5));
        assert!(ledger::credit(&words, 9));
        worker.join().unwrap();
        let mut back = Vec::new();
        ledger::drain(&words, |i| back.push(i));
        back.sort_unstable();
        assert_eq!(back, vec![5, 9, 13]);
        assert!(words.iter().all(|w| w.load(Ordering::Relaxed) == 0));
    });
}
