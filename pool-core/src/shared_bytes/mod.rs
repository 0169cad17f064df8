//! [`SharedBytes`]: a byte buffer that crosses to a Fork or Spawn worker, and back, as a handle.
//!
//! Why: a `Vec<u8>` argument or result crosses a process boundary as bytes, copied on the way
//! out and again on the way in; for buffers of MiBs those copies cost more than most tasks (a
//! Fork round trip of 1 MiB buffers peaks near 6 GB/s, issue #17). A `SharedBytes` of 32 KiB or
//! more lives in the shared heap (`heap.rs`) that a process and the workers it forks or spawns
//! map: it crosses as a handle (heap, block, length) and is read where it lies, so a task can
//! take a 64 MiB buffer and return another with no byte copied by the pool.
//!
//! Where the peer does not share the heap (forkserver workers, MPI ranks, a file), or the buffer
//! is small, or the heap is full, it travels as plain bytes: the same value, at the speed of a
//! `Vec<u8>`. Thread workers move it like any value.
//!
//! Sharing is reference counted, across processes: clones, and handles in flight, hold a
//! reference each; the block goes back to the heap with the last one. Writing takes
//! [`SharedBytes::make_mut`], which copies first when anyone else holds a reference, so
//! nobody sees a shared buffer change.
//!
//! The parts: `heap.rs` (blocks and their counts), `wire.rs` (how a buffer is encoded and what
//! its handle carries), `ledger.rs` (what each worker holds, for when it dies) and
//! `handover.rs` (a worker's results, until the parent has them).

mod free_list;
mod handover;
mod heap;
mod ledger;
#[cfg(all(test, loom))]
mod loom_models;
#[cfg(test)]
mod stress_tests;
mod sync;
mod wire;

pub(crate) use self::handover::discard;
pub use self::handover::{received, seal};
pub use self::wire::HeapRefs;
pub(crate) use self::wire::{decoding_again, decoding_inputs, encoding};

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use self::heap::{Block, Heap};

/// Data bytes the heap can hold (address space, not memory: pages exist once written).
const CAPACITY: usize = 32 << 30;

/// The heap of this process and its forked workers, created at first use (`None`: the system
/// refused one, and every buffer is private).
static HEAP: OnceLock<Option<Heap>> = OnceLock::new();

fn heap() -> Option<&'static Heap> {
    HEAP.get_or_init(|| Heap::create(CAPACITY).ok()).as_ref()
}

/// The heap, only if this process has one already (never makes one).
fn existing_heap() -> Option<&'static Heap> {
    HEAP.get().and_then(Option::as_ref)
}

/// Creates the shared heap now, if it is not there yet: a back end calls this before it forks
/// workers, so that they share it. Returns whether there is one.
pub fn prepare_heap() -> bool {
    heap().is_some()
}

/// A byte buffer in memory shared with forked workers (see the [module docs](self)).
///
/// ```
/// use pool_core::SharedBytes;
///
/// let data = SharedBytes::from(vec![7u8; 1 << 20]);
/// let copy = data.clone(); // a reference, not a copy
/// assert_eq!(&copy[..3], &[7, 7, 7]);
/// let doubled: SharedBytes = data.iter().map(|b| b * 2).collect();
/// assert_eq!(doubled[0], 14);
/// ```
pub struct SharedBytes(Repr);

enum Repr {
    /// `len` bytes at the start of a heap block this value holds a reference to.
    Shared {
        block: Block,
        len: usize,
    },
    Private(Arc<Vec<u8>>),
}

impl SharedBytes {
    /// Buffers shorter than this stay in private memory: copying them costs less than a block.
    pub const MIN_SHARED: usize = 32 << 10;

    /// An empty buffer.
    pub fn new() -> Self {
        Self(Repr::Private(Arc::new(Vec::new())))
    }

    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        match Self::take(len) {
            Some((block, h)) => {
                if !block.zeroed {
                    // SAFETY: the block was just taken, with one reference: ours alone, and at
                    // least `len` bytes long.
                    unsafe { h.ptr(block.index).write_bytes(0, len) };
                }
                Self(Repr::Shared { block, len })
            }
            None => Self(Repr::Private(Arc::new(vec![0; len]))),
        }
    }

    /// A copy of `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        match Self::take(bytes.len()) {
            Some((block, h)) => {
                // SAFETY: the block is ours alone (just taken) and at least `bytes.len()` long;
                // `bytes` is private memory, so the two do not overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), h.ptr(block.index), bytes.len());
                }
                Self(Repr::Shared {
                    block,
                    len: bytes.len(),
                })
            }
            None => Self(Repr::Private(Arc::new(bytes.to_vec()))),
        }
    }

    /// A buffer of `len` bytes written by `write`, which should write them all: it gets them as
    /// they are, zeros or what an earlier buffer of this process family left there (never
    /// another family's memory), so that no pass is spent clearing bytes about to be written.
    ///
    /// ```
    /// use pool_core::SharedBytes;
    ///
    /// let squares = SharedBytes::build(1 << 16, |out| {
    ///     for (i, b) in out.iter_mut().enumerate() {
    ///         *b = (i * i) as u8;
    ///     }
    /// });
    /// assert_eq!(squares[3], 9);
    /// ```
    pub fn build(len: usize, write: impl FnOnce(&mut [u8])) -> Self {
        let mut value = match Self::take(len) {
            Some((block, _)) => Self(Repr::Shared { block, len }),
            None => Self(Repr::Private(Arc::new(vec![0; len]))),
        };
        write(value.make_mut());
        value
    }

    /// A block for `len` bytes, when they are many enough and the heap has room.
    fn take(len: usize) -> Option<(Block, &'static Heap)> {
        if len < Self::MIN_SHARED {
            return None;
        }
        let h = heap()?;
        let block = h.take(len)?;
        credit_mine(h, block);
        h.map_in(block.index, len);
        Some((block, h))
    }

    /// Bytes of shared memory that buffers hold now, in this process and every process that
    /// shares its heap (block sizes: a buffer's length rounded up to a power of two of 64 KiB).
    /// A worker that died holding buffers, or a handle sent to one that died before reading
    /// it, keeps its blocks out of use until the last process of the family exits.
    pub fn heap_in_use() -> u64 {
        existing_heap().map_or(0, Heap::in_use)
    }

    /// Whether the bytes live in the shared heap, so that they cross to a forked worker as a
    /// handle (else as bytes).
    pub fn is_shared_memory(&self) -> bool {
        matches!(self.0, Repr::Shared { .. })
    }

    /// The bytes, writable: copied first into a buffer of this value's own when another clone
    /// or process holds a reference to them.
    pub fn make_mut(&mut self) -> &mut [u8] {
        if let Repr::Shared { block, .. } = self.0
            && !heap().is_some_and(|h| h.is_unique(block))
        {
            *self = Self::copy_from_slice(self);
        }
        match &mut self.0 {
            Repr::Shared { block, len } => {
                let h = heap().expect("a shared buffer has a heap");
                // SAFETY: the block is at least `len` bytes, this value holds the only
                // reference (checked above, or a fresh copy), and `&mut self` keeps it so.
                unsafe { std::slice::from_raw_parts_mut(h.ptr(block.index), *len) }
            }
            Repr::Private(v) => Arc::make_mut(v).as_mut_slice(),
        }
    }

    /// The bytes in a vector of their own (a copy, unless this value held them privately and
    /// alone).
    pub fn into_vec(mut self) -> Vec<u8> {
        match &mut self.0 {
            Repr::Private(v) => Arc::try_unwrap(std::mem::take(v)).unwrap_or_else(|v| v.to_vec()),
            Repr::Shared { .. } => self.to_vec(),
        }
    }
}

impl Default for SharedBytes {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Shared { block, len } => {
                let h = heap().expect("a shared buffer has a heap");
                // SAFETY: the block is at least `len` bytes and lives while this value holds its
                // reference; nobody writes a block with more than one reference (`make_mut`),
                // so the bytes do not change while borrowed.
                unsafe { std::slice::from_raw_parts(h.ptr(block.index), *len) }
            }
            Repr::Private(v) => v,
        }
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Clone for SharedBytes {
    fn clone(&self) -> Self {
        match &self.0 {
            Repr::Shared { block, len } => {
                let h = heap().expect("a shared buffer has a heap");
                h.share(*block);
                credit_mine(h, *block);
                Self(Repr::Shared {
                    block: *block,
                    len: *len,
                })
            }
            Repr::Private(v) => Self(Repr::Private(v.clone())),
        }
    }
}

impl Drop for SharedBytes {
    fn drop(&mut self) {
        if let Repr::Shared { block, .. } = self.0 {
            release_mine(heap().expect("a shared buffer has a heap"), block);
        }
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(v: Vec<u8>) -> Self {
        if v.len() < Self::MIN_SHARED || heap().is_none() {
            return Self(Repr::Private(Arc::new(v)));
        }
        Self::copy_from_slice(&v)
    }
}

impl From<&[u8]> for SharedBytes {
    fn from(bytes: &[u8]) -> Self {
        Self::copy_from_slice(bytes)
    }
}

impl FromIterator<u8> for SharedBytes {
    /// Writes an iterator of known length straight into the shared heap; others are collected
    /// first.
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        let len = match iter.size_hint() {
            (low, Some(high)) if low == high => low,
            _ => return Self::from(iter.collect::<Vec<u8>>()),
        };
        let Some((block, h)) = Self::take(len) else {
            return Self(Repr::Private(Arc::new(iter.collect())));
        };
        // SAFETY: the block was just taken: ours alone, at least `len` bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(h.ptr(block.index), len) };
        let mut written = 0;
        for (slot, b) in out.iter_mut().zip(&mut iter) {
            *slot = b;
            written += 1;
        }
        let mut value = Self(Repr::Shared {
            block,
            len: written,
        });
        // An iterator that lied about its length: the rest, if any, is appended by copy.
        let rest: Vec<u8> = iter.collect();
        if !rest.is_empty() {
            let mut all = value.to_vec();
            all.extend_from_slice(&rest);
            value = Self::from(all);
        }
        value
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SharedBytes {}

impl std::hash::Hash for SharedBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 16;
        let place = if self.is_shared_memory() {
            "shared"
        } else {
            "private"
        };
        write!(
            f,
            "SharedBytes({} bytes, {place}: {:?}",
            self.len(),
            &self[..self.len().min(SHOWN)]
        )?;
        if self.len() > SHOWN {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

/// Whether this process is a worker that shares the heap of the process its calls come from
/// (forked after the heap was made, or spawned and given it).
static PARENT_SHARES_HEAP: AtomicBool = AtomicBool::new(false);

/// This process's ledger, when it is a worker that has one; `NO_LEDGER` otherwise.
static MY_LEDGER: AtomicU32 = AtomicU32::new(NO_LEDGER);
const NO_LEDGER: u32 = u32::MAX;

/// Claims a ledger for a worker about to be forked (the record of what it holds): pass it to
/// [`forked_worker_shares_heap`] in the child, and to [`drain_ledger`] once the child is reaped.
/// `None` when there is no heap, or every ledger is taken (the worker then has none: what it
/// holds when it dies stays out of use until the family exits).
pub fn claim_ledger() -> Option<u32> {
    existing_heap()?.claim_ledger()
}

/// Gives back every reference the worker of ledger `id` held, and frees the ledger: call it
/// only once that worker is gone (reaped), so that nothing writes the ledger any more.
pub fn drain_ledger(id: u32) {
    if let Some(h) = existing_heap() {
        h.drain_ledger(id);
    }
}

/// Tells a freshly forked worker that its parent shares its heap (when the parent had one
/// before the fork), so its results' buffers go back as handles, and which ledger records
/// what it holds.
pub fn forked_worker_shares_heap(ledger: Option<u32>) {
    let inherited = existing_heap();
    if let Some(h) = inherited {
        h.forget_mappings();
    }
    become_worker(inherited.is_some(), ledger);
}

/// Sets this worker's part in its parent's heap: whether it shares it, and its ledger.
fn become_worker(shares: bool, ledger: Option<u32>) {
    MY_LEDGER.store(ledger.unwrap_or(NO_LEDGER), Ordering::Relaxed);
    PARENT_SHARES_HEAP.store(shares, Ordering::Relaxed);
}

/// Records a reference this process took to `block` in its ledger, if it has one (ledger
/// protocol step 2: after the reference is counted in the block).
fn credit_mine(h: &Heap, block: Block) {
    let id = MY_LEDGER.load(Ordering::Relaxed);
    if id != NO_LEDGER {
        ledger::credit(h.ledger(id), block.index);
    }
}

/// Gives back a reference this process held: off its ledger first, then off the block
/// (ledger protocol step 3).
fn release_mine(h: &Heap, block: Block) {
    let id = MY_LEDGER.load(Ordering::Relaxed);
    if id != NO_LEDGER {
        ledger::debit(h.ledger(id), block.index);
    }
    h.release(block);
}

/// The heap's memfd, for a back end that spawns a worker to pass on (see
/// [`spawned_worker_shares_heap`]); `None` when there is no heap.
pub fn heap_fd() -> Option<std::os::fd::BorrowedFd<'static>> {
    existing_heap().map(|h| h.fd())
}

/// Maps, in a freshly spawned worker, the heap of its parent from the memfd it passed
/// ([`heap_fd`]), before anything else makes one; its results' buffers then go back as
/// handles, and `ledger` records what it holds. False (the worker goes on with bytes) when
/// the fd is no heap or this process has one already.
pub fn spawned_worker_shares_heap(fd: std::os::fd::OwnedFd, ledger: Option<u32>) -> bool {
    let Ok(heap) = Heap::open(fd) else {
        return false;
    };
    if HEAP.set(Some(heap)).is_err() {
        return false;
    }
    become_worker(true, ledger);
    true
}

/// Whether results go to the parent as handles (see [`forked_worker_shares_heap`]).
pub(crate) fn parent_shares_heap() -> bool {
    PARENT_SHARES_HEAP.load(Ordering::Relaxed)
}
