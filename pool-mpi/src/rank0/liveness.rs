//! Step 3 of rank 0's protocol (see the parent module): which worker ranks are dead, and what
//! follows when one is: it is killed if it is on this host, and every worker placed on it is
//! reported with its rank, host, pid and the task it held.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::serve::Loop;
use crate::watch::{PeerState, PeerWatch};

/// How long a rank on this host may stay stopped before it is judged dead.
const STOPPED_LIMIT: Duration = Duration::from_millis(300);

impl Loop {
    pub(super) fn check_liveness(&mut self) {
        for rank in 1..self.size() {
            if self.is_dead(rank) {
                continue;
            }
            let state = self.peers[rank].watch.as_mut().map(PeerWatch::check);
            let why = match state {
                Some(PeerState::Gone) => Some("ended (its process is gone)".to_string()),
                Some(PeerState::Stopped(d)) if d >= STOPPED_LIMIT => Some(format!(
                    "is stopped (SIGSTOP or a debugger) for {:.1} s; it was judged dead and killed",
                    d.as_secs_f64()
                )),
                _ => {
                    let silent = self.peers[rank].seen.elapsed();
                    let excused = Instant::now() < self.peers[rank].excused_until;
                    (silent > self.limit && !excused).then(|| {
                        format!(
                            "stopped answering (silent for {:.1} s): it died, is stopped, or its \
                             host is unreachable",
                            silent.as_secs_f64()
                        )
                    })
                }
            };
            if let Some(why) = why {
                self.judge_dead(rank, why);
            }
        }
    }

    /// Declares `rank` dead: kills it if it is on this host, reports the workers placed there.
    fn judge_dead(&mut self, rank: usize, why: String) {
        if self.mark_dead(rank) {
            self.report_dead(rank, &why);
        }
    }

    /// Marks `rank` dead (and kills it when it is on this host); false if it already was.
    pub(super) fn mark_dead(&mut self, rank: usize) -> bool {
        if self.dead[rank].swap(true, Ordering::SeqCst) {
            return false;
        }
        if let Some(w) = self.peers[rank].watch.as_ref() {
            w.kill();
        }
        true
    }

    /// Reports every live worker placed on the dead `rank`.
    pub(super) fn report_dead(&mut self, rank: usize, why: &str) {
        let message = format!("{} {why}", self.describe(rank));
        eprintln!("pool-mpi: {message}");
        let on_it: Vec<usize> = (0..self.placed.len())
            .filter(|&s| {
                self.placed[s]
                    .as_ref()
                    .is_some_and(|p| p.rank == rank && p.live)
            })
            .collect();
        for slot in on_it {
            self.died(slot, message.clone());
        }
    }
}
