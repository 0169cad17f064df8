//! Borrowed slices read in place: `map(f, v.iter().copied())` (and `.cloned()`) of primitive
//! numbers, without the caller copying every chunk.
//!
//! Why: such an iterator borrows `v`, so the caller used to pull every input and write it into
//! a chunk, one thread copying for all the workers (2× rayon's time on 10M trivial tasks). The
//! slice is in memory already: a chunk is a range of it, and the worker copies its inputs itself,
//! a small batch at a time (as for ranges and vectors, see [`crate::indexed`]).
//!
//! The danger: a worker thread may outlive the call. A thread whose task timed out is abandoned,
//! not killed, and the call returns (the caller may then free `v`) while the thread still holds
//! the reader of its chunk. So readers hold a *lease* on the slice, and the protocol is:
//!
//! 1. Only eager calls (`map`, `map_unordered` and their `_with` / `_ctx` forms) read in place:
//!    their inputs are dropped before the call returns, on every path (result, error, unwind).
//!    A lazy call's handle (`imap`) could be leaked with `mem::forget` (safe code), and its
//!    inputs with it, so lazy calls copy chunks as before.
//! 2. A reader touches the slice only while *pinned*: it increments `pins`, then reads `revoked`;
//!    if set, it unpins and reads nothing (its chunk ends there: the call is over, nobody waits
//!    for its results). Otherwise it copies at most one batch of numbers (no user code runs while
//!    pinned: copying a primitive number is a load) and unpins.
//! 3. When the call's inputs are dropped ([`SliceInputs`]'s `Drop`, before the call returns),
//!    `revoked` is set, then the owner waits until `pins` is 0. The wait is bounded: a pin spans
//!    one batch copy (16 KiB), never a task.
//! 4. Why no read can follow the return: the increment of `pins` and the store of `revoked` are
//!    sequentially consistent, and so are the loads after them. Either a reader's increment comes
//!    first in that order, then the owner's load sees it (or the decrement after its copy,
//!    which releases the copy to the owner's load) and waits; or the owner's store comes first,
//!    and the reader's later load sees `revoked` and reads nothing.
//!
//! The iterators are kept with their lifetime stretched to `'static` (a type that says nothing
//! of when the slice dies); by 2–4 they are used only while the slice is alive.

use std::any::Any;
use std::iter::{Cloned, Copied};
use std::slice::Iter;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::indexed::{ChunkReader, Splittable};

/// The slice's lease, shared by the inputs and all their readers.
#[derive(Default)]
struct Lease {
    pins: AtomicUsize,
    revoked: AtomicBool,
}

impl Lease {
    /// Runs `read` pinned (step 2), or returns `None` if the lease is revoked.
    fn pinned<O>(&self, read: impl FnOnce() -> O) -> Option<O> {
        self.pins.fetch_add(1, Ordering::SeqCst);
        let out = (!self.revoked.load(Ordering::SeqCst)).then(read);
        self.pins.fetch_sub(1, Ordering::Release);
        out
    }

    /// Step 3: no read of the slice starts after this returns, and none is still running.
    fn revoke(&self) {
        self.revoked.store(true, Ordering::SeqCst);
        let mut spins = 0u32;
        while self.pins.load(Ordering::SeqCst) != 0 {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// A borrowed slice's iterator (its lifetime stretched: see the module's protocol) as
/// splittable inputs.
pub(crate) struct SliceInputs<It> {
    it: It,
    /// Inputs before `handed` belong to readers; `it` is at `handed`.
    handed: usize,
    lease: Arc<Lease>,
}

impl<It: ExactSizeIterator + Clone> SliceInputs<It> {
    fn new(it: It) -> Self {
        SliceInputs {
            it,
            handed: 0,
            lease: Arc::default(),
        }
    }
}

impl<It> Drop for SliceInputs<It> {
    fn drop(&mut self) {
        self.lease.revoke();
    }
}

impl<It> Splittable<It::Item> for SliceInputs<It>
where
    It: ExactSizeIterator + Clone + Send + 'static,
{
    fn len(&self) -> usize {
        self.handed + self.it.len()
    }

    fn split(&mut self, start: usize, len: usize) -> Box<dyn ChunkReader<It::Item>> {
        assert!(
            start == self.handed && len <= self.it.len(),
            "chunk {start}+{len} of a slice handed out of order (next is {}, {} left)",
            self.handed,
            self.it.len()
        );
        // `it` is at the chunk's start: the reader gets a copy of it, and `it` moves past the
        // chunk (on the caller's thread, during the call: the slice is alive).
        let reader = SliceReader {
            it: self.it.clone(),
            left: len,
            lease: self.lease.clone(),
        };
        if len > 0 {
            self.it.nth(len - 1);
        }
        self.handed += len;
        Box::new(reader)
    }
}

/// The inputs of one chunk of a borrowed slice.
struct SliceReader<It> {
    it: It,
    left: usize,
    lease: Arc<Lease>,
}

impl<It> ChunkReader<It::Item> for SliceReader<It>
where
    It: Iterator + Clone + Send + 'static,
{
    fn remaining(&self) -> usize {
        self.left
    }

    fn read(&mut self, n: usize, out: &mut Vec<It::Item>) {
        let n = n.min(self.left);
        let (it, lease) = (&mut self.it, &self.lease);
        match lease.pinned(|| out.extend(it.by_ref().take(n))) {
            Some(()) => self.left -= n,
            // The call is over (step 2): the chunk ends here.
            None => self.left = 0,
        }
    }

    fn to_vec(&self) -> Vec<It::Item> {
        let it = self.it.clone();
        let left = self.left;
        self.lease
            .pinned(|| it.take(left).collect())
            .unwrap_or_default()
    }

    fn reopen(&self) -> Option<Box<dyn ChunkReader<It::Item>>> {
        Some(Box::new(SliceReader {
            it: self.it.clone(),
            left: self.left,
            lease: self.lease.clone(),
        }))
    }
}

/// `iter` as splittable inputs read in place when it copies or clones the primitive numbers of
/// a borrowed slice, or back unchanged.
///
/// # Safety
/// The returned inputs are dropped before the slice's borrow ends, whatever happens (the
/// caller is an eager call: step 1 of the module's protocol).
pub(crate) unsafe fn split<I>(iter: I) -> Result<Box<dyn Splittable<I::Item>>, I>
where
    I: Iterator,
    I::Item: 'static,
{
    macro_rules! slices {
        ($iter:ident; $($x:ty),*) => {$(
            // SAFETY: the same type but for the borrow's lifetime, which the lease enforces.
            let $iter = match unsafe { stretch::<I, Copied<Iter<'static, $x>>>($iter) } {
                Ok(it) => return Ok(erase(SliceInputs::new(it))),
                Err(iter) => iter,
            };
            // SAFETY: as above.
            let $iter = match unsafe { stretch::<I, Cloned<Iter<'static, $x>>>($iter) } {
                Ok(it) => return Ok(erase(SliceInputs::new(it))),
                Err(iter) => iter,
            };
        )*};
    }
    slices!(iter; u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);
    Err(iter)
}

/// `a` as a `B` when they are the same type up to lifetimes, else `a` back.
///
/// # Safety
/// `B`'s lifetimes may be longer than `A`'s: the caller uses the value only while `A`'s
/// borrows are alive.
unsafe fn stretch<A, B>(a: A) -> Result<B, A> {
    if typeid::of::<A>() != typeid::of::<B>() {
        return Err(a);
    }
    let a = std::mem::ManuallyDrop::new(a);
    // SAFETY: the same type up to lifetimes (`typeid` erases them), so the same layout; `a`
    // is not used or dropped again; the caller keeps to the borrows' true lifetime.
    Ok(unsafe { std::ptr::read(&*a as *const A as *const B) })
}

/// Typed inputs of `X` as inputs of `T`, which the caller knows to be `X`.
fn erase<X: 'static, T: 'static>(s: impl Splittable<X> + 'static) -> Box<dyn Splittable<T>> {
    let boxed: Box<dyn Splittable<X>> = Box::new(s);
    let any: Box<dyn Any> = Box::new(boxed);
    *any.downcast::<Box<dyn Splittable<T>>>()
        .expect("the input type is the slice's item type")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;
    use crate::{MapOptions, ThreadPool};

    fn read_all<T>(r: &mut dyn ChunkReader<T>) -> Vec<T> {
        let mut v = Vec::new();
        while r.remaining() > 0 {
            r.read(3, &mut v);
        }
        v
    }

    #[test]
    fn copied_and_cloned_slices_of_numbers_are_read_in_place() {
        let v: Vec<u64> = (10..20).collect();
        // SAFETY: the inputs are dropped at the end of this block, before `v`.
        let mut s = unsafe { split(v.iter().copied()) }.expect("in place");
        assert_eq!(s.len(), 10);
        let mut a = s.split(0, 4);
        let mut b = s.split(4, 6);
        assert_eq!(
            read_all(&mut *b.reopen().unwrap()),
            (14..20).collect::<Vec<_>>()
        );
        assert_eq!(read_all(&mut *a), vec![10, 11, 12, 13]);
        assert_eq!(b.to_vec(), (14..20).collect::<Vec<_>>());
        assert_eq!(read_all(&mut *b), (14..20).collect::<Vec<_>>());
        let f = [1.5f32, -2.0];
        // SAFETY: as above.
        let mut s = unsafe { split(f.iter().cloned()) }.expect("in place");
        assert_eq!(read_all(&mut *s.split(0, 2)), f);
        // SAFETY: as above.
        let mut s = unsafe { split([0i8; 0].iter().copied()) }.expect("in place");
        assert_eq!(s.len(), 0);
        assert!(read_all(&mut *s.split(0, 0)).is_empty());
        let strings = ["a".to_string()];
        // SAFETY: nothing is split.
        let other = unsafe { split(strings.iter().cloned()) }
            .err()
            .expect("not numbers");
        assert_eq!(other.count(), 1);
    }

    #[test]
    fn a_revoked_slice_is_not_read() {
        let v: Vec<u32> = (1..=4).collect();
        // SAFETY: the inputs are dropped before `v`.
        let mut s = unsafe { split(v.iter().copied()) }.expect("in place");
        let mut r = s.split(0, 4);
        let mut got = Vec::new();
        r.read(1, &mut got);
        drop(s);
        r.read(3, &mut got);
        assert_eq!(got, vec![1], "nothing read after the inputs were dropped");
        assert_eq!(r.remaining(), 0, "the chunk ends");
        assert!(r.to_vec().is_empty());
    }

    #[test]
    fn an_eager_map_over_a_borrowed_slice_reads_it_in_place() {
        let mut pool = ThreadPool::new(2).unwrap();
        for n in [0usize, 1, 2, 5_000, 100_003] {
            let v: Vec<u64> = (0..n as u64).collect();
            let out = pool.map(|x: u64| x * 3, v.iter().copied()).unwrap();
            assert_eq!(
                out,
                v.iter().map(|x| x * 3).collect::<Vec<_>>(),
                "{n} inputs"
            );
            let out = pool.map_unordered(|x: u64| x, v.iter().cloned()).unwrap();
            assert_eq!(out.len(), n);
            let lazy: Vec<u64> = pool
                .imap(|x: u64| x + 1, v.iter().copied())
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(lazy, v.iter().map(|x| x + 1).collect::<Vec<_>>());
        }
    }

    /// Set when a task saw an input written after its call returned.
    static SAW_LATE_WRITE: AtomicBool = AtomicBool::new(false);

    #[test]
    fn an_abandoned_thread_never_reads_the_slice_after_its_call_returned() {
        let mut v = vec![7u64; 50_000];
        v[0] = 1;
        let mut pool = ThreadPool::new(1).unwrap();
        let slow = |x: u64| {
            if x == 1 {
                std::thread::sleep(Duration::from_millis(400));
            }
            if x == 99 {
                SAW_LATE_WRITE.store(true, Ordering::SeqCst);
            }
            x
        };
        let opts = MapOptions::default()
            .chunk_size(50_000)
            .task_timeout(Duration::from_millis(50));
        let timed_out = pool.map_with(slow, v.iter().copied(), opts);
        assert!(timed_out.is_err(), "the first task times out");
        // The borrow is over: the caller may write (or free) the slice. The abandoned thread
        // still runs its chunk when its task returns, in a slot that a new call restarted.
        v.fill(99);
        assert_eq!(pool.map(|x: u64| x, 0..3u64).unwrap(), vec![0, 1, 2]);
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            !SAW_LATE_WRITE.load(Ordering::SeqCst),
            "a worker read the slice after the call had returned"
        );
        drop(v);
    }
}
