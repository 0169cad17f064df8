//! Dropping the inputs a call kept, on a thread of its own.
//!
//! Why: the caller keeps the inputs of a chunk sent to a worker process until its results come
//! back (to send them again if the worker is lost, and to name a lost task's arguments), then
//! drops them, on its own thread: the thread that also encodes the next chunks and decodes the
//! results, while the workers wait for both. For inputs that own memory that is a `free` per
//! input: a Fork map over 2 M short owned strings spent ~60 of its ~165 ms there (harness
//! `steady-words`; 0.93–1.0× rayon with the inputs leaked instead, 1.42–1.49× dropped).
//!
//! 1. Inputs without drop glue, and chunks of fewer than [`MIN_TASKS`] inputs, are dropped in
//!    place: there is nothing, or not enough, to hand over.
//! 2. The first chunk worth handing over starts the helper thread; it and the later ones go to
//!    it through a queue of at most [`QUEUE`] chunks. A full queue, or a helper that could not
//!    start, means the caller drops the chunk itself, as before: garbage never piles up.
//! 3. The call's end (its [`Dropper`] dropped) closes the queue and joins the helper, so every
//!    kept input is dropped, once, before the call returns, as it was on the caller's thread.
//!    The join waits for at most [`QUEUE`] chunks' drops.

use std::thread::JoinHandle;

use crossbeam_channel::{Sender, bounded};

/// The fewest inputs in a chunk handed to the helper (step 1).
const MIN_TASKS: usize = 256;

/// The most chunks waiting for the helper (step 2).
const QUEUE: usize = 64;

/// Where a call's kept inputs go once their chunk is back.
pub(crate) struct Dropper<V> {
    helper: Option<(Sender<V>, JoinHandle<()>)>,
    /// The helper could not start: drop in place from then on.
    refused: bool,
}

impl<V> Default for Dropper<V> {
    fn default() -> Self {
        Dropper {
            helper: None,
            refused: false,
        }
    }
}

impl<V: Send + 'static> Dropper<V> {
    /// Drops `value`, the kept inputs of a chunk of `tasks` inputs of type `T`: on the helper
    /// when that pays (steps 1 and 2), else here.
    pub(crate) fn drop_kept<T>(&mut self, value: V, tasks: usize) {
        if !std::mem::needs_drop::<T>() || tasks < MIN_TASKS || self.refused {
            return;
        }
        if self.helper.is_none() {
            let (tx, rx) = bounded::<V>(QUEUE);
            let spawned = std::thread::Builder::new()
                .name("pool-drop".into())
                .spawn(move || rx.into_iter().for_each(drop));
            match spawned {
                Ok(h) => self.helper = Some((tx, h)),
                Err(_) => {
                    self.refused = true;
                    return;
                }
            }
        }
        if let Some((tx, _)) = &self.helper
            && let Err(full) = tx.try_send(value)
        {
            drop(full.into_inner());
        }
    }
}

impl<V> Drop for Dropper<V> {
    /// Step 3.
    fn drop(&mut self) {
        if let Some((tx, h)) = self.helper.take() {
            drop(tx);
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its drops, and on which thread they ran.
    struct Counted {
        drops: Arc<AtomicUsize>,
        elsewhere: Arc<AtomicUsize>,
        made_on: std::thread::ThreadId,
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
            if std::thread::current().id() != self.made_on {
                self.elsewhere.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    fn chunk(n: usize, drops: &Arc<AtomicUsize>, elsewhere: &Arc<AtomicUsize>) -> Vec<Counted> {
        (0..n)
            .map(|_| Counted {
                drops: drops.clone(),
                elsewhere: elsewhere.clone(),
                made_on: std::thread::current().id(),
            })
            .collect()
    }

    #[test]
    fn big_chunks_are_dropped_on_the_helper_and_all_before_the_end() {
        let (drops, elsewhere) = (Arc::default(), Arc::default());
        let mut d = Dropper::default();
        for _ in 0..10 {
            d.drop_kept::<Counted>(chunk(1000, &drops, &elsewhere), 1000);
        }
        drop(d);
        assert_eq!(drops.load(Ordering::SeqCst), 10_000, "each input once");
        assert!(
            elsewhere.load(Ordering::SeqCst) > 0,
            "none went to the helper"
        );
    }

    #[test]
    fn small_chunks_are_dropped_in_place_without_a_helper() {
        let (drops, elsewhere) = (Arc::default(), Arc::default());
        let mut d = Dropper::default();
        d.drop_kept::<Counted>(chunk(10, &drops, &elsewhere), 10);
        assert_eq!(drops.load(Ordering::SeqCst), 10, "dropped at once");
        assert_eq!(elsewhere.load(Ordering::SeqCst), 0);
        assert!(d.helper.is_none(), "a helper started for ten inputs");
    }

    #[test]
    fn inputs_without_drop_glue_never_start_a_helper() {
        let mut d = Dropper::default();
        d.drop_kept::<u64>(vec![0u64; 10_000], 10_000);
        assert!(d.helper.is_none());
    }
}
