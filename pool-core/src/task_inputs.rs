//! A chunk's inputs as a worker consumes them: a buffer and a cursor.
//!
//! Why: the task loop reads inputs through a raw pointer into this buffer, counting in a
//! register, and moves the cursor once per run of tasks instead of once per task (see
//! `task_loop`). An input moved out to its task stays readable in the buffer when its type
//! has no drop glue, so a failing task can be named without keeping a copy of every argument.

use std::mem::needs_drop;

use crate::chunking::ChunkInputs;
use crate::indexed::ChunkReader;

/// The inputs of one chunk, in hand or read a batch at a time from a [`ChunkReader`].
pub(crate) struct TaskInputs<T> {
    buf: Vec<T>,
    /// Elements `pos..` of `buf` are owned; those before were moved out to their tasks.
    pos: usize,
    reader: Option<Box<dyn ChunkReader<T>>>,
    batch: usize,
}

impl<T> TaskInputs<T> {
    /// A chunk's inputs: in hand, or read from its reader as they are needed.
    pub(crate) fn new(inputs: ChunkInputs<T>) -> Self {
        match inputs {
            ChunkInputs::Vec(buf) => TaskInputs {
                buf,
                pos: 0,
                reader: None,
                batch: 0,
            },
            ChunkInputs::Reader(reader) => {
                // About 16 KiB at a time: a batch stays in the first-level cache.
                let batch = (16 * 1024 / size_of::<T>().max(1)).clamp(1, 4096);
                TaskInputs {
                    buf: Vec::with_capacity(batch.min(reader.remaining())),
                    pos: 0,
                    reader: Some(reader),
                    batch,
                }
            }
        }
    }

    /// Inputs not consumed yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos + self.reader.as_ref().map_or(0, |r| r.remaining())
    }

    /// The inputs at hand, reading more when none is: where the first is and how many there
    /// are (0 at the end). They stay owned here until [`TaskInputs::consumed`] says otherwise.
    #[inline]
    pub(crate) fn window(&mut self) -> (*const T, usize) {
        if self.pos == self.buf.len() {
            self.refill();
        }
        // SAFETY: `pos <= len`: at most one past the end of the initialized elements.
        (
            unsafe { self.buf.as_ptr().add(self.pos) },
            self.buf.len() - self.pos,
        )
    }

    #[inline(never)]
    fn refill(&mut self) {
        let Some(reader) = self.reader.as_deref_mut() else {
            return;
        };
        // SAFETY: every element was moved out (`pos == len`): forgetting them drops nothing.
        unsafe { self.buf.set_len(0) };
        self.pos = 0;
        reader.read(self.batch, &mut self.buf);
    }

    /// Marks the first `n` inputs of the window as moved out.
    ///
    /// # Safety
    /// They were read out of the window (each once) and belong to their tasks now.
    #[inline]
    pub(crate) unsafe fn consumed(&mut self, n: usize) {
        debug_assert!(self.pos + n <= self.buf.len());
        self.pos += n;
    }

    /// Takes the reader away (the worker hands an in-process chunk's reader back to the
    /// caller that made it, so that the thread that allocated it frees it: glibc's per-thread
    /// cache stays balanced, issue #17).
    pub(crate) fn take_reader(&mut self) -> Option<Box<dyn ChunkReader<T>>> {
        self.reader.take()
    }

    /// The input moved out last, when its type lets it be read again: a type without drop
    /// glue owns no resource, so its bits left in the buffer are still a valid value.
    pub(crate) fn last(&self) -> Option<&T> {
        (!needs_drop::<T>() && self.pos > 0).then(|| &self.buf[self.pos - 1])
    }
}

impl<T> Drop for TaskInputs<T> {
    fn drop(&mut self) {
        let pos = self.pos;
        let len = self.buf.len();
        // SAFETY: `..pos` were moved out (not to be dropped again) and `pos..len` are owned:
        // they are moved to the front and the vector shortened to exactly them.
        unsafe {
            let p = self.buf.as_mut_ptr();
            std::ptr::copy(p.add(pos), p, len - pos);
            self.buf.set_len(len - pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves `n` inputs out of the window, as the task loop does.
    fn take<T>(inputs: &mut TaskInputs<T>, n: usize) -> Vec<T> {
        let mut out = Vec::new();
        while out.len() < n {
            let (p, k) = inputs.window();
            let k = k.min(n - out.len());
            if k == 0 {
                break;
            }
            // SAFETY: `k` inputs from the window, each read once, then marked consumed.
            unsafe {
                out.extend((0..k).map(|i| p.add(i).read()));
                inputs.consumed(k);
            }
        }
        out
    }

    #[test]
    fn inputs_in_hand_are_moved_out_once_and_the_rest_dropped() {
        let live = std::sync::Arc::new(());
        let three = vec![live.clone(), live.clone(), live.clone()];
        let mut inputs = TaskInputs::new(ChunkInputs::Vec(three));
        assert_eq!(inputs.remaining(), 3);
        let taken = take(&mut inputs, 1);
        assert!(inputs.last().is_none(), "an Arc has drop glue");
        assert_eq!(std::sync::Arc::strong_count(&live), 4);
        drop(inputs);
        assert_eq!(std::sync::Arc::strong_count(&live), 2, "the two not taken");
        drop(taken);
        assert_eq!(std::sync::Arc::strong_count(&live), 1);
    }

    #[test]
    fn a_reader_is_read_in_batches_and_the_last_input_stays_readable() {
        let mut s = crate::indexed::split(0..10_000u64).expect("a range");
        let mut inputs = TaskInputs::new(ChunkInputs::Reader(s.split(100, 9_900)));
        let got = take(&mut inputs, 5_000);
        assert!(got.iter().copied().eq(100..5_100));
        assert_eq!(inputs.last(), Some(&5_099));
        assert_eq!(inputs.remaining(), 4_900);
        let rest = take(&mut inputs, usize::MAX);
        assert!(rest.iter().copied().eq(5_100..10_000));
        assert_eq!(inputs.window().1, 0);
    }
}
