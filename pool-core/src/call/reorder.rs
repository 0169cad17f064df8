//! Results on their way out: in input order (ordered calls wait for the chunks before them),
//! or as they come.

use std::collections::{BTreeMap, VecDeque};

use crate::error::PoolError;

/// Results of a chunk: plain values when every task succeeded (the common case, moved in
/// whole), or one result per task.
pub(crate) enum Batch<R> {
    Values(std::vec::IntoIter<R>),
    Items(std::vec::IntoIter<Result<R, PoolError>>),
}

impl<R> Iterator for Batch<R> {
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Batch::Values(v) => v.next().map(Ok),
            Batch::Items(i) => i.next(),
        }
    }
}

/// Delivered chunks *reordered*: held until every task before them is out, then *yielded*
/// into `ready`.
pub(crate) struct Reorder<R> {
    ordered: bool,
    /// The first task whose result is not out yet (ordered calls).
    next_expected: u64,
    /// Delivered chunks waiting for their turn, by first task: `(len, results)`.
    waiting: BTreeMap<u64, (u64, Batch<R>)>,
    /// Results ready to hand out, in the order they go.
    pub(crate) ready: VecDeque<Batch<R>>,
}

impl<R> Reorder<R> {
    pub(crate) fn new(ordered: bool) -> Self {
        Reorder {
            ordered,
            next_expected: 0,
            waiting: BTreeMap::new(),
            ready: VecDeque::new(),
        }
    }

    /// The first task whose result is not out yet; every task before it is (ordered calls).
    pub(crate) fn next_expected(&self) -> u64 {
        self.next_expected
    }

    /// Takes the results of tasks `first..first + len`.
    pub(crate) fn put(&mut self, first: u64, len: u64, batch: Batch<R>) {
        if !self.ordered {
            self.ready.push_back(batch);
            return;
        }
        self.waiting.insert(first, (len, batch));
        while let Some((len, batch)) = self.waiting.remove(&self.next_expected) {
            self.next_expected += len;
            self.ready.push_back(batch);
        }
    }

    /// Drops everything held (the call failed).
    pub(crate) fn clear(&mut self) {
        self.waiting.clear();
        self.ready.clear();
    }
}
