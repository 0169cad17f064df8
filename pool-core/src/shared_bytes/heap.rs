//! The shared heap: blocks of shared memory that a process and the workers it forks see at the
//! same address, taken by [`super::SharedBytes`] in any of them and given back from any of them.
//!
//! Why: a buffer that crosses to a process worker as bytes is copied at least twice on the way
//! (encoded, then decoded), and a big one costs more in copies than its task: a round trip of
//! 1 MiB buffers under Fork peaks near 6 GB/s, the speed of the caller's two copies (issue #17).
//! A buffer that already lives here crosses as a handle of 24 bytes and is read where it lies.
//!
//! # Layout (one memfd, sparse: a page exists once something wrote it)
//! | offset | what |
//! |---|---|
//! | 0 | [`Header`]: `magic`, `id`, `granules`, `top`, `kept`, `keep`, `in_use`, free-list heads |
//! | [`TABLE_AT`] | the block table: a [`Slot`] (`next`, `refs`, `state`) per [`GRANULE`] of data |
//! | after it | the ledgers of worker processes ([`super::ledger`]), claimed in the header |
//! | `data` (2 MiB aligned) | the blocks: a block of class `c` is `GRANULE << c` bytes, at any granule |
//!
//! # Protocol
//! 1. **Create** (the first process that asks, in practice the caller before it starts its
//!    workers): the memfd is mapped `MAP_SHARED` once and never unmapped, so a block's address
//!    stays valid for the life of the process; the memfd stays open (close-on-exec). Workers
//!    forked later inherit the mapping, at the same address; a spawned worker is passed the
//!    memfd and maps it wherever it lands ([`Heap::open`]: blocks are named by index, never by
//!    address). Processes that have neither (forkserver workers, MPI ranks) have no part in
//!    it, and buffers travel to them as bytes.
//! 2. **Take** (any process): pop the class's free list (a lock-free stack, `free_list.rs`,
//!    linked through the slots' `next`). Nothing there: bump `top` by the
//!    block's granules; past the end, no block (the caller keeps its bytes in private memory).
//!    The taker sets `refs = 1` and `state = class | TAKEN`; a block that came from a free list
//!    with `KEPT` leaves `kept`.
//! 3. **Share**: a handle that leaves the process carries one reference, added before it is
//!    encoded ([`Heap::share`]); the process that decodes it adopts that reference
//!    ([`Heap::adopt`] checks it names a taken block of a fitting class first).
//! 4. **Release**: `refs -= 1` (Release); whoever brings it to 0 (then an Acquire fence) gives
//!    the block back: while `kept` stays within `keep` (a sixteenth of the machine's memory,
//!    within 64 MiB..1 GiB) the block keeps its pages, warm for the
//!    next taker (`state = class | KEPT`, `kept += size`); beyond, its pages go back to the
//!    kernel (`MADV_REMOVE`; `state = class | ZERO`: it reads as zeros). Then it is pushed.
//! 5. **Death**: no lock, so a process that dies never stalls another. The references a dead
//!    worker held come back through its ledger (`ledger.rs`); what no ledger recorded (a
//!    block between pop and the ledger's credit) stays out of use until the last process of
//!    the family exits and the memfd goes with it.
//! 6. **A corrupt handle** cannot reach memory outside the heap: [`Heap::adopt`] refuses an
//!    index past the table, a block not taken, or a length beyond the block.

use super::free_list;
use super::ledger::{self, ENTRIES, LEDGERS};
use super::sync::{AtomicU32, AtomicU64, Ordering, fence};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// Bytes of a granule: the smallest block, and the unit of the block table.
pub(crate) const GRANULE: usize = 64 << 10;
/// Block classes: class `c` holds `GRANULE << c` bytes (64 KiB .. 32 GiB).
const CLASSES: usize = 20;
/// Bytes of given-back blocks whose pages are kept, warm, for the next taker: a sixteenth of
/// the machine's memory, within 64 MiB..1 GiB.
fn keep_budget() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let memory = (pages.max(0) as u64).saturating_mul(page.max(0) as u64);
    (memory / 16).clamp(64 << 20, 1 << 30)
}
/// Where the block table starts.
const TABLE_AT: usize = 4096;
const DATA_ALIGN: usize = 2 << 20;
const MAGIC: u64 = u64::from_le_bytes(*b"poolheap");

/// `state` bits above the class.
const TAKEN: u32 = 1 << 8;
const KEPT: u32 = 1 << 9;
const ZERO: u32 = 1 << 10;
const CLASS_MASK: u32 = 0xff;

#[repr(C)]
struct Header {
    magic: AtomicU64,
    id: AtomicU64,
    granules: AtomicU64,
    top: AtomicU64,
    kept: AtomicU64,
    /// The most `kept` may reach ([`keep_budget`]).
    keep: AtomicU64,
    in_use: AtomicU64,
    heads: [AtomicU64; CLASSES],
    /// Which ledgers are claimed, a bit each.
    ledgers: [AtomicU64; LEDGERS / 64],
}

/// A block's entry in the table (only its first granule's entry is used).
#[repr(C)]
struct Slot {
    /// The next free block's index + 1, while this one is on a free list.
    next: AtomicU32,
    refs: AtomicU32,
    state: AtomicU32,
    _pad: u32,
}

/// Where the parts of a heap of `granules` lie.
struct Layout {
    ledgers: usize,
    data: usize,
    total: usize,
}

impl Layout {
    fn of(granules: u32) -> Self {
        let table = granules as usize * size_of::<Slot>();
        let ledgers = (TABLE_AT + table).next_multiple_of(4096);
        let data = (ledgers + LEDGERS * ENTRIES * 8).next_multiple_of(DATA_ALIGN);
        Self {
            ledgers,
            data,
            total: data + granules as usize * GRANULE,
        }
    }
}

/// A block taken from the heap: its first granule and its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) index: u32,
    class: u8,
    /// Its bytes are known to be zeros (never written, or given back to the kernel).
    pub(crate) zeroed: bool,
}

/// A process's mapping of the shared heap.
#[derive(Debug)]
pub(crate) struct Heap {
    /// The memfd, kept (close-on-exec) so that a spawned worker can map the same heap.
    fd: OwnedFd,
    base: NonNull<u8>,
    /// Bytes mapped at `base`.
    len: usize,
    /// Where the ledgers start.
    ledgers: usize,
    data: usize,
    granules: u32,
    /// One bit per granule: this process has mapped the block starting there (see
    /// [`Heap::map_in`]). Private to the process; a forked worker starts with none.
    mapped: Box<[std::sync::atomic::AtomicU64]>,
}

// SAFETY: the mapping is shared memory that lives as long as the process (never unmapped); the
// header and table are reached only through atomics, and block bytes only by the holder of a
// reference (see `SharedBytes`).
unsafe impl Send for Heap {}
// SAFETY: see `Send`.
unsafe impl Sync for Heap {}

impl Heap {
    /// Creates a heap of up to `capacity` data bytes: fewer when the address space refuses that
    /// many (halved down to 1 GiB).
    pub(crate) fn create(mut capacity: usize) -> io::Result<Self> {
        loop {
            match Self::create_exactly(capacity) {
                Ok(h) => return Ok(h),
                Err(e) if capacity <= 1 << 30 => return Err(e),
                Err(_) => capacity /= 2,
            }
        }
    }

    fn create_exactly(capacity: usize) -> io::Result<Self> {
        let granules = u32::try_from(capacity / GRANULE)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "heap too large"))?;
        // SAFETY: a valid NUL-terminated name and memfd flags.
        let raw = unsafe { libc::memfd_create(c"pool-shared-bytes".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd, ours from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let total = Layout::of(granules).total;
        // SAFETY: `fd` is a valid memfd; the size is checked by the kernel.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), total as libc::off_t) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let heap = Self::map(fd, granules)?;
        let h = heap.header();
        h.id.store(fresh_id(), Ordering::Relaxed);
        h.granules.store(u64::from(granules), Ordering::Relaxed);
        h.keep.store(keep_budget(), Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
        Ok(heap)
    }

    /// Maps the heap another process made, from its memfd (a spawned worker's parent's).
    pub(crate) fn open(fd: OwnedFd) -> io::Result<Self> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        // SAFETY: `stat` is plain data; zeroed is a valid value for fstat to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid fd and out pointer.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let size = usize::try_from(st.st_size).map_err(|_| invalid("negative size"))?;
        if size < TABLE_AT {
            return Err(invalid("not a shared heap: too small"));
        }
        // The header first, to learn the layout.
        let header = Self::map(fd, 0)?;
        let (magic, granules) = (
            header.header().magic.load(Ordering::Acquire),
            header.header().granules.load(Ordering::Relaxed),
        );
        let granules = u32::try_from(granules).map_err(|_| invalid("granules out of range"))?;
        if magic != MAGIC || Layout::of(granules).total != size {
            return Err(invalid(
                "not a shared heap: its header does not match its size",
            ));
        }
        let fd = header.fd.try_clone()?;
        drop(header);
        Self::map(fd, granules)
    }

    /// Maps `fd` as a heap of `granules` (0: the header page alone).
    fn map(fd: OwnedFd, granules: u32) -> io::Result<Self> {
        let layout = Layout::of(granules);
        let len = if granules == 0 {
            TABLE_AT
        } else {
            layout.total
        };
        // SAFETY: a fresh shared mapping of our own file; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Self {
            fd,
            base,
            len,
            ledgers: layout.ledgers,
            data: layout.data,
            granules,
            mapped: (0..(granules as usize).div_ceil(64))
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
        })
    }

    /// The heap's memfd, to pass to a spawned worker.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn header(&self) -> &Header {
        // SAFETY: the header lies at the start of the live mapping, zero-initialized by the
        // kernel (a valid value for atomics) and only ever reached through atomics.
        unsafe { self.base.cast::<Header>().as_ref() }
    }

    fn slot(&self, index: u32) -> &Slot {
        debug_assert!(index < self.granules);
        // SAFETY: `index` is within the table (every caller checks against `granules`), which
        // lies inside the mapping, zero-initialized and reached only through atomics.
        unsafe {
            self.base
                .add(TABLE_AT)
                .cast::<Slot>()
                .add(index as usize)
                .as_ref()
        }
    }

    /// This heap's identity: a handle names it, so that a process refuses a handle to a heap it
    /// does not share.
    pub(crate) fn id(&self) -> u64 {
        self.header().id.load(Ordering::Relaxed)
    }

    /// The class that holds `len` bytes, if any does.
    fn class_for(len: usize) -> Option<u8> {
        let granules = len.max(1).div_ceil(GRANULE).next_power_of_two();
        let class = granules.trailing_zeros() as usize;
        (class < CLASSES).then_some(class as u8)
    }

    /// Bytes of a block of `class`.
    fn size(class: u8) -> usize {
        GRANULE << class
    }

    /// The first byte of `block`.
    pub(crate) fn ptr(&self, index: u32) -> *mut u8 {
        // SAFETY: a taken block lies inside the data area of the mapping (`take`, `adopt`).
        unsafe { self.base.as_ptr().add(self.data + index as usize * GRANULE) }
    }

    /// Takes a block for `len` bytes with one reference (protocol step 2); `None` when the
    /// heap has no room for it.
    pub(crate) fn take(&self, len: usize) -> Option<Block> {
        let class = Self::class_for(len)?;
        let index = match self.pop(class) {
            Some(i) => i,
            None => self.bump(class)?,
        };
        let slot = self.slot(index);
        let was = slot.state.load(Ordering::Relaxed);
        if was & KEPT != 0 {
            self.header()
                .kept
                .fetch_sub(Self::size(class) as u64, Ordering::Relaxed);
        }
        // A fresh block (state 0) was never written.
        let zeroed = was == 0 || was & ZERO != 0;
        slot.refs.store(1, Ordering::Relaxed);
        slot.state
            .store(u32::from(class) | TAKEN, Ordering::Relaxed);
        self.header()
            .in_use
            .fetch_add(Self::size(class) as u64, Ordering::Relaxed);
        Some(Block {
            index,
            class,
            zeroed,
        })
    }

    fn bump(&self, class: u8) -> Option<u32> {
        let n = 1u64 << class;
        let top = &self.header().top;
        let mut at = top.load(Ordering::Relaxed);
        loop {
            if at + n > u64::from(self.granules) {
                return None;
            }
            match top.compare_exchange_weak(at, at + n, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(at as u32),
                Err(now) => at = now,
            }
        }
    }

    fn pop(&self, class: u8) -> Option<u32> {
        let head = &self.header().heads[class as usize];
        free_list::pop(head, |i| &self.slot(i).next, self.granules)
    }

    fn push(&self, index: u32, class: u8) {
        let head = &self.header().heads[class as usize];
        free_list::push(head, |i| &self.slot(i).next, index);
    }

    /// Adds a reference for a handle about to leave the process (protocol step 3).
    pub(crate) fn share(&self, block: Block) {
        self.slot(block.index).refs.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether this process holds the only reference to `block`: then nobody else reads it.
    pub(crate) fn is_unique(&self, block: Block) -> bool {
        self.slot(block.index).refs.load(Ordering::Acquire) == 1
    }

    /// The block a decoded handle names, checked (protocol step 6); it adopts the handle's
    /// reference.
    ///
    /// A block adopted is not mapped in ahead ([`Heap::map_in`]): a task that passes its
    /// argument on, or reads a part of it, would pay for every page (a 1 MiB echo fell from
    /// ~620 to ~100 GB/s), and one that reads it all gained within the noise.
    pub(crate) fn adopt(&self, index: u64, len: u64) -> Result<Block, String> {
        let index = u32::try_from(index)
            .ok()
            .filter(|&i| i < self.granules)
            .ok_or_else(|| format!("block {index} is past the heap's {}", self.granules))?;
        let state = self.slot(index).state.load(Ordering::Acquire);
        let class = (state & CLASS_MASK) as u8;
        if state & TAKEN == 0 || usize::from(class) >= CLASSES {
            return Err(format!("block {index} is not in use"));
        }
        let fits = usize::try_from(len).is_ok_and(|l| l <= Self::size(class));
        let inside = index as usize + (1 << class) <= self.granules as usize;
        if !fits || !inside {
            return Err(format!("{len} bytes do not fit block {index}"));
        }
        Ok(Block {
            index,
            class,
            zeroed: false,
        })
    }

    /// Maps the first `len` bytes of the block at `index` into this process at once, for
    /// writing, the first time this process takes the block (its taker calls it, once the
    /// block is in its ledger: a worker killed while it maps a block in gives it back).
    ///
    /// Why: a forked worker shares the heap's pages but not the page tables that point at them,
    /// so the first touch of each 4 KiB page of a block it meets is a page fault, ~2 µs on a
    /// VM: 16k of them for a 64 MiB block, slower than writing it. Mapping the block in one
    /// call costs a fraction of that; once mapped, the block stays mapped for the process's
    /// life (unless given back to the kernel, after which touches fault as usual). A kernel
    /// without the advice (before Linux 5.14) faults as before.
    pub(crate) fn map_in(&self, index: u32, len: usize) {
        let (word, bit) = (index as usize / 64, 1u64 << (index % 64));
        if self.mapped[word].load(Ordering::Relaxed) & bit != 0 {
            return;
        }
        self.mapped[word].fetch_or(bit, Ordering::Relaxed);
        let len = len.next_multiple_of(4096);
        // SAFETY: the range lies inside the block, inside the mapping; populating changes no
        // byte of it.
        unsafe { libc::madvise(self.ptr(index).cast(), len, libc::MADV_POPULATE_WRITE) };
    }

    /// Forgets which blocks this process mapped: a forked child has none of its parent's
    /// page-table entries for the heap.
    pub(crate) fn forget_mappings(&self) {
        for w in &self.mapped {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// Drops one reference; the last one gives the block back (protocol step 4).
    pub(crate) fn release(&self, block: Block) {
        let slot = self.slot(block.index);
        if !last_reference_dropped(&slot.refs) {
            return;
        }
        let size = Self::size(block.class);
        self.header()
            .in_use
            .fetch_sub(size as u64, Ordering::Relaxed);
        let kept = &self.header().kept;
        let keep = self.header().keep.load(Ordering::Relaxed);
        let state = if kept.fetch_add(size as u64, Ordering::Relaxed) + size as u64 <= keep {
            KEPT
        } else {
            kept.fetch_sub(size as u64, Ordering::Relaxed);
            // SAFETY: the block lies inside the shared mapping and nobody holds a reference to
            // it; removing its pages only makes it read as zeros.
            unsafe { libc::madvise(self.ptr(block.index).cast(), size, libc::MADV_REMOVE) };
            ZERO
        };
        slot.state
            .store(u32::from(block.class) | state, Ordering::Relaxed);
        self.push(block.index, block.class);
    }

    /// Claims a free ledger for a worker about to be forked (ledger protocol step 1).
    pub(crate) fn claim_ledger(&self) -> Option<u32> {
        for (i, bits) in self.header().ledgers.iter().enumerate() {
            let mut now = bits.load(Ordering::Relaxed);
            while now != u64::MAX {
                let bit = (!now).trailing_zeros();
                match bits.compare_exchange_weak(
                    now,
                    now | 1 << bit,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(i as u32 * 64 + bit),
                    Err(seen) => now = seen,
                }
            }
        }
        None
    }

    /// The words of ledger `id`.
    pub(crate) fn ledger(&self, id: u32) -> &[AtomicU64] {
        assert!((id as usize) < LEDGERS, "ledger {id} out of range");
        // SAFETY: the ledger area lies inside the mapping, after the table; ledger `id` is
        // `ENTRIES` words of it, zero-initialized and reached only through atomics.
        unsafe {
            let first = self
                .base
                .add(self.ledgers)
                .cast::<AtomicU64>()
                .add(id as usize * ENTRIES);
            std::slice::from_raw_parts(first.as_ptr(), ENTRIES)
        }
    }

    /// Gives back every reference ledger `id` records and frees it (ledger protocol step 5):
    /// only once its worker is gone.
    pub(crate) fn drain_ledger(&self, id: u32) {
        ledger::drain(self.ledger(id), |index| {
            if let Ok(block) = self.adopt(u64::from(index), 0) {
                self.release(block);
            }
        });
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        self.header().ledgers[word].fetch_and(!bit, Ordering::Release);
    }

    /// Bytes of the blocks taken and not given back, in every process of the family.
    pub(crate) fn in_use(&self) -> u64 {
        self.header().in_use.load(Ordering::Relaxed)
    }

    /// Sets how many bytes of given-back blocks keep their pages (for tests).
    #[cfg(test)]
    pub(crate) fn keep_at_most(&self, bytes: u64) {
        self.header().keep.store(bytes, Ordering::Relaxed);
    }

    /// Bytes of given-back blocks whose pages are kept (for tests).
    #[cfg(test)]
    pub(crate) fn kept(&self) -> u64 {
        self.header().kept.load(Ordering::Relaxed)
    }
}

impl Drop for Heap {
    /// Unmaps it: only heaps of tests, and the header-only map of [`Heap::open`], ever end; the
    /// process's heap lives in a `static` for the life of the process.
    fn drop(&mut self) {
        // SAFETY: the mapping is ours, `len` bytes at `base`, and nothing borrowed from it
        // outlives `self` (a `Block` is an index, resolved through a live heap).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A heap identity unlikely to match another's: the clock, the pid and an address.
/// Drops one of a block's references (protocol step 4); true for the last one, whose holder
/// then gives the block back: everything done under the other references happens before what
/// it does next (Release on each drop, an Acquire fence after the last).
pub(crate) fn last_reference_dropped(refs: &AtomicU32) -> bool {
    if refs.fetch_sub(1, Ordering::Release) != 1 {
        return false;
    }
    fence(Ordering::Acquire);
    true
}

fn fresh_id() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    t ^ u64::from(std::process::id()).rotate_left(40) ^ (&raw const local as u64).rotate_left(20)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap() -> Heap {
        Heap::create(64 << 20).unwrap()
    }

    #[test]
    fn a_given_back_block_is_taken_again_warm_and_a_fresh_one_is_zero() {
        let h = heap();
        let a = h.take(1 << 20).unwrap();
        assert!(a.zeroed);
        // SAFETY: the block is ours (one reference) and 1 MiB long.
        unsafe { h.ptr(a.index).write_bytes(7, 1 << 20) };
        h.release(a);
        assert_eq!(h.kept(), 1 << 20);
        let b = h.take(1 << 20).unwrap();
        assert_eq!(b.index, a.index);
        assert!(!b.zeroed);
        assert_eq!(h.kept(), 0);
    }

    #[test]
    fn classes_round_up_to_powers_of_two_granules() {
        assert_eq!(Heap::class_for(1), Some(0));
        assert_eq!(Heap::class_for(GRANULE), Some(0));
        assert_eq!(Heap::class_for(GRANULE + 1), Some(1));
        assert_eq!(Heap::class_for(1 << 20), Some(4));
        assert_eq!(Heap::class_for(usize::MAX / 2), None);
    }

    #[test]
    fn a_full_heap_says_so_and_a_release_makes_room() {
        let h = heap();
        let blocks: Vec<_> = std::iter::from_fn(|| h.take(8 << 20)).collect();
        assert_eq!(blocks.len(), 8);
        assert!(h.take(8 << 20).is_none());
        h.release(blocks[3]);
        assert_eq!(h.take(8 << 20).map(|b| b.index), Some(blocks[3].index));
    }

    #[test]
    fn a_shared_block_comes_back_with_its_last_reference() {
        let h = heap();
        let a = h.take(GRANULE).unwrap();
        h.share(a);
        assert!(!h.is_unique(a));
        h.release(a);
        assert!(h.is_unique(a));
        assert_eq!(
            h.adopt(u64::from(a.index), GRANULE as u64).map(|b| b.index),
            Ok(a.index)
        );
        h.release(a);
        assert!(h.adopt(u64::from(a.index), 1).is_err(), "given back");
    }

    #[test]
    fn a_corrupt_handle_is_refused() {
        let h = heap();
        let a = h.take(GRANULE).unwrap();
        assert!(h.adopt(u64::from(u32::MAX), 1).is_err());
        assert!(h.adopt(u64::from(a.index), GRANULE as u64 + 1).is_err());
        assert!(
            h.adopt(u64::from(a.index) + 1, 1).is_err(),
            "not a block's start"
        );
    }

    #[test]
    fn blocks_beyond_the_kept_budget_give_their_pages_back() {
        let h = Heap::create(1 << 30).unwrap();
        h.keep_at_most(256 << 20);
        let blocks: Vec<_> = (0..3).map(|_| h.take(128 << 20).unwrap()).collect();
        for b in &blocks {
            // SAFETY: ours, 128 MiB long.
            unsafe { h.ptr(b.index).write_bytes(1, 128 << 20) };
        }
        for b in blocks {
            h.release(b);
        }
        assert_eq!(h.kept(), 256 << 20);
        let again: Vec<_> = (0..3).map(|_| h.take(128 << 20).unwrap()).collect();
        // Last given back, first taken: the one beyond the budget reads as zeros.
        assert!(again[0].zeroed);
        // SAFETY: ours; reading the first byte.
        assert_eq!(unsafe { *h.ptr(again[0].index) }, 0);
        assert!(!again[1].zeroed && !again[2].zeroed);
    }
}
