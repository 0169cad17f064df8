//! Maps keyed by task number (a chunk's first task), touched a few times per chunk: a
//! multiplicative hash instead of SipHash, which would cost more than the rest of the lookup.
//! The keys are this call's own task numbers, never chosen by an outsider, so there is no
//! flooding to resist.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from task number to `V`.
pub(super) type TaskMap<V> = HashMap<u64, V, BuildHasherDefault<TaskHasher>>;

/// Hashes one `u64` by multiplying it with an odd constant (Fibonacci hashing): distinct keys
/// keep distinct low bits, and the high bits the table also uses are well mixed.
#[derive(Default)]
pub(super) struct TaskHasher(u64);

impl Hasher for TaskHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; any other input still hashes, byte by byte.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_again_and_only_theirs() {
        let mut m: TaskMap<u64> = TaskMap::default();
        for k in (0..10_000u64).step_by(7) {
            m.insert(k, k * 2);
        }
        for k in 0..10_000u64 {
            assert_eq!(m.get(&k).copied(), (k % 7 == 0).then_some(k * 2), "key {k}");
        }
        for k in (0..10_000u64).step_by(14) {
            assert_eq!(m.remove(&k), Some(k * 2));
        }
        // Multiples of 7 below 10,000, less those of 14.
        assert_eq!(m.len(), 1429 - 715);
    }
}
