//! Summary statistics of repeated timings: median and range, nothing cleverer.
//!
//! Timings on shared 2-vCPU machines vary by 2–3× between runs, so the report gives the median
//! (robust to one slow run) and the min–max (honest about the spread) instead of a mean ± σ.

use serde::{Deserialize, Serialize};

/// Median, min and max of a set of wall times, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Middle value (mean of the two middle ones for an even count).
    pub median_s: f64,
    /// Fastest run.
    pub min_s: f64,
    /// Slowest run.
    pub max_s: f64,
}

impl Summary {
    /// Summarizes `times`; `None` when there are none.
    pub fn of(times: &[f64]) -> Option<Self> {
        if times.is_empty() {
            return None;
        }
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median_s = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Self {
            median_s,
            min_s: sorted[0],
            max_s: sorted[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(Summary::of(&[3.0, 1.0, 2.0]).unwrap().median_s, 2.0);
        let s = Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.median_s, s.min_s, s.max_s), (2.5, 1.0, 4.0));
        assert!(Summary::of(&[]).is_none());
    }
}
