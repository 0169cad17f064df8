//! The calls a worker remembers, and its parent's record of them: the same set on both ends,
//! and a bounded one.
//!
//! Why: every `apply_async` task is a call of its own. A worker that kept the job of every
//! call it ever ran, and a parent that kept every call each worker knew, grew by ~200 bytes a
//! task for as long as the pool lived (11 MiB over 60,000 tasks). Both ends now forget old
//! calls, by one rule applied to one sequence, so they never disagree about what the worker
//! can resolve without a rebuild:
//!
//! 1. Both start from the same set: the calls whose jobs a forked worker inherited (the
//!    parent builds its record from the same map), or none.
//! 2. Both note each chunk's call in the order the chunks travel (the parent when it encodes
//!    one, the worker when it resolves one; a link delivers in order). A call not in the set is
//!    added.
//! 3. A call newer than any seen before is the *newest*. Then, when the set holds more than
//!    twice [`KEPT`] calls, both drop every call older than `newest - KEPT`. Calls run one after
//!    the other, so a call that old is over (the back end's own table of jobs for workers it
//!    starts keeps the same span); and if one ever came again, the parent, not knowing it,
//!    would send its rebuild id, which is what a worker that does not know it needs.

use std::collections::HashMap;

/// How many of the newest calls stay remembered at least.
pub const KEPT: u64 = 64;

/// Calls remembered, each with what this end keeps for it (the worker: the job; the parent:
/// nothing).
#[derive(Debug)]
pub struct RecentCalls<V> {
    calls: HashMap<u64, V>,
    newest: u64,
}

impl<V> Default for RecentCalls<V> {
    fn default() -> Self {
        Self::new(HashMap::new())
    }
}

impl<V> RecentCalls<V> {
    /// Starts from `calls` (step 1).
    pub fn new(calls: HashMap<u64, V>) -> Self {
        let newest = calls.keys().copied().max().unwrap_or(0);
        RecentCalls { calls, newest }
    }

    /// What is kept for `call`, if it is remembered.
    pub fn get(&self, call: u64) -> Option<&V> {
        self.calls.get(&call)
    }

    /// Whether `call` is remembered.
    pub fn contains(&self, call: u64) -> bool {
        self.calls.contains_key(&call)
    }

    /// How many calls are remembered.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Notes a chunk of `call`, remembering `value()` for it if it is new (step 2), then forgets
    /// old calls (step 3). Returns what is kept for `call`; `None`, noting nothing, when it is
    /// new and `value()` has nothing (the worker's end then stops: a protocol bug).
    pub fn note(&mut self, call: u64, value: impl FnOnce() -> Option<V>) -> Option<&V> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.calls.entry(call) {
            e.insert(value()?);
        }
        if call > self.newest {
            self.newest = call;
            if self.calls.len() as u64 > 2 * KEPT {
                let oldest_kept = call.saturating_sub(KEPT);
                self.calls.retain(|&c, _| c >= oldest_kept);
            }
        }
        self.calls.get(&call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_keep_the_same_bounded_set() {
        let inherited: HashMap<u64, ()> = [(3, ()), (5, ())].into();
        let mut parent = RecentCalls::new(inherited.clone());
        let mut worker = RecentCalls::new(inherited);
        // Calls in order, some chunks twice, and an old call coming back once.
        let sequence = (1..1000u64).flat_map(|c| [c, c]).chain([10, 1000]);
        for call in sequence {
            parent.note(call, || Some(()));
            worker.note(call, || Some(()));
            let mut a: Vec<u64> = parent.calls.keys().copied().collect();
            let mut b: Vec<u64> = worker.calls.keys().copied().collect();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "after call {call}");
            assert!(parent.len() as u64 <= 2 * KEPT + 1, "after call {call}");
        }
        assert!(parent.contains(1000) && parent.contains(1000 - KEPT));
        assert!(
            !parent.contains(1000 - 2 * KEPT - 2),
            "old calls are forgotten"
        );
        assert!(
            parent.contains(10),
            "a call that came back is remembered again"
        );
    }
}
