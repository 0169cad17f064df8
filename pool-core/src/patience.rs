//! How long a waiting thread spins before it sleeps: as long as its recent waits needed.
//!
//! Why: a thread fed one-task chunks finds its next message within microseconds, so spinning
//! saves a sleep and a wake-up per task (the per-task round trip of issue #17); a thread fed
//! long chunks waits milliseconds, and spinning would only take a core from the others on a
//! two-core machine. A fixed count must pick one; this adapts, as an adaptive mutex does:
//! 1. The budget starts at the floor ([`FLOOR`], or the ceiling if that is lower).
//! 2. A wait that spinning ended doubles it, up to the ceiling.
//! 3. A wait that spinning did not end (the waiter went on to yield or sleep) halves it, down
//!    to the floor.
//!
//! Users: a worker process waiting on its ring and the caller polling the rings
//! (`pool-ipc`), a worker thread waiting for its next command and the caller waiting for
//! thread workers' results (`threads.rs`). The budget only says how long to look; what a
//! wait does once it stops spinning is the waiter's own protocol.
//!
//! On a single CPU no spin can end a wait: the thread it waits for runs only when the waiter
//! gives up the CPU. Waiters there [`yield_until`] instead, a few times, before they sleep.

/// Spins every wait may make, whatever happened before: ~6 µs on the development VM (a
/// `pause` takes ~30 ns there), the fixed count before budgets adapted.
pub const FLOOR: u32 = 200;

/// A waiter's spin budget.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    budget: u32,
    floor: u32,
    ceiling: u32,
}

impl Patience {
    /// A budget of at least [`FLOOR`] and at most `ceiling` spins (step 1).
    pub fn new(ceiling: u32) -> Self {
        let floor = FLOOR.min(ceiling);
        Self {
            budget: floor,
            floor,
            ceiling,
        }
    }

    /// How many times the next wait spins.
    pub fn spins(&self) -> u32 {
        self.budget
    }

    /// Learns from a wait: `spun` says whether spinning alone ended it (steps 2 and 3).
    pub fn record(&mut self, spun: bool) {
        self.budget = if spun {
            self.budget
                .saturating_mul(2)
                .clamp(self.floor, self.ceiling)
        } else {
            (self.budget / 2).max(self.floor)
        };
    }

    /// Spins until `ready` holds or the budget is spent, and learns from it; returns whether
    /// `ready` held. Ready at the first look, there was no wait to learn from: counting it as
    /// one that spinning ended grew the budget to the ceiling where nothing ever came by
    /// spinning (both threads on one core), and each wait then cost the ceiling.
    pub fn spin_until(&mut self, mut ready: impl FnMut() -> bool) -> bool {
        if ready() {
            return true;
        }
        for _ in 0..self.budget {
            std::hint::spin_loop();
            if ready() {
                self.record(true);
                return true;
            }
        }
        self.record(false);
        false
    }
}

/// How many times a waiter on a single CPU yields before it sleeps.
pub const YIELDS: u32 = 10;

/// Looks for `ready`, yielding the CPU up to [`YIELDS`] times while it is not: the wait of a
/// thread on a single CPU (see the module's notes). Returns whether it became ready.
pub fn yield_until(mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..YIELDS {
        if ready() {
            return true;
        }
        std::thread::yield_now();
    }
    ready()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yielding_stops_at_the_first_ready_look_or_after_its_count() {
        let mut looks = 0;
        assert!(yield_until(|| {
            looks += 1;
            looks == 3
        }));
        assert_eq!(looks, 3);
        looks = 0;
        assert!(!yield_until(|| {
            looks += 1;
            false
        }));
        assert_eq!(
            looks,
            YIELDS + 1,
            "a look after each yield, the last one included"
        );
    }

    #[test]
    fn waits_that_spinning_ends_grow_the_budget_and_others_shrink_it() {
        let mut p = Patience::new(2000);
        assert_eq!(p.spins(), FLOOR);
        for _ in 0..10 {
            p.record(true);
        }
        assert_eq!(p.spins(), 2000, "never above the ceiling");
        p.record(false);
        assert_eq!(p.spins(), 1000);
        for _ in 0..10 {
            p.record(false);
        }
        assert_eq!(p.spins(), FLOOR, "never below the floor");
    }

    #[test]
    fn a_ceiling_below_the_floor_is_the_budget_for_good() {
        let mut p = Patience::new(0);
        p.record(true);
        assert_eq!(p.spins(), 0);
        let mut p = Patience::new(50);
        p.record(true);
        p.record(false);
        assert_eq!(p.spins(), 50);
    }

    #[test]
    fn spinning_stops_at_the_first_ready_look_or_after_the_budget() {
        let mut p = Patience::new(2000);
        let mut looks = 0;
        assert!(p.spin_until(|| {
            looks += 1;
            looks == 3
        }));
        assert_eq!((looks, p.spins()), (3, 2 * FLOOR));
        let mut looks = 0;
        assert!(!p.spin_until(|| {
            looks += 1;
            false
        }));
        assert_eq!((looks, p.spins()), (2 * FLOOR + 1, FLOOR));
        assert!(p.spin_until(|| true));
        assert_eq!(p.spins(), FLOOR, "ready at once: nothing learnt");
    }
}
