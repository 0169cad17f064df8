//! How long a ring's consumer spins before it yields and sleeps: as long as its recent waits
//! needed, within its [`WaitPolicy`].
//!
//! Why: a worker fed one-task chunks finds its next chunk within microseconds, so spinning
//! saves a sleep and a futex wake-up per task (the per-task round trip of issue #17); a worker
//! fed long chunks waits milliseconds, so spinning would only take a core from the parent on a
//! two-core machine. A fixed count must pick one; this adapts, as an adaptive mutex does:
//! 1. The budget starts at the floor ([`FLOOR`], or the policy's `spins` if lower).
//! 2. A wait that spinning ended doubles it, up to the policy's `spins`.
//! 3. A wait that spinning did not end (the consumer yielded or slept) halves it, down to the
//!    floor.
//!
//! The budget is this process's own state: it changes how long the consumer looks, never what
//! the ring's protocol does (steps 3 and 4 of `super`'s protocol are the same after any spin).

use super::WaitPolicy;

/// Spins every consumer may make, whatever happened before: ~6 µs on the development VM (a
/// `pause` takes ~30 ns there), the fixed count before the budget adapted.
pub(crate) const FLOOR: u32 = 200;

/// A consumer's spin budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience {
    budget: u32,
    floor: u32,
    policy: WaitPolicy,
}

impl Patience {
    pub(crate) fn new(policy: WaitPolicy) -> Self {
        let floor = FLOOR.min(policy.spins);
        Self {
            budget: floor,
            floor,
            policy,
        }
    }

    /// How the next wait spins (the budget) and yields (the policy's).
    pub(crate) fn next(&self) -> WaitPolicy {
        WaitPolicy {
            spins: self.budget,
            ..self.policy
        }
    }

    /// Learns from a wait: `spun` says whether spinning alone ended it (steps 2 and 3).
    pub(crate) fn record(&mut self, spun: bool) {
        self.budget = if spun {
            self.budget
                .saturating_mul(2)
                .clamp(self.floor, self.policy.spins)
        } else {
            (self.budget / 2).max(self.floor)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(spins: u32) -> WaitPolicy {
        WaitPolicy { spins, yields: 3 }
    }

    #[test]
    fn short_waits_earn_the_full_budget_and_long_ones_lose_it() {
        let mut p = Patience::new(policy(2000));
        assert_eq!(p.next().spins, FLOOR);
        for _ in 0..10 {
            p.record(true);
        }
        assert_eq!(p.next().spins, 2000, "capped at the policy's spins");
        p.record(false);
        assert_eq!(p.next().spins, 1000);
        for _ in 0..10 {
            p.record(false);
        }
        assert_eq!(p.next().spins, FLOOR, "never below the floor");
        assert_eq!(p.next().yields, 3);
    }

    #[test]
    fn a_policy_below_the_floor_is_kept_as_it_is() {
        let mut p = Patience::new(policy(0));
        p.record(true);
        assert_eq!(p.next().spins, 0);
        let mut p = Patience::new(policy(50));
        p.record(true);
        p.record(false);
        assert_eq!(p.next().spins, 50);
    }
}
