//! Chunks out and results in: pulling chunks from the input under back-pressure (*staged*),
//! handing them to workers (*sent*), and taking their results when they come back
//! (*delivered*).

use super::{Batch, Call};
use crate::backend::{Command, Event};
use crate::chunking::ChunkInputs;
use crate::error::PoolError;
use crate::job::{
    Data, Input, Payload, Wire, decode_output, decode_output_into, encode_inputs,
    encode_inputs_kept,
};
use crate::options::ErrorPolicy;
use crate::shared_bytes;
use crate::supervisor::Delivery;

/// The most events, and the most tasks' results, taken in one go before the call sends
/// chunks again and looks at its input, its clock and Ctrl-C. Counting tasks keeps the batch
/// to one event when chunks are big: decoding a queued result of thousands of tasks takes
/// longer than a worker needs to run its next chunk, so the chunks that replace results go
/// out before the next result is decoded.
const EVENT_BATCH: usize = 64;

impl<Sh, St, T: Input, R: Payload> Call<'_, Sh, St, T, R> {
    /// Sends staged chunks to workers that can take them, and stages more while
    /// back-pressure allows. Errors: an input that cannot be encoded, a worker that cannot be
    /// started.
    ///
    /// Chunks are staged ahead of need, up to one per worker, so a worker that frees up gets
    /// its next chunk at once instead of waiting for the input to be read.
    pub(super) fn fill(&mut self) -> Result<(), PoolError> {
        loop {
            let (policy, taken, pace) = (
                self.cfg.policy,
                self.chunks.taken(),
                self.sup.mean_task_time(),
            );
            let cap = policy.tail_cap(taken, pace);
            let in_tail = policy.in_tail(taken, cap);
            if let Some((_, front)) = self.staged.front() {
                let units = policy.units(front.len() as u64);
                let only = self.cfg.order_tasks.then_some(self.rr % self.sup.n_jobs());
                let tail = self.input_done || in_tail;
                let mut picked = self.sup.pick(only, tail, units);
                if picked.is_none() && self.sup.any_dead() {
                    self.sup.revive()?;
                    picked = self.sup.pick(only, tail, units);
                }
                if let Some(worker) = picked {
                    let (first, tasks) = self.staged.pop_front().expect("not empty");
                    self.send(worker, first, tasks, units)?;
                    if self.finished {
                        return Ok(());
                    }
                    continue;
                }
            }
            if self.input_done || self.staged.len() >= self.sup.n_jobs() {
                return Ok(());
            }
            let cap = cap.unwrap_or(u64::MAX);
            let fits = |len: u64| {
                self.active + len <= policy.max_active
                    && !(self.cfg.ordered
                        && taken + len > self.reorder.next_expected() + policy.max_ahead)
            };
            // A run must fit the back-pressure whole; else the chunk goes alone.
            let micro = !self.cfg.order_tasks && self.sup.takes_runs();
            let mut run = policy.run(micro, in_tail);
            let mut len = self.chunks.next_len(cap, run);
            if run > 1 && !fits(len) {
                run = 1;
                len = self.chunks.next_len(cap, run);
            }
            if self.active > 0 && !fits(len) {
                return Ok(());
            }
            match self.chunks.next_chunk(cap, run) {
                Some((first, tasks)) => {
                    self.active += tasks.len() as u64;
                    self.staged.push_back((first, tasks));
                }
                None => {
                    self.input_done = true;
                    self.status.set_total(self.chunks.taken());
                    return Ok(());
                }
            }
        }
    }

    /// Sends the chunk at `first` to `worker`, where it counts for `units` chunks of the grid.
    fn send(
        &mut self,
        worker: usize,
        first: u64,
        tasks: ChunkInputs<T>,
        units: u32,
    ) -> Result<(), PoolError> {
        self.rr += 1;
        let n = tasks.len() as u32;
        let encoding = |message| PoolError::Serialization {
            context: format!("inputs of tasks #{first}..#{}", first + u64::from(n)),
            message,
        };
        // Bytes are encoded from the inputs where they lie, and the call keeps the inputs
        // themselves (issue #17: a copy of each 64 MiB argument cost 16k page faults).
        let (tasks, encoded) = match self.wire {
            Wire::Bytes => {
                let mut tasks = tasks;
                let encoded =
                    shared_bytes::encoding(self.handles, || encode_inputs_kept(&mut tasks))
                        .map_err(encoding)?;
                (self.retain(first, tasks), Some(encoded))
            }
            Wire::Local => {
                if let Some(r) = self.retained.as_mut() {
                    r.insert(first, tasks.copy());
                }
                (Some(tasks), None)
            }
        };
        let dest = match &self.slab {
            Some(s) if self.spilled_at.is_none() && first + u64::from(n) <= s.capacity() as u64 => {
                Some(s.writer(first as usize, n as usize))
            }
            // More inputs than the length announced: the rest comes back the usual way.
            Some(_) => {
                self.spilled_at.get_or_insert(first);
                None
            }
            None => None,
        };
        // Encoded results are decoded into their place when they arrive.
        let dest = match (self.wire, dest) {
            (Wire::Bytes, Some(w)) => {
                self.writers.insert(first, w);
                None
            }
            (_, dest) => dest,
        };
        let (input, refs) = match (encoded, tasks) {
            (Some((bytes, refs)), _) => (Data::Bytes(bytes), refs),
            (None, Some(tasks)) => {
                let wire = self.wire;
                shared_bytes::encoding(self.handles, || encode_inputs(tasks, wire, dest))
                    .map_err(encoding)?
            }
            (None, None) => unreachable!("in-process inputs are never retained whole"),
        };
        let settings = self.retry_settings(first, n).unwrap_or(self.settings);
        let cmd = Command::Chunk {
            job: self.job.clone(),
            call: self.id,
            first,
            len: n,
            input,
            refs,
            settings,
        };
        let now = self.now();
        if let Err(unsent) = self.sup.dispatch_at(worker, cmd, now, units) {
            // Sent → lost: the chunk is in the worker's hand, and goes with it (its inputs
            // are sent again from the call's copy, if it keeps one).
            self.refused(worker, unsent.error);
        }
        Ok(())
    }

    /// Keeps the inputs of the chunk at `first` when the call keeps them; else hands them back.
    fn retain(&mut self, first: u64, tasks: ChunkInputs<T>) -> Option<ChunkInputs<T>> {
        match self.retained.as_mut() {
            Some(r) => {
                r.insert(first, tasks);
                None
            }
            None => Some(tasks),
        }
    }

    /// Takes one event from the workers.
    pub(super) fn take_event(&mut self, event: Event) {
        let now = self.now();
        match self.sup.handle_at(event, now) {
            Ok(Some(d)) => self.deliver(d),
            Ok(None) => {}
            Err(e) => self.fail(e),
        }
    }

    /// Takes the events already queued, up to [`EVENT_BATCH`] of them or of their tasks'
    /// results, without waiting; returns whether there was one. Results that arrived together are taken together, and the
    /// chunks that replace them go out together (one wake-up of a worker, not one each).
    pub(super) fn take_queued_events(&mut self) -> bool {
        self.sup.backend.poll(false);
        let mut took = false;
        let active_before = self.active;
        for _ in 0..EVENT_BATCH {
            if self.finished || active_before.saturating_sub(self.active) >= EVENT_BATCH as u64 {
                break;
            }
            match self.sup.backend.events().try_recv() {
                Ok(event) => {
                    took = true;
                    self.take_event(event);
                }
                Err(_) => break,
            }
        }
        took
    }

    /// Waits briefly for events from the caller's own thread, when the back end can
    /// ([`crate::backend::Backend::poll`]), and takes them; returns whether there was one.
    pub(super) fn take_polled_events(&mut self) -> bool {
        self.sup.backend.poll(true) && self.take_queued_events()
    }

    /// What a worker hands the call owner.
    pub(super) fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::Chunk {
                call,
                first,
                output,
                ..
            } if call == self.id => {
                let decoded = match self.writers.remove(&first) {
                    Some(mut w) => decode_output_into::<T, R>(output, &mut w),
                    None => decode_output::<T, R>(output),
                };
                let out = match decoded {
                    Ok(o) => o,
                    Err(message) => {
                        return self.fail(PoolError::Serialization {
                            context: format!("results of the chunk at task #{first}"),
                            message,
                        });
                    }
                };
                let len = out.len();
                self.active = self.active.saturating_sub(len);
                // The chunk is back: its kept copy (for re-running after a lost worker) can go.
                if let Some(kept) = self.retained.as_mut().and_then(|r| r.remove(&first)) {
                    let n = kept.len();
                    self.dropper.drop_kept::<T>(kept, n);
                }
                self.returned += len;
                self.failed += out.failures.len() as u64;
                if let Some((_, f)) = out.failures.first()
                    && self.cfg.on_error == ErrorPolicy::Stop
                {
                    return self.fail(f.clone().into());
                }
                if out.failures.is_empty() {
                    self.history.remove(&first);
                    return self
                        .reorder
                        .put(first, len, Batch::Values(out.values.into_iter()));
                }
                let mut values = out.values.into_iter();
                let mut failures = out.failures.into_iter().peekable();
                let mut items = Vec::with_capacity(len as usize);
                for offset in 0..len as u32 {
                    match failures.peek() {
                        Some((o, _)) if *o == offset => {
                            let (_, f) = failures.next().expect("peeked");
                            let f = self.with_history(f);
                            if let Some(p) = self.progress.as_mut() {
                                p.task_failed(&format!("{f:#}"));
                            }
                            items.push(Err(f.into()));
                        }
                        _ => match values.next() {
                            Some(v) => items.push(Ok(v)),
                            None => break,
                        },
                    }
                }
                self.reorder
                    .put(first, len, Batch::Items(items.into_iter()));
            }
            // A chunk of an earlier call (a dropped `imap`) or of an apply task, finished while
            // this call ran: its tasks moved the workers' done counters after this call took
            // their base, and are no progress of this call.
            Delivery::Chunk { len, output, .. } => {
                self.base_done += u64::from(len);
                shared_bytes::discard(output, self.handles);
            }
            Delivery::HookFailed(f) => self.fail(f.into()),
            Delivery::Lost {
                chunks,
                current,
                failure,
            } => self.recover(chunks, current, *failure),
        }
    }
}
