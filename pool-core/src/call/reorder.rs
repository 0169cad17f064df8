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
        if first == self.next_expected && self.waiting.is_empty() {
            // Its turn already (every one-task chunk of a steady pipeline): straight out,
            // without a node of the waiting map built and freed for it.
            self.next_expected += len;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Puts one-task chunks in the order given; returns what came out, in the order it did.
    fn yielded(ordered: bool, arrivals: &[u64]) -> Vec<u64> {
        let mut r = Reorder::new(ordered);
        let mut out = Vec::new();
        for &first in arrivals {
            r.put(first, 1, Batch::Values(vec![first].into_iter()));
            while let Some(b) = r.ready.pop_front() {
                out.extend(b.map(Result::unwrap));
            }
        }
        out
    }

    #[test]
    fn ordered_results_come_out_in_input_order_whatever_the_order_they_arrive_in() {
        // In turn (each straight out), late (held, then released by the one before it), and
        // in turn again while later ones wait (it must release them too).
        for arrivals in [
            vec![0, 1, 2, 3, 4, 5],
            vec![1, 0, 2, 3, 5, 4],
            vec![0, 2, 3, 1, 4, 5],
            vec![5, 4, 3, 2, 1, 0],
        ] {
            assert_eq!(yielded(true, &arrivals), [0, 1, 2, 3, 4, 5], "{arrivals:?}");
        }
    }

    #[test]
    fn chunks_of_several_tasks_advance_the_turn_by_their_length() {
        let mut r = Reorder::new(true);
        r.put(3, 2, Batch::Values(vec![3, 4].into_iter()));
        r.put(0, 3, Batch::Values(vec![0, 1, 2].into_iter()));
        r.put(5, 1, Batch::Values(vec![5].into_iter()));
        assert_eq!(r.next_expected(), 6);
        let out: Vec<u64> = r.ready.drain(..).flatten().map(Result::unwrap).collect();
        assert_eq!(out, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn unordered_results_come_out_as_they_arrive() {
        assert_eq!(yielded(false, &[2, 0, 1]), [2, 0, 1]);
    }
}
