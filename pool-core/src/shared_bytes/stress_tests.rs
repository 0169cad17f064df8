//! The heap under contention from several processes at once: children forked with `fork(2)`
//! take, fill, share, check and give back blocks of a few classes as fast as they can, so that
//! free-list pops and pushes, bumps and the accounting of `in_use` and `kept` race across
//! processes. A block handed out twice, or given back while a reference to it is alive, shows
//! as a pattern another child overwrote; a block said to be zeroed shows if it is not.
//!
//! After `fork` a child of this (multi-threaded) test process may hold copies of locks other
//! threads held: it uses only the heap's atomics and raw memory (no allocation, no lock, no
//! output) and leaves with `_exit`, its exit code saying what it saw.

use std::time::{Duration, Instant};

use super::heap::{Block, GRANULE, Heap};

/// Data bytes of the heap: twice what the children can hold at once (at most 16 blocks of each
/// class and the bursts' 8), so that a child never finds it full.
const CAPACITY: usize = 128 << 20;
const CHILDREN: u32 = 4;
const ROUNDS: u32 = 3000;
/// Blocks a child holds at once: a block taken now is checked and given back later.
const HELD: usize = 4;
/// Blocks a child takes and gives back in a burst, each round.
const BURST: u64 = 32;
/// Bytes between two words of a block's pattern: four per granule, so two blocks that overlap
/// at all share pattern words.
const STRIDE: usize = GRANULE / 4;
/// Bytes of given-back blocks that keep their pages: small, so that most releases give their
/// pages back to the kernel and some keep them.
const KEEP: u64 = 16 << 20;

/// Exit codes of a child.
const OK: i32 = 0;
const NO_ROOM: i32 = 10;
const NOT_ZEROED: i32 = 11;
const OVERWRITTEN: i32 = 12;
const SHARED_LOOKS_UNIQUE: i32 = 13;
const GIVEN_BACK_EARLY: i32 = 14;
const IN_USE_TOO_LOW: i32 = 15;
const PANICKED: i32 = 16;

fn explain(code: i32) -> &'static str {
    match code {
        NO_ROOM => "the heap had no room for a block",
        NOT_ZEROED => "a block said to be zeroed was not",
        OVERWRITTEN => "a held block's pattern was overwritten: handed out twice?",
        SHARED_LOOKS_UNIQUE => "a block with two references looked unique",
        GIVEN_BACK_EARLY => "a block with one reference left did not look unique",
        IN_USE_TOO_LOW => "in_use was below the bytes this child held",
        PANICKED => "the child panicked",
        _ => "unknown",
    }
}

/// xorshift64*: a pseudo-random sequence with no state but a word.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A block this child holds: its length, the tag of its pattern and whether it still holds a
/// second reference it took with `share`.
#[derive(Clone, Copy)]
struct Held {
    block: Block,
    len: usize,
    tag: u64,
    shared: bool,
}

/// Bytes of the block that holds `len` bytes (a power of two of granules).
fn block_bytes(len: usize) -> u64 {
    (len.div_ceil(GRANULE).next_power_of_two() * GRANULE) as u64
}

/// Offsets of the pattern's words in `len` (at least 16) bytes: every [`STRIDE`], and the last
/// word, which none of the others overlaps.
fn offsets(len: usize) -> impl Iterator<Item = usize> {
    (0..len - 15)
        .step_by(STRIDE)
        .chain(std::iter::once(len - 8))
}

/// Writes the pattern of `tag` over the first `len` bytes of `block`.
fn fill(heap: &Heap, block: Block, len: usize, tag: u64) {
    let p = heap.ptr(block.index);
    for at in offsets(len) {
        // SAFETY: this child holds a reference to `block`, which is at least `len` bytes long
        // (`take(len)`), and `at + 8 <= len`; unaligned writes are allowed.
        unsafe { p.add(at).cast::<u64>().write_unaligned(tag ^ at as u64) };
    }
}

/// Whether the pattern of `tag` (or zeros, for tag 0) is intact over the first `len` bytes.
fn intact(heap: &Heap, block: Block, len: usize, tag: u64) -> bool {
    let p = heap.ptr(block.index);
    offsets(len).all(|at| {
        let want = if tag == 0 { 0 } else { tag ^ at as u64 };
        // SAFETY: as in `fill`; volatile, so that the compiler reads the memory other
        // processes may have written rather than what it knows this one wrote.
        unsafe { std::ptr::read_volatile(p.add(at).cast::<[u8; 8]>()) == want.to_ne_bytes() }
    })
}

/// Exits the child if it unwinds: it must never go back into the test harness.
struct ExitOnUnwind;

impl Drop for ExitOnUnwind {
    fn drop(&mut self) {
        // SAFETY: `_exit` ends this forked child at once; nothing of it is needed any more.
        unsafe { libc::_exit(PANICKED) };
    }
}

/// A child's whole life: gives its exit code. Allocates nothing and takes no lock.
fn child(heap: &Heap, id: u32) -> i32 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (u64::from(id) + 1).wrapping_mul(0xff51_afd7));
    let mut held: [Option<Held>; HELD] = [None; HELD];
    let mut holding = 0u64;
    for round in 0..ROUNDS {
        // Unique to (child, round), and never 0.
        let tag = ((u64::from(id) + 1) << 56) | (u64::from(round) << 24) | 1;
        if let Err(code) = burst(heap, tag) {
            return code;
        }
        // Give back the block in this place, if any, after checking its pattern.
        let place = (rng.next() % HELD as u64) as usize;
        if let Some(h) = held[place].take() {
            if let Err(code) = give_back(heap, h) {
                return code;
            }
            holding -= block_bytes(h.len);
        }
        // Take a block of 64 KiB .. 2 MiB, for a length anywhere in the upper half of its class.
        let r = rng.next();
        let class_bytes = GRANULE << (r % 6);
        let len = class_bytes / 2 + 1 + ((r >> 8) as usize % (class_bytes / 2));
        let Some(block) = heap.take(len) else {
            return NO_ROOM;
        };
        holding += block_bytes(len);
        if heap.in_use() < holding {
            return IN_USE_TOO_LOW;
        }
        if block.zeroed && !intact(heap, block, len, 0) {
            return NOT_ZEROED;
        }
        fill(heap, block, len, tag);
        let shared = (r >> 40) & 3 == 0;
        if shared {
            // A second reference, as a handle leaving the process takes: the block must not
            // come back with the first release.
            heap.share(block);
            if heap.is_unique(block) {
                return SHARED_LOOKS_UNIQUE;
            }
        }
        held[place] = Some(Held {
            block,
            len,
            tag,
            shared,
        });
    }
    for h in held.into_iter().flatten() {
        if let Err(code) = give_back(heap, h) {
            return code;
        }
    }
    OK
}

/// Takes and gives back blocks of the smallest class as fast as it can, giving back each one
/// while it holds the next: the pops and pushes under which a free list whose head had no tag
/// would hand a block out twice (ABA). Each block's first word is marked and checked.
fn burst(heap: &Heap, tag: u64) -> Result<(), i32> {
    let mut last: Option<(Block, u64)> = None;
    for k in 0..BURST {
        let Some(block) = heap.take(GRANULE) else {
            return Err(NO_ROOM);
        };
        let mark = tag ^ ((k + 1) << 1);
        let p = heap.ptr(block.index).cast::<u64>();
        // SAFETY: this child holds the block just taken, a granule long.
        unsafe { p.write_volatile(mark) };
        if let Some((before, its)) = last.replace((block, mark)) {
            // SAFETY: this child still holds `before`, a granule long.
            if unsafe { heap.ptr(before.index).cast::<u64>().read_volatile() } != its {
                return Err(OVERWRITTEN);
            }
            heap.release(before);
        }
    }
    if let Some((block, mark)) = last {
        // SAFETY: as above, for the last block taken.
        if unsafe { heap.ptr(block.index).cast::<u64>().read_volatile() } != mark {
            return Err(OVERWRITTEN);
        }
        heap.release(block);
    }
    Ok(())
}

/// Checks the pattern of `h` and releases it: twice when it was shared, checking in between
/// that the block is still this child's alone.
fn give_back(heap: &Heap, h: Held) -> Result<(), i32> {
    if !intact(heap, h.block, h.len, h.tag) {
        return Err(OVERWRITTEN);
    }
    if h.shared {
        heap.release(h.block);
        if !heap.is_unique(h.block) {
            return Err(GIVEN_BACK_EARLY);
        }
        // Given back too early, another child could have taken it and written over it by now.
        std::hint::spin_loop();
        if !intact(heap, h.block, h.len, h.tag) {
            return Err(OVERWRITTEN);
        }
    }
    heap.release(h.block);
    Ok(())
}

/// Waits for `pid` until `deadline`, then kills it: gives its wait status.
fn wait_bounded(pid: libc::pid_t, deadline: Instant) -> libc::c_int {
    let mut status = 0;
    loop {
        // SAFETY: `pid` is a child of this process; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            return status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) and a blocking waitpid on our own child, which is stuck.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("child {pid} did not finish in time: stuck in the heap?");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn children_racing_on_one_heap_never_share_a_block_or_lose_one() {
    let heap = Heap::create(CAPACITY).unwrap();
    heap.keep_at_most(KEEP);
    let t0 = Instant::now();
    let mut pids = Vec::new();
    for id in 0..CHILDREN {
        // SAFETY: the child runs `child` only, which allocates nothing and takes no lock (the
        // heap is atomics and raw shared memory), then `_exit`s without returning to the
        // harness, even if it unwinds (`ExitOnUnwind`).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let guard = ExitOnUnwind;
            let code = child(&heap, id);
            std::mem::forget(guard);
            // SAFETY: as above: the child ends here.
            unsafe { libc::_exit(code) };
        }
        pids.push(pid);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for (id, pid) in pids.into_iter().enumerate() {
        let status = wait_bounded(pid, deadline);
        assert!(
            libc::WIFEXITED(status),
            "child {id} was killed by signal {}",
            libc::WTERMSIG(status)
        );
        let code = libc::WEXITSTATUS(status);
        assert_eq!(code, OK, "child {id}: {}", explain(code));
    }
    eprintln!(
        "{CHILDREN} children x {ROUNDS} rounds in {:?}",
        t0.elapsed()
    );

    // Every block came back, and the pages kept stay within the budget.
    assert_eq!(heap.in_use(), 0);
    assert!(heap.kept() <= KEEP, "kept {} > {KEEP}", heap.kept());

    // The free lists are sound: taking blocks of each class in turn until the heap is full
    // (its free list, then fresh ones) hands out blocks that never overlap, each reading as
    // zeros when it says so.
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for class in (0..6).rev() {
        let bytes = GRANULE << class;
        while let Some(b) = heap.take(bytes) {
            // (Its first words only: a read of every page of the heap would cost a page each.)
            assert!(!b.zeroed || intact(&heap, b, 16, 0), "zeroed block {b:?}");
            let start = b.index as usize * GRANULE;
            taken.push((start, start + bytes));
            if taken.len() > CAPACITY / GRANULE {
                panic!("more blocks than the heap holds: a free list loops");
            }
        }
    }
    taken.sort_unstable();
    for w in taken.windows(2) {
        assert!(w[0].1 <= w[1].0, "blocks {w:?} overlap");
    }
    let total: u64 = taken.iter().map(|(s, e)| (e - s) as u64).sum();
    assert_eq!(heap.in_use(), total);
    for &(start, end) in &taken {
        let b = heap
            .adopt((start / GRANULE) as u64, (end - start) as u64)
            .unwrap();
        heap.release(b);
    }
    assert_eq!(heap.in_use(), 0);
    // And a fresh take still works.
    let b = heap.take(1 << 20).expect("a block after the stress");
    fill(&heap, b, 1 << 20, 7);
    assert!(intact(&heap, b, 1 << 20, 7));
    heap.release(b);
    assert_eq!(heap.in_use(), 0);
}
