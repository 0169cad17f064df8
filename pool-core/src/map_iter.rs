//! The lazy result iterator of `imap` and `imap_unordered`.

use std::fmt;

use crate::call::Call;
use crate::error::PoolError;
use crate::job::{Input, Payload};

/// Results of a lazy map call, as they become available (in input order for `imap`).
///
/// The iterator borrows the pool mutably, so no other call can start until it is exhausted or
/// dropped: what MPIRE reports as a runtime error is a compile error here.
///
/// ```compile_fail
/// use pool_core::ThreadPool;
///
/// let mut pool = ThreadPool::new(2).unwrap();
/// let mut lazy = pool.imap(|x: u32| x, 0..10).unwrap();
/// let _ = lazy.next();
/// pool.map(|x: u32| x, 0..10).unwrap(); // error: `pool` is still borrowed by `lazy`
/// drop(lazy);
/// ```
///
/// Dropping it before the end stops the call: its workers are terminated and the remaining
/// tasks are not run.
#[must_use = "a lazy map does nothing until iterated"]
pub struct MapIter<'a, Sh, St, T, R> {
    pub(crate) call: Call<'a, Sh, St, T, R>,
}

impl<Sh, St, T: Input, R: Payload> Iterator for MapIter<'_, Sh, St, T, R> {
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.call.next_result()
    }
}

impl<Sh, St, T: Input, R: Payload> MapIter<'_, Sh, St, T, R> {
    /// All results in order, or the first error (used by the eager `map`s).
    pub(crate) fn collect_all(mut self) -> Result<Vec<R>, PoolError> {
        self.call.collect_all()
    }
}

impl<Sh, St, T, R> fmt::Debug for MapIter<'_, Sh, St, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapIter").finish_non_exhaustive()
    }
}

impl<Sh, St, T, R> Drop for MapIter<'_, Sh, St, T, R> {
    fn drop(&mut self) {
        self.call.abandon_if_running();
    }
}
