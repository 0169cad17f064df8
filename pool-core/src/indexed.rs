//! Inputs that workers read themselves: ranges of integers and vectors.
//!
//! Why: from a plain iterator, the caller's thread pulls every input and writes it into a
//! chunk that a worker then reads back. On short tasks that copy, made by one thread that also
//! competes with the workers for cores, costs more than the tasks. But a range is a formula
//! and a vector is already in memory: for those a chunk is only a range of indices, and the
//! worker makes (range) or moves (vector) its inputs itself, a small batch at a time that
//! stays in its cache. rayon's indexed iterators avoid the copy the same way.
//!
//! `map(f, 0..n)` and `map(f, vec)` take this path without asking: [`split`] recognizes the
//! input's type with `typeid`, which also works for iterators that borrow (a `TypeId` needs
//! `'static`). Every other input is chunked by [`crate::chunking::Chunks`].

use std::any::Any;
use std::mem::ManuallyDrop;
use std::ops::{Range, RangeInclusive};
use std::ptr::NonNull;
use std::sync::Arc;

/// Inputs of known length that can be cut into chunks that workers read on their own.
pub(crate) trait Splittable<T> {
    /// How many inputs there are.
    fn len(&self) -> usize;
    /// The reader of inputs `start..start + len`. Calls come with consecutive, increasing
    /// ranges (each input is handed out once).
    fn split(&mut self, start: usize, len: usize) -> Box<dyn ChunkReader<T>>;
    /// The memory these inputs lie in, for the call's output to be written over them as they
    /// are used up (see [`VecInputs::lend_allocation`]): its start and its capacity, at least
    /// `min` elements. `None` for inputs that are not in memory.
    fn lend_allocation(&mut self, _min: usize) -> Option<(NonNull<T>, usize)> {
        None
    }
}

/// The inputs of one chunk, read by the worker that runs it.
pub(crate) trait ChunkReader<T>: Send {
    /// Inputs not read yet.
    fn remaining(&self) -> usize;
    /// Appends the next `n` inputs (fewer if fewer remain) to `out`, moving them out.
    fn read(&mut self, n: usize, out: &mut Vec<T>);
    /// Copies of the inputs not read yet (kept by the caller to run them again if a worker is
    /// lost).
    fn to_vec(&self) -> Vec<T>;
    /// A second reader of the inputs not read yet, when they can be read twice (ranges).
    fn reopen(&self) -> Option<Box<dyn ChunkReader<T>>> {
        None
    }
    /// The inputs not read yet, when they lie in memory as they are (vectors): to encode them
    /// from where they are, without moving them out first.
    fn in_memory(&self) -> Option<&[T]> {
        None
    }
    /// The inputs not read yet as `(first, count)` when they are a range of integers: what a
    /// worker in another process needs to make them itself (see [`range_reader`]).
    fn as_range(&self) -> Option<(i128, usize)> {
        None
    }
}

/// The reader of the `len` integers from `start`, when `T` is an integer type that holds them
/// all; `None` otherwise (bytes from another process are checked, never trusted).
pub(crate) fn range_reader<T: 'static>(start: i128, len: usize) -> Option<Box<dyn ChunkReader<T>>> {
    macro_rules! try_type {
        ($($x:ty),*) => {$(
            if typeid::of::<T>() == typeid::of::<$x>() {
                let last = start.checked_add(len as i128 - 1)?;
                let fits = |v: i128| v >= <$x>::MIN as i128 && v <= <$x>::MAX as i128;
                if len > 0 && !(fits(start) && fits(last)) {
                    return None;
                }
                let next = if len == 0 { 0 } else { start as $x };
                let boxed: Box<dyn ChunkReader<$x>> = Box::new(RangeReader::<$x> { next, left: len });
                let any: Box<dyn Any> = Box::new(boxed);
                return any.downcast::<Box<dyn ChunkReader<T>>>().ok().map(|b| *b);
            }
        )*};
    }
    try_type!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
    None
}

/// `iter` as splittable inputs when it is a range of integers or a vector's `into_iter()`,
/// or back unchanged.
pub(crate) fn split<I>(iter: I) -> Result<Box<dyn Splittable<I::Item>>, I>
where
    I: Iterator,
    I::Item: Clone + Send + 'static,
{
    macro_rules! ranges {
        ($iter:ident; $($x:ty),*) => {$(
            let $iter = match cast::<I, Range<$x>>($iter) {
                Ok(r) => return Ok(erase(RangeInputs::<$x>::new(r.start, r.end as i128 - r.start as i128))),
                Err(iter) => iter,
            };
            let $iter = match cast::<I, RangeInclusive<$x>>($iter) {
                Ok(r) if r.is_empty() => return Ok(erase(RangeInputs::<$x>::new(0, 0))),
                Ok(r) => {
                    let width = *r.end() as i128 - *r.start() as i128 + 1;
                    return Ok(erase(RangeInputs::<$x>::new(*r.start(), width)));
                }
                Err(iter) => iter,
            };
        )*};
    }
    ranges!(iter; u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
    match cast::<I, std::vec::IntoIter<I::Item>>(iter) {
        // Collecting a vector's untouched `into_iter()` gives its buffer back, without a copy.
        Ok(v) => Ok(Box::new(VecInputs::new(v.collect()))),
        Err(iter) => Err(iter),
    }
}

/// `a` as a `B` if they are the same type, else `a` back.
///
/// `typeid` compares types with their lifetimes erased, so this is only sound where that
/// cannot matter: every `B` used here either has no lifetime parameter or only `'static`
/// ones that `A` must share (a vector iterator over `I::Item: 'static`).
fn cast<A, B>(a: A) -> Result<B, A> {
    if typeid::of::<A>() != typeid::of::<B>() {
        return Err(a);
    }
    let a = ManuallyDrop::new(a);
    // SAFETY: `A` and `B` are the same type (see above); `a` is not used or dropped again.
    Ok(unsafe { std::ptr::read(&*a as *const A as *const B) })
}

/// A splittable range of `X` as splittable inputs of `T`, which the caller knows to be `X`.
fn erase<X: 'static, T: 'static>(s: RangeInputs<X>) -> Box<dyn Splittable<T>>
where
    RangeInputs<X>: Splittable<X>,
{
    let boxed: Box<dyn Splittable<X>> = Box::new(s);
    let any: Box<dyn Any> = Box::new(boxed);
    *any.downcast::<Box<dyn Splittable<T>>>()
        .expect("the input type is the range's item type")
}

/// `start..end` of an integer type; a chunk is a sub-range.
struct RangeInputs<X> {
    start: X,
    len: usize,
}

macro_rules! range_inputs {
    ($($x:ty),*) => {$(
        impl RangeInputs<$x> {
            /// `width` inputs from `start` (none if it is negative). A range longer than memory
            /// could index is cut at `usize::MAX` inputs, more than any call can take.
            fn new(start: $x, width: i128) -> Self {
                RangeInputs { start, len: usize::try_from(width.max(0)).unwrap_or(usize::MAX) }
            }
        }

        impl Splittable<$x> for RangeInputs<$x> {
            fn len(&self) -> usize {
                self.len
            }

            fn split(&mut self, start: usize, len: usize) -> Box<dyn ChunkReader<$x>> {
                // In range by construction: `start + len <= self.len`.
                let first = (self.start as i128 + start as i128) as $x;
                Box::new(RangeReader::<$x> { next: first, left: len })
            }
        }

        impl ChunkReader<$x> for RangeReader<$x> {
            fn remaining(&self) -> usize {
                self.left
            }

            fn read(&mut self, n: usize, out: &mut Vec<$x>) {
                let n = n.min(self.left);
                let first = self.next;
                // Wrapping: after the range's last input, `next` may step past the type's end.
                out.extend((0..n).map(|i| first.wrapping_add(i as $x)));
                self.next = first.wrapping_add(n as $x);
                self.left -= n;
            }

            fn to_vec(&self) -> Vec<$x> {
                (0..self.left).map(|i| self.next.wrapping_add(i as $x)).collect()
            }

            fn reopen(&self) -> Option<Box<dyn ChunkReader<$x>>> {
                Some(Box::new(RangeReader::<$x> { next: self.next, left: self.left }))
            }

            fn as_range(&self) -> Option<(i128, usize)> {
                Some((self.next as i128, self.left))
            }
        }
    )*};
}
range_inputs!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// The inputs of a chunk of a range.
struct RangeReader<X> {
    next: X,
    left: usize,
}

/// A vector whose elements are moved out, chunk by chunk, by the workers that run them.
struct VecInputs<T> {
    store: Arc<VecStore<T>>,
    /// Elements `..handed` belong to chunk readers; the rest are still ours.
    handed: usize,
}

impl<T> VecInputs<T> {
    fn new(v: Vec<T>) -> Self {
        let mut v = ManuallyDrop::new(v);
        VecInputs {
            store: Arc::new(VecStore {
                ptr: v.as_mut_ptr(),
                len: v.len(),
                cap: v.capacity(),
                lent: false,
            }),
            handed: 0,
        }
    }
}

impl<T: Clone + Send + 'static> Splittable<T> for VecInputs<T> {
    fn len(&self) -> usize {
        self.store.len
    }

    fn split(&mut self, start: usize, len: usize) -> Box<dyn ChunkReader<T>> {
        assert!(
            start == self.handed && start + len <= self.store.len,
            "chunk {start}+{len} of a vector of {} handed out of order (next is {})",
            self.store.len,
            self.handed
        );
        self.handed = start + len;
        Box::new(VecReader {
            store: self.store.clone(),
            next: start,
            end: start + len,
        })
    }

    /// An in-place map (`map(f, vec)` with `f: T -> T`, as `vec.into_iter().map(f).collect()`
    /// does in std): the output takes over this vector's allocation, and a chunk's results
    /// are written over its inputs once the inputs are read (copied out by a thread worker,
    /// encoded for a process one). That saves the output's fresh pages, which one thread, the
    /// caller's, zeroes on first touch when results are decoded into them (issue #17:
    /// `steady-owned`). Lent only before any input is handed out, and only when `T` has no
    /// drop glue: the readers then never drop an element, and the store never frees the
    /// memory (the output does).
    fn lend_allocation(&mut self, min: usize) -> Option<(NonNull<T>, usize)> {
        if std::mem::needs_drop::<T>() || self.handed != 0 || self.store.cap < min {
            return None;
        }
        let store = Arc::get_mut(&mut self.store)?;
        store.lent = true;
        Some((NonNull::new(store.ptr)?, store.cap))
    }
}

impl<T> Drop for VecInputs<T> {
    fn drop(&mut self) {
        // SAFETY: elements `handed..len` were never handed to a reader: they are initialized
        // and owned here, and dropped once.
        unsafe { self.store.drop_range(self.handed, self.store.len) };
    }
}

/// The buffer of a [`VecInputs`]; it lives until its last reader is gone and only frees the
/// memory: each element is dropped (or moved out) by whoever owns it.
struct VecStore<T> {
    ptr: *mut T,
    len: usize,
    cap: usize,
    /// The memory belongs to the call's output ([`VecInputs::lend_allocation`]).
    lent: bool,
}

// SAFETY: the store is a buffer of `T`s whose disjoint ranges are owned by one reader each
// (possibly on another thread); no element is ever reached through two of them.
unsafe impl<T: Send> Send for VecStore<T> {}
// SAFETY: as above: `&VecStore` gives no access to an element by itself.
unsafe impl<T: Send> Sync for VecStore<T> {}

impl<T> VecStore<T> {
    /// Drops elements `from..to`.
    ///
    /// # Safety
    /// They are initialized and owned by the caller, who never touches them again.
    unsafe fn drop_range(&self, from: usize, to: usize) {
        if !std::mem::needs_drop::<T>() {
            // Nothing to do, and the memory may be the output's by now (lent).
            return;
        }
        // SAFETY: per the contract, in bounds and owned.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.ptr.add(from),
                to - from,
            ))
        };
    }
}

impl<T> Drop for VecStore<T> {
    fn drop(&mut self) {
        if self.lent {
            return;
        }
        // SAFETY: the buffer came from a `Vec` of capacity `cap`; every element has been
        // dropped or moved out by its owner, so it is freed as an empty vector.
        drop(unsafe { Vec::from_raw_parts(self.ptr, 0, self.cap) });
    }
}

/// The inputs of a chunk of a vector: owns elements `next..end` of the store.
struct VecReader<T> {
    store: Arc<VecStore<T>>,
    next: usize,
    end: usize,
}

impl<T: Clone + Send> ChunkReader<T> for VecReader<T> {
    fn remaining(&self) -> usize {
        self.end - self.next
    }

    fn read(&mut self, n: usize, out: &mut Vec<T>) {
        let n = n.min(self.remaining());
        out.reserve(n);
        // SAFETY: `next..next + n` is owned by this reader and initialized; it is copied once
        // into `out`'s spare room, and ownership moves with it (`next` goes past it).
        unsafe {
            let len = out.len();
            std::ptr::copy_nonoverlapping(
                self.store.ptr.add(self.next),
                out.as_mut_ptr().add(len),
                n,
            );
            out.set_len(len + n);
        }
        self.next += n;
    }

    fn to_vec(&self) -> Vec<T> {
        self.owned().to_vec()
    }

    fn in_memory(&self) -> Option<&[T]> {
        Some(self.owned())
    }
}

impl<T> VecReader<T> {
    /// The elements this reader owns and has not read yet.
    fn owned(&self) -> &[T] {
        // SAFETY: `next..end` is initialized and owned by this reader, which `&self` borrows.
        unsafe { std::slice::from_raw_parts(self.store.ptr.add(self.next), self.end - self.next) }
    }
}

impl<T> Drop for VecReader<T> {
    fn drop(&mut self) {
        // SAFETY: `next..end` is still owned by this reader and dropped once, here.
        unsafe { self.store.drop_range(self.next, self.end) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn read_all<T>(r: &mut dyn ChunkReader<T>) -> Vec<T> {
        let mut v = Vec::new();
        while r.remaining() > 0 {
            r.read(1000, &mut v);
        }
        v
    }

    #[test]
    fn ranges_of_every_kind_are_recognized() {
        let mut s = split(3..10u64).expect("a range");
        assert_eq!(s.len(), 7);
        assert_eq!(read_all(&mut *s.split(0, 4)), vec![3, 4, 5, 6]);
        assert_eq!(read_all(&mut *s.split(4, 3)), vec![7, 8, 9]);
        let mut s = split(-2..=2i8).expect("an inclusive range");
        assert_eq!(read_all(&mut *s.split(0, 5)), vec![-2, -1, 0, 1, 2]);
        let mut s = split(250..=255u8).expect("up to the end of the type");
        assert_eq!(
            read_all(&mut *s.split(0, 6)),
            vec![250, 251, 252, 253, 254, 255]
        );
        let s = split(0..=u64::MAX).expect("longer than a usize can count");
        assert_eq!(s.len(), usize::MAX);
        #[allow(clippy::reversed_empty_ranges)]
        let (empty, inclusive_empty) = (5..1i32, 5..=1u32);
        assert_eq!(split(empty).expect("empty").len(), 0);
        assert_eq!(split(inclusive_empty).expect("empty").len(), 0);
    }

    #[test]
    fn other_iterators_come_back_unchanged() {
        let v = [1u64, 2, 3];
        let it = split(v.iter().copied()).err().expect("not splittable");
        assert_eq!(it.collect::<Vec<_>>(), v);
        let it = split((0..5u64).map(|x| x * 2))
            .err()
            .expect("not splittable");
        assert_eq!(it.count(), 5);
        let mut partly = vec![1, 2, 3].into_iter();
        partly.next();
        // A vector iterator already advanced is still a vector iterator: its rest is split.
        let mut s = split(partly).expect("a vector");
        assert_eq!(read_all(&mut *s.split(0, 2)), vec![2, 3]);
    }

    #[test]
    fn reads_span_many_batches() {
        let mut s = split(0..100_000usize).expect("a range");
        let got = read_all(&mut *s.split(10, 99_990));
        assert!(got.iter().copied().eq(10..100_000));
    }

    /// Counts live values, to check that every element is dropped exactly once.
    #[derive(Debug)]
    struct Live(Arc<AtomicUsize>);

    impl Clone for Live {
        fn clone(&self) -> Self {
            Live::new(&self.0)
        }
    }

    impl Live {
        fn new(n: &Arc<AtomicUsize>) -> Self {
            n.fetch_add(1, Ordering::SeqCst);
            Live(n.clone())
        }
    }

    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn vector_elements_are_dropped_once_however_far_they_got() {
        let n = Arc::new(AtomicUsize::new(0));
        let v: Vec<Live> = (0..10).map(|_| Live::new(&n)).collect();
        let mut s = split(v.into_iter()).expect("a vector");
        let mut a = s.split(0, 4);
        let b = s.split(4, 3);
        // Chunk a: two read and dropped, two left in the reader.
        let mut buf = Vec::new();
        a.read(2, &mut buf);
        let copies = a.to_vec();
        assert_eq!(copies.len(), 2);
        drop(buf);
        assert_eq!(n.load(Ordering::SeqCst), 8 + 2);
        // The splittable (3 never handed out) goes first, the buffer lives on with `a` and `b`.
        drop(s);
        assert_eq!(n.load(Ordering::SeqCst), 5 + 2);
        drop(a);
        drop(b);
        assert_eq!(n.load(Ordering::SeqCst), 2, "only the copies are left");
        drop(copies);
        assert_eq!(n.load(Ordering::SeqCst), 0);
    }

    /// `map(f, vec)` with `f: T -> T` over plain values gives back the input's own memory,
    /// written over (no fresh output pages to zero); inputs with drop glue, or results of
    /// another type, get a fresh vector. Under Valgrind (`scripts/verify.sh`), with a call
    /// that fails halfway: the memory is freed once, by the output.
    #[test]
    fn an_owned_vector_of_plain_values_takes_its_results_in_place() {
        let mut pool = crate::ThreadPool::new(2).unwrap();
        for n in [1usize, 5_000, 100_003] {
            let v: Vec<u64> = (0..n as u64).collect();
            let at = v.as_ptr();
            let out = pool.map(|x: u64| x * 3, v).unwrap();
            assert_eq!(out.as_ptr(), at, "{n} inputs: the same memory");
            assert!(out.iter().enumerate().all(|(i, &x)| x == 3 * i as u64));
            // Another result type: a vector of its own.
            let v: Vec<u64> = (0..n as u64).collect();
            let out = pool.map(|x: u64| x as u32, v).unwrap();
            assert_eq!(out.len(), n);
            assert!(out.iter().enumerate().all(|(i, &x)| x == i as u32));
        }
        let words: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let at = words.as_ptr();
        let out = pool.map(|w: String| w + "!", words).unwrap();
        assert_ne!(out.as_ptr(), at, "strings have drop glue: not in place");
        assert_eq!(out[999], "999!");
        let v: Vec<u64> = (0..100_000).collect();
        let failed = pool.map(|x: u64| if x == 70_000 { panic!("no") } else { x }, v);
        assert!(failed.is_err());
        assert_eq!(pool.map(|x: u64| x, vec![4u64, 5]).unwrap(), vec![4, 5]);
    }

    /// A thread abandoned after a timeout keeps reading its inputs and writing its results in
    /// the memory the call's output took over: that memory lives until it lets go (Valgrind
    /// sees any write after the free).
    #[test]
    fn an_abandoned_thread_writes_in_place_into_memory_that_is_still_there() {
        let mut pool = crate::ThreadPool::new(1).unwrap();
        let slow = |x: u64| {
            if x == 0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            x + 1
        };
        let opts = crate::MapOptions::default()
            .chunk_size(20_000)
            .task_timeout(Duration::from_millis(50));
        let v: Vec<u64> = (0..20_000).collect();
        assert!(
            pool.map_with(slow, v, opts).is_err(),
            "the first task times out"
        );
        assert_eq!(pool.map(|x: u64| x, 0..3u64).unwrap(), vec![0, 1, 2]);
        // The abandoned thread finishes its chunk meanwhile.
        std::thread::sleep(Duration::from_millis(600));
        drop(pool);
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn vector_chunks_are_handed_out_in_order() {
        let mut s = split(vec![1, 2, 3].into_iter()).expect("a vector");
        let _b = s.split(1, 2);
    }
}
