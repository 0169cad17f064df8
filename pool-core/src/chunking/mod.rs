//! Splitting inputs into chunks, as MPIRE does: `n_splits` chunks of (possibly fractional)
//! `len / n_splits` tasks, or a fixed `chunk_size`. Chunks fall on a grid; a call may cut
//! several chunks of the grid as one (a run), or cut one short in its tail: the call's
//! `Policy` (in `policy`) says which.
//!
//! With a fractional size `c`, chunk `k` ends at `ceil((k + 1) · c)`, so ten tasks in three
//! splits become chunks of 4, 3 and 3.

mod policy;

pub(crate) use policy::{MICRO_CHUNK, Pace, Policy, RUN_DEPTH};
#[cfg(test)]
pub(crate) use policy::{PIPELINE_DEPTH, RUN_CHUNKS};

use std::ptr::NonNull;

use crate::indexed::{ChunkReader, Splittable};

/// How to chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChunkSpec {
    /// This many tasks per chunk (may be fractional, at least 1).
    Size(f64),
    /// This many chunks of `len` tasks.
    Splits {
        /// Number of chunks.
        n_splits: usize,
        /// Number of tasks.
        len: usize,
    },
}

impl ChunkSpec {
    /// Tasks per chunk, at least 1.
    pub fn size(self) -> f64 {
        match self {
            ChunkSpec::Size(s) => s.max(1.0),
            ChunkSpec::Splits { n_splits, len } => (len as f64 / n_splits.max(1) as f64).max(1.0),
        }
    }
}

/// The end (exclusive) of chunk `k` for chunks of `size`.
#[inline]
fn chunk_end(k: u64, size: f64) -> u64 {
    if size.fract() == 0.0 {
        (k + 1) * size as u64
    } else {
        ((k + 1) as f64 * size).ceil() as u64
    }
}

/// Where chunk boundaries fall: the running count of tasks cut so far and the next cut. The
/// cuts fall on a grid of `size` from `origin`; a chunk cut short by a cap moves the grid to
/// its end, so the chunks after it are not longer to catch up.
#[derive(Debug, Clone, Copy)]
struct Cuts {
    size: f64,
    k: u64,
    origin: u64,
    next_index: u64,
    limit: Option<u64>,
}

impl Cuts {
    fn new(spec: ChunkSpec, limit: Option<u64>) -> Self {
        Cuts {
            size: spec.size(),
            k: 0,
            origin: 0,
            next_index: 0,
            limit,
        }
    }

    /// How many tasks the next `run` chunks on the grid have together (before any cap).
    fn grid_len(&self, run: u64) -> u64 {
        let end = self.origin + chunk_end(self.k + run.max(1) - 1, self.size);
        let end = self.limit.map_or(end, |l| end.min(l));
        end.saturating_sub(self.next_index)
    }

    /// How many tasks the next `run` chunks cut as one will have at most, with at most `cap`
    /// (at least 1).
    fn next_len(&self, cap: u64, run: u64) -> u64 {
        self.grid_len(run).min(cap.max(1))
    }

    /// Records `run` chunks cut as one, of `len` tasks; returns the index of its first task.
    fn advance(&mut self, len: u64, run: u64) -> u64 {
        let first = self.next_index;
        let short = len < self.grid_len(run);
        self.next_index += len;
        self.k += run.max(1);
        if short {
            (self.origin, self.k) = (self.next_index, 0);
        }
        first
    }
}

/// An iterator of chunks `(index of the first task, tasks)` over any iterator, lazily.
#[derive(Debug)]
pub struct Chunks<I> {
    inner: I,
    cuts: Cuts,
}

impl<I: Iterator> Chunks<I> {
    /// Chunks `inner` in chunks of `spec`; at most `limit` tasks are taken when given.
    pub fn new(inner: I, spec: ChunkSpec, limit: Option<u64>) -> Self {
        Chunks {
            inner,
            cuts: Cuts::new(spec, limit),
        }
    }

    /// Tasks taken so far.
    pub fn taken(&self) -> u64 {
        self.cuts.next_index
    }

    /// How many tasks the next chunk will have at most.
    pub fn next_len(&self) -> u64 {
        self.cuts.next_len(u64::MAX, 1)
    }

    /// The next `run` chunks as one, of at most `cap` tasks.
    fn next_capped(&mut self, cap: u64, run: u64) -> Option<(u64, Vec<I::Item>)> {
        let want = self.cuts.next_len(cap, run) as usize;
        if want == 0 {
            return None;
        }
        let chunk: Vec<I::Item> = self.inner.by_ref().take(want).collect();
        if chunk.is_empty() {
            return None;
        }
        Some((self.cuts.advance(chunk.len() as u64, run), chunk))
    }
}

impl<I: Iterator> Iterator for Chunks<I> {
    type Item = (u64, Vec<I::Item>);

    fn next(&mut self) -> Option<Self::Item> {
        self.next_capped(u64::MAX, 1)
    }
}

/// The tasks of one chunk: taken from the input by the caller, or left for the worker to read
/// (see [`crate::indexed`]).
pub(crate) enum ChunkInputs<T> {
    /// Inputs in hand.
    Vec(Vec<T>),
    /// Inputs the worker reads itself.
    Reader(Box<dyn ChunkReader<T>>),
}

impl<T: Clone> ChunkInputs<T> {
    /// Number of tasks.
    pub(crate) fn len(&self) -> usize {
        match self {
            ChunkInputs::Vec(v) => v.len(),
            ChunkInputs::Reader(r) => r.remaining(),
        }
    }

    /// A copy to keep while the chunk is in a worker's hand: a second reader when the inputs
    /// can be read again (ranges), else copies of them.
    pub(crate) fn copy(&self) -> Self {
        match self {
            ChunkInputs::Vec(v) => ChunkInputs::Vec(v.clone()),
            ChunkInputs::Reader(r) => match r.reopen() {
                Some(again) => ChunkInputs::Reader(again),
                None => ChunkInputs::Vec(r.to_vec()),
            },
        }
    }

    /// The inputs in hand.
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            ChunkInputs::Vec(v) => v,
            ChunkInputs::Reader(mut r) => {
                let mut v = Vec::new();
                r.read(r.remaining(), &mut v);
                v
            }
        }
    }
}

/// A source of chunks whose input type is erased: one virtual call per chunk rather than
/// one per task, so pulling a chunk out of a range or a vector stays a tight loop. `cap`: the
/// most tasks the chunk may have ([`Policy::tail_cap`]; `u64::MAX` for none). `run`: how many
/// chunks of the grid are cut as one ([`Policy::run`]; 1 for a chunk alone).
pub(crate) trait ChunkSource<T> {
    /// See [`Chunks::next_len`].
    fn next_len(&self, cap: u64, run: u64) -> u64;
    /// The next chunk: `(index of its first task, tasks)`.
    fn next_chunk(&mut self, cap: u64, run: u64) -> Option<(u64, ChunkInputs<T>)>;
    /// See [`Chunks::taken`].
    fn taken(&self) -> u64;
    /// See [`crate::indexed::Splittable::lend_allocation`].
    fn lend_allocation(&mut self, _min: usize) -> Option<(NonNull<T>, usize)> {
        None
    }
}

impl<I: Iterator> ChunkSource<I::Item> for Chunks<I> {
    fn next_len(&self, cap: u64, run: u64) -> u64 {
        self.cuts.next_len(cap, run)
    }

    fn next_chunk(&mut self, cap: u64, run: u64) -> Option<(u64, ChunkInputs<I::Item>)> {
        self.next_capped(cap, run)
            .map(|(first, v)| (first, ChunkInputs::Vec(v)))
    }

    fn taken(&self) -> u64 {
        Chunks::taken(self)
    }
}

/// Chunks of inputs that workers read themselves: each is a range of indices.
pub(crate) struct SplitChunks<T> {
    inputs: Box<dyn Splittable<T>>,
    cuts: Cuts,
}

impl<T> SplitChunks<T> {
    /// Chunks `inputs` as [`Chunks::new`] does.
    pub(crate) fn new(inputs: Box<dyn Splittable<T>>, spec: ChunkSpec, limit: Option<u64>) -> Self {
        let len = inputs.len() as u64;
        SplitChunks {
            inputs,
            cuts: Cuts::new(spec, Some(limit.map_or(len, |l| l.min(len)))),
        }
    }
}

impl<T> ChunkSource<T> for SplitChunks<T> {
    fn next_len(&self, cap: u64, run: u64) -> u64 {
        self.cuts.next_len(cap, run)
    }

    fn next_chunk(&mut self, cap: u64, run: u64) -> Option<(u64, ChunkInputs<T>)> {
        let len = self.cuts.next_len(cap, run);
        if len == 0 {
            return None;
        }
        let first = self.cuts.advance(len, run);
        let reader = self.inputs.split(first as usize, len as usize);
        Some((first, ChunkInputs::Reader(reader)))
    }

    fn taken(&self) -> u64 {
        self.cuts.next_index
    }

    fn lend_allocation(&mut self, min: usize) -> Option<(NonNull<T>, usize)> {
        self.inputs.lend_allocation(min)
    }
}

/// Chunks any iterable, as MPIRE's `chunk_tasks`.
///
/// ```
/// use pool_core::chunking::{chunk_tasks, ChunkSpec};
///
/// let c: Vec<Vec<u32>> = chunk_tasks(0..10, ChunkSpec::Splits { n_splits: 3, len: 10 }).collect();
/// assert_eq!(c, vec![vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
/// let c: Vec<usize> = chunk_tasks(0..10, ChunkSpec::Size(2.5)).map(|c| c.len()).collect();
/// assert_eq!(c, vec![3, 2, 3, 2]);
/// ```
pub fn chunk_tasks<I: IntoIterator>(
    inputs: I,
    spec: ChunkSpec,
) -> impl Iterator<Item = Vec<I::Item>> {
    Chunks::new(inputs.into_iter(), spec, None).map(|(_, c)| c)
}

/// Chunks a slice without copying it.
///
/// ```
/// use pool_core::chunking::{chunk_slice, ChunkSpec};
///
/// let data = [0u8; 10];
/// let sizes: Vec<usize> = chunk_slice(&data, ChunkSpec::Splits { n_splits: 6, len: 10 })
///     .map(<[u8]>::len)
///     .collect();
/// assert_eq!(sizes, vec![2, 2, 1, 2, 2, 1]);
/// ```
pub fn chunk_slice<T>(data: &[T], spec: ChunkSpec) -> impl Iterator<Item = &[T]> {
    let size = spec.size();
    let len = data.len() as u64;
    let mut start = 0u64;
    let mut k = 0u64;
    std::iter::from_fn(move || {
        if start >= len {
            return None;
        }
        let end = chunk_end(k, size).min(len);
        k += 1;
        let s = &data[start as usize..end as usize];
        start = end;
        Some(s)
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_cut_on_the_grid() {
        // Chunks of 2.5 end at 3, 5, 8, 10, 13, 15: a run of two is 0..5, then 5..8 alone,
        // then 8..13.
        let mut c = Chunks::new(0..20u32, ChunkSpec::Size(2.5), None);
        let cuts: Vec<(u64, usize)> = [2, 1, 2]
            .into_iter()
            .map(|run| {
                let (first, v) = c.next_capped(u64::MAX, run).unwrap();
                (first, v.len())
            })
            .collect();
        assert_eq!(cuts, vec![(0, 5), (5, 3), (8, 5)]);
    }

    #[test]
    fn a_capped_chunk_moves_the_grid() {
        let mut c = Chunks::new(0..20u32, ChunkSpec::Size(2.5), None);
        let lens: Vec<usize> = [u64::MAX, 1, u64::MAX, u64::MAX]
            .into_iter()
            .map(|cap| c.next_capped(cap, 1).unwrap().1.len())
            .collect();
        // 3, then 1 (capped), then the grid of 2.5 starts again at task 4: 3, 2.
        assert_eq!(lens, vec![3, 1, 3, 2]);
    }
}
