//! Steps 2 and 4 of rank 0's protocol (see the parent module): the MPI thread's loop, what it
//! does with the back end's requests and with each message from a worker rank, and the finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use pool_core::{Event, monotonic_ns};
use pool_wire::fnid::ExeDigest;
use pool_wire::msg::{FromWorker, decode_framed, encode_framed};
use pool_wire::parent::Outstanding;

use super::{CHECK_EVERY, Out, RankInfo, Route, describe, lock, silence_limit};
use crate::msg::{Down, Snapshot, Up, Whereabouts, WorkerKey};
use crate::pump::{Frame, Idle, Pump};
use crate::watch::PeerWatch;

/// A pessimistic transfer rate for big frames: their receivers' silence is excused that long.
const SLOW_BYTES_PER_SEC: f64 = 20e6;

/// A worker placed on a rank.
pub(super) struct Placed {
    pub(super) rank: usize,
    generation: u64,
    base: u64,
    pub(super) live: bool,
    outstanding: Outstanding,
}

pub(super) struct Peer {
    pub(super) seen: Instant,
    /// Silence is no sign of death until then (a big frame on its way to the rank).
    pub(super) excused_until: Instant,
    pub(super) watch: Option<PeerWatch>,
}

pub(super) struct Loop {
    pump: Pump,
    pub(super) dead: Arc<Vec<AtomicBool>>,
    info: Arc<Mutex<Vec<RankInfo>>>,
    me: Whereabouts,
    digest: Result<ExeDigest, String>,
    pub(super) peers: Vec<Peer>,
    route: Option<Route>,
    pub(super) placed: Vec<Option<Placed>>,
    pub(super) limit: Duration,
}

impl Loop {
    pub(super) fn new(
        pump: Pump,
        dead: Arc<Vec<AtomicBool>>,
        info: Arc<Mutex<Vec<RankInfo>>>,
    ) -> Self {
        let size = pump.size() as usize;
        Loop {
            pump,
            dead,
            info,
            me: Whereabouts::here(),
            digest: ExeDigest::current().map_err(|e| e.to_string()),
            peers: (0..size)
                .map(|_| Peer {
                    seen: Instant::now(),
                    excused_until: Instant::now(),
                    watch: None,
                })
                .collect(),
            route: None,
            placed: Vec::new(),
            limit: silence_limit(),
        }
    }

    pub(super) fn size(&self) -> usize {
        self.peers.len()
    }

    pub(super) fn is_dead(&self, rank: usize) -> bool {
        self.dead[rank].load(Ordering::SeqCst)
    }

    fn send_to_live_ranks(&mut self, bytes: &[u8]) {
        for rank in 1..self.size() {
            if !self.is_dead(rank) {
                self.pump.send(rank as i32, bytes.to_vec());
            }
        }
    }

    pub(super) fn serve(mut self, rx: Receiver<Out>) -> (bool, Sender<()>) {
        if let Ok(digest) = self.digest {
            let hello = encode_framed(
                &Down::Hello {
                    rank0: self.me.clone(),
                    digest,
                },
                &[],
            );
            for rank in 1..self.size() {
                self.pump.send(rank as i32, hello.clone());
            }
        }
        let beat = encode_framed(&Down::Beat, &[]);
        let mut idle = Idle::for_this_thread();
        let (mut last_check, mut last_beat) = (Instant::now(), Instant::now());
        loop {
            let mut busy = false;
            while let Ok(out) = rx.try_recv() {
                busy = true;
                if let Some(done) = self.local(out) {
                    return self.finish(done);
                }
            }
            self.pump.progress();
            while let Some((src, bytes)) = self.pump.poll() {
                busy = true;
                self.incoming(src as usize, bytes);
            }
            if last_check.elapsed() >= CHECK_EVERY {
                last_check = Instant::now();
                self.check_liveness();
            }
            if last_beat.elapsed() >= crate::HEARTBEAT {
                last_beat = Instant::now();
                self.send_to_live_ranks(&beat);
            }
            if busy {
                idle.busy();
                continue;
            }
            if let Some(out) = idle.next(&rx)
                && let Some(done) = self.local(out)
            {
                return self.finish(done);
            }
        }
    }

    /// A request of the back end; `Some` at `Finish`.
    fn local(&mut self, out: Out) -> Option<Sender<()>> {
        match out {
            Out::Attach(r) => {
                self.placed = (0..r.counters.len()).map(|_| None).collect();
                self.route = Some(r);
            }
            Out::Detach => {
                self.route = None;
                self.placed.clear();
            }
            Out::Started {
                slot,
                rank,
                generation,
                base,
                outstanding,
            } => {
                if let Some(p) = self.placed.get_mut(slot) {
                    *p = Some(Placed {
                        rank,
                        generation,
                        base,
                        live: true,
                        outstanding,
                    });
                }
                if self.is_dead(rank) {
                    // Placed while the rank was dying: it will never answer.
                    let m = format!("{} is dead", self.describe(rank));
                    self.died(slot, m);
                }
            }
            Out::Stopped { slot } => {
                if let Some(Some(p)) = self.placed.get_mut(slot) {
                    p.live = false;
                }
            }
            Out::Send { rank, bytes } => {
                self.excuse_big_frame(&bytes);
                self.pump.send(rank as i32, bytes);
            }
            Out::Finish(done) => return Some(done),
        }
        None
    }

    /// A rank busy receiving a frame of hundreds of MB (the shared objects, relayed down the
    /// tree) cannot say it is alive meanwhile: its silence is excused for as long as the frame
    /// may take to reach it, at a pessimistic [`SLOW_BYTES_PER_SEC`] per hop.
    fn excuse_big_frame(&mut self, frame: &Frame) {
        let bytes = frame.bytes();
        if bytes.len() < 1 << 20 {
            return;
        }
        let Some((Down::Shared { relay, .. }, _)) = pool_wire::msg::peek_framed::<Down>(bytes)
        else {
            return;
        };
        let hop = Duration::from_secs_f64(bytes.len() as f64 / SLOW_BYTES_PER_SEC);
        for (i, &r) in relay.iter().enumerate() {
            let depth = usize::BITS - (i + 1).leading_zeros(); // 1 for the root
            if let Some(p) = self.peers.get_mut(r) {
                p.excused_until = p.excused_until.max(Instant::now() + hop * depth);
            }
        }
    }

    fn finish(mut self, done: Sender<()>) -> (bool, Sender<()>) {
        let finalize = !(1..self.size()).any(|r| self.is_dead(r));
        let bye = encode_framed(&Down::Shutdown { finalize }, &[]);
        self.send_to_live_ranks(&bye);
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.pump.in_flight() > 0 && Instant::now() < deadline {
            self.pump.progress();
            while self.pump.poll().is_some() {}
            std::thread::sleep(Duration::from_micros(100));
        }
        (finalize, done)
    }

    /// The live worker `key` names, if it is the one placed on `src`.
    fn placed_for(&mut self, src: usize, key: &WorkerKey) -> Option<usize> {
        let route = self.route.as_ref()?;
        let p = self.placed.get(key.slot)?.as_ref()?;
        (route.epoch == key.epoch && p.rank == src && p.generation == key.generation && p.live)
            .then_some(key.slot)
    }

    fn apply(&self, slot: usize, s: Snapshot) {
        let (Some(r), Some(Some(p))) = (self.route.as_ref(), self.placed.get(slot)) else {
            return;
        };
        let c = &r.counters[slot];
        c.tasks_done.store(p.base + s.done, Ordering::Release);
        match s.current {
            Some((task, elapsed)) => {
                c.started_ns.store(
                    monotonic_ns().saturating_sub(elapsed).max(1),
                    Ordering::Relaxed,
                );
                c.current_task
                    .store(task.wrapping_add(1), Ordering::Relaxed);
            }
            None => {
                c.current_task.store(0, Ordering::Relaxed);
                c.started_ns.store(0, Ordering::Relaxed);
            }
        }
    }

    pub(super) fn died(&mut self, slot: usize, message: String) {
        let Some(Some(p)) = self.placed.get_mut(slot) else {
            return;
        };
        if !p.live {
            return;
        }
        p.live = false;
        let generation = p.generation;
        if let Some(r) = self.route.as_ref() {
            let _ = r.events.send(Event::Died {
                worker: slot,
                generation,
                message,
            });
        }
    }

    fn incoming(&mut self, src: usize, bytes: Vec<u8>) {
        if src == 0 || src >= self.size() {
            return;
        }
        self.peers[src].seen = Instant::now();
        let Some((msg, bulk)) = decode_framed::<Up>(bytes) else {
            eprintln!("pool-mpi: garbled message from {}", self.describe(src));
            return;
        };
        match msg {
            Up::Alive { at, digest } => self.alive(src, at, digest),
            Up::Progress { key, counters } => {
                if let Some(slot) = self.placed_for(src, &key) {
                    self.apply(slot, counters);
                }
            }
            Up::Lost {
                key,
                counters,
                message,
                rank_ends,
            } => {
                // Dead before anyone hears of it: a worker restarted on news of this death
                // must not be placed on this rank again.
                let newly_dead = rank_ends && self.mark_dead(src);
                if let Some(slot) = self.placed_for(src, &key) {
                    self.apply(slot, counters);
                    let m = format!("{}: {message}", self.describe(src));
                    self.died(slot, m);
                }
                if newly_dead {
                    self.report_dead(src, "ended its process");
                }
            }
            Up::Event { key, counters, msg } => {
                let Some(slot) = self.placed_for(src, &key) else {
                    return;
                };
                if let FromWorker::ChunkDone { call, first } = msg {
                    let owed = self.placed[slot]
                        .as_ref()
                        .is_some_and(|p| p.outstanding.returned(call, first));
                    if !owed {
                        let m = format!(
                            "{} broke the protocol: a result for a chunk it was not given \
                             (call {call}, first task {first})",
                            self.describe(src)
                        );
                        return self.died(slot, m);
                    }
                }
                self.apply(slot, counters);
                if let FromWorker::Exited { .. } = msg
                    && let Some(Some(p)) = self.placed.get_mut(slot)
                {
                    p.live = false;
                }
                let mut event = msg.into_event(slot, key.generation, bulk);
                if let Event::Timings { timings, .. } = &mut event {
                    let host = lock(&self.info)[src].at.as_ref().map(|a| a.host.clone());
                    timings.location = Some(match host {
                        Some(h) => format!("MPI rank {src} on {h}"),
                        None => format!("MPI rank {src}"),
                    });
                }
                if let Some(r) = self.route.as_ref() {
                    let _ = r.events.send(event);
                }
            }
        }
    }

    pub(super) fn describe(&self, rank: usize) -> String {
        describe(rank, lock(&self.info)[rank].at.as_ref())
    }

    fn alive(&mut self, src: usize, at: Whereabouts, digest: Result<ExeDigest, String>) {
        if lock(&self.info)[src].at.is_some() {
            return;
        }
        self.peers[src].watch = PeerWatch::local(&at, &self.me);
        let refused = match (&self.digest, &digest) {
            (Ok(mine), Ok(theirs)) if mine == theirs => None,
            (Ok(mine), Ok(theirs)) => Some(format!(
                "{} runs a different executable than rank 0 (rank 0: {mine}; rank {src}: \
                 {theirs}): functions travel as offsets into the binary, so every rank must run \
                 the same build; copy the same binary to every host",
                describe(src, Some(&at))
            )),
            (Err(e), _) => Some(format!("rank 0 cannot read its own executable: {e}")),
            (_, Err(e)) => Some(format!(
                "{} cannot read its executable to check it: {e}",
                describe(src, Some(&at))
            )),
        };
        let mut info = lock(&self.info);
        info[src].at = Some(at);
        info[src].refused = refused;
    }
}
