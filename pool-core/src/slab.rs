//! The output of an in-process, ordered, eager `map`, written in place.
//!
//! Why: on the thread back end a chunk's results would otherwise be pushed into a fresh
//! vector by the worker and then copied, by the parent alone, into the final one: for trivial
//! tasks that serial copy (and the page faults of the output, all taken by one thread) costs
//! more than the tasks. Here the parent allocates the final buffer once and each worker writes
//! its chunk's results straight to their final place, as rayon's `collect` does.
//!
//! Each chunk gets a [`SlabWriter`] over its own disjoint range. A writer records how many
//! elements it initialized when it is dropped, so the slab knows exactly what to drop if the
//! call fails halfway; the buffer lives as long as the last writer (a thread abandoned after a
//! timeout may still hold one), so no write can outlive it.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// The final buffer of a call, shared with the writers of its chunks.
pub(crate) struct Slab<R> {
    ptr: *mut R,
    cap: usize,
    /// `(first index, count)` of every run of initialized elements, one per finished writer.
    written: Mutex<Vec<(usize, usize)>>,
}

// SAFETY: the slab owns `R`s (moved in by writers, possibly on other threads) and hands out
// writers over disjoint ranges only; all shared bookkeeping is behind the mutex.
unsafe impl<R: Send> Send for Slab<R> {}
// SAFETY: as above: `&Slab` only gives access to the mutex and to `writer`, whose ranges never
// overlap (checked there).
unsafe impl<R: Send> Sync for Slab<R> {}

impl<R> Slab<R> {
    /// A slab with room for `cap` results.
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        let mut v = ManuallyDrop::new(Vec::<R>::with_capacity(cap));
        crate::huge_pages::advise(v.as_mut_ptr().cast(), v.capacity() * size_of::<R>());
        Arc::new(Slab {
            ptr: v.as_mut_ptr(),
            cap: v.capacity(),
            written: Mutex::new(Vec::new()),
        })
    }

    /// A slab over memory that was another vector's: the inputs of an in-place map, whose
    /// results are written over them (see [`crate::indexed::Splittable::lend_allocation`]).
    ///
    /// # Safety
    /// `ptr` and `cap` are the buffer and capacity of a `Vec<R>`'s allocation, which the slab
    /// owns from here on (it frees it, or hands it on in [`Slab::into_vec`]), with no element
    /// it must drop; whatever else reads that memory reads each range before its writer
    /// writes there.
    pub(crate) unsafe fn adopt(ptr: NonNull<R>, cap: usize) -> Arc<Self> {
        Arc::new(Slab {
            ptr: ptr.as_ptr(),
            cap,
            written: Mutex::new(Vec::new()),
        })
    }

    /// A writer for the results of tasks `first..first + len`. The caller gives each range
    /// to one writer only.
    pub(crate) fn writer(self: &Arc<Self>, first: usize, len: usize) -> SlabWriter<R> {
        assert!(
            first.checked_add(len).is_some_and(|end| end <= self.cap),
            "chunk {first}+{len} outside the output of {} results",
            self.cap
        );
        SlabWriter {
            slab: self.clone(),
            start: first,
            next: first,
            end: first + len,
        }
    }

    /// How many results fit.
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// The first `len` results as a vector, once every writer is gone and exactly
    /// `0..len` was written; the slab back otherwise.
    pub(crate) fn into_vec(this: Arc<Self>, len: usize) -> Result<Vec<R>, Arc<Self>> {
        let mut slab = Arc::try_unwrap(this)?;
        let complete = {
            let runs = slab.written.get_mut().unwrap_or_else(|e| e.into_inner());
            runs.sort_unstable();
            let mut end = 0;
            runs.iter().all(|&(first, n)| {
                let contiguous = first == end;
                end += n;
                contiguous
            }) && end == len
        };
        if !complete {
            return Err(Arc::new(slab));
        }
        // `ManuallyDrop` skips every field's drop: free the bookkeeping first.
        drop(std::mem::take(
            slab.written.get_mut().unwrap_or_else(|e| e.into_inner()),
        ));
        let slab = ManuallyDrop::new(slab);
        // SAFETY: `ptr`/`cap` come from a `Vec<R>` whose first `len` elements are now
        // initialized (the runs cover `0..len` exactly); `ManuallyDrop` keeps `Drop` from
        // freeing them again.
        Ok(unsafe { Vec::from_raw_parts(slab.ptr, len, slab.cap) })
    }
}

impl<R> Drop for Slab<R> {
    fn drop(&mut self) {
        let runs = std::mem::take(self.written.get_mut().unwrap_or_else(|e| e.into_inner()));
        for (first, n) in runs {
            // SAFETY: each run was initialized by its writer and is dropped once here.
            unsafe {
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.ptr.add(first), n));
            }
        }
        // SAFETY: frees the allocation of the original `Vec<R>` without touching elements.
        drop(unsafe { Vec::from_raw_parts(self.ptr, 0, self.cap) });
    }
}

/// Writes one chunk's results, in task order, into their final place.
pub(crate) struct SlabWriter<R> {
    slab: Arc<Slab<R>>,
    start: usize,
    next: usize,
    end: usize,
}

impl<R> SlabWriter<R> {
    /// Writes the next result.
    #[inline]
    pub(crate) fn push(&mut self, r: R) {
        assert!(self.next < self.end, "more results than tasks in the chunk");
        // SAFETY: `next` is inside this writer's range (checked against the slab's capacity
        // when the writer was made), which no other writer touches, and not yet initialized.
        unsafe { self.slab.ptr.add(self.next).write(r) };
        self.next += 1;
    }

    /// Results written so far.
    pub(crate) fn written(&self) -> usize {
        self.next - self.start
    }

    /// Results that still fit.
    pub(crate) fn room(&self) -> usize {
        self.end - self.next
    }

    /// Where the next result goes; up to [`SlabWriter::room`] results may be written from
    /// there on, then counted with [`SlabWriter::commit`].
    #[inline]
    pub(crate) fn next_slot(&mut self) -> *mut R {
        // SAFETY: `next <= end <= cap`: at most one past the writer's range.
        unsafe { self.slab.ptr.add(self.next) }
    }

    /// Counts `n` more results as written.
    ///
    /// # Safety
    /// The `n` slots from [`SlabWriter::next_slot`] were initialized, and `n <= room()`.
    #[inline]
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.room());
        self.next += n;
    }

    /// Writes the values whose in-memory bytes are `bytes`, at once.
    ///
    /// # Safety
    /// Any bytes must be a valid `R` (a primitive number), and `bytes` must hold a whole
    /// number of values, at most [`SlabWriter::room`].
    pub(crate) unsafe fn push_bytes(&mut self, bytes: &[u8]) {
        let n = bytes.len() / size_of::<R>();
        assert!(n <= self.room() && n * size_of::<R>() == bytes.len());
        // SAFETY: the range `next..next + n` is this writer's and uninitialized (checked
        // above); the caller vouches that the bytes are valid values.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.slab.ptr.add(self.next).cast::<u8>(),
                bytes.len(),
            );
        }
        self.next += n;
    }
}

impl<R> Drop for SlabWriter<R> {
    fn drop(&mut self) {
        let n = self.written();
        if n > 0 {
            self.slab
                .written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((self.start, n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_written_out_of_order_make_one_vector() {
        let slab = Slab::<String>::new(5);
        let mut b = slab.writer(2, 3);
        let mut a = slab.writer(0, 2);
        for s in ["c", "d", "e"] {
            b.push(s.to_string());
        }
        a.push("a".into());
        a.push("b".into());
        drop((a, b));
        let v = Slab::into_vec(slab, 5).ok().unwrap();
        assert_eq!(v, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn a_partial_slab_drops_exactly_what_was_written() {
        let live = Arc::new(());
        let slab = Slab::<Arc<()>>::new(4);
        let mut w = slab.writer(0, 4);
        w.push(live.clone());
        w.push(live.clone());
        assert!(
            Slab::into_vec(slab.clone(), 4).is_err(),
            "a writer still holds it"
        );
        drop(w);
        assert_eq!(Arc::strong_count(&live), 3);
        let slab = Slab::into_vec(slab, 4).expect_err("only 2 of 4 written");
        drop(slab);
        assert_eq!(Arc::strong_count(&live), 1);
    }

    #[test]
    fn a_big_output_advised_to_huge_pages_is_written_and_read_whole() {
        // 24 MiB: past the threshold, and rarely 2 MiB-aligned, so its edges stay small pages.
        let n = 3 << 20;
        let slab = Slab::<u64>::new(n + 3);
        let mut a = slab.writer(0, n / 2);
        let mut b = slab.writer(n / 2, n - n / 2);
        for i in 0..n / 2 {
            a.push(i as u64);
        }
        for i in n / 2..n {
            b.push(i as u64);
        }
        drop((a, b));
        let v = Slab::into_vec(slab, n).ok().expect("complete");
        assert_eq!(v.len(), n);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
    }

    #[test]
    #[should_panic(expected = "outside the output")]
    fn a_writer_past_the_end_is_refused() {
        let slab = Slab::<u8>::new(4);
        let _ = slab.writer(3, 2);
    }
}
