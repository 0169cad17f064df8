//! The scheduler alone, against a scripted in-memory back end: a test says "whoever gets the
//! chunk at task 7 holds it 300 ms", "the worker that runs chunk 3 dies while sending its
//! results", "task 9 hangs", and checks ordering, back-pressure, retries, recovery and the
//! errors. No processes: workers are `run_worker` loops on threads of this process, behind a
//! [`WorkerLink`] that plays the script and logs what the pool sent and heard.
//!
//! The scripted delays are far longer than the work around them (tasks take microseconds), so
//! what the tests check does not depend on the machine's speed.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use pool_core::{
    Backend, CallInfo, Cause, Command, CounterRef, Event, Extensions, MapOptions, PoolError,
    ProgressSink, RawInsights, SharedObjects, StartMethod, Unsent, Wire, WorkerCounters,
    WorkerLink, WorkerPool, WorkerSetup, WorkerTimings, run_worker,
};

/// What happens, keyed by the first task of a chunk or by a task.
#[derive(Debug, Default, Clone)]
struct Script {
    /// Whoever gets the chunk starting at this task holds it this long before running it.
    slow: Vec<(u64, Duration)>,
    /// The worker that runs the chunk starting at this task dies instead of sending its
    /// results (the first time only).
    dies_sending: Vec<u64>,
    /// A chunk holding this task hangs on it (marked running, never returns): the first
    /// `times` times it is sent.
    hangs: Vec<(u64, u32)>,
    /// The worker that runs the chunk starting at this task sends its results, then dies; the
    /// news of its death comes [`HOLD`] later (a dead process's last results can reach the
    /// pool before the news of its end does). Its back end refuses commands meanwhile, as a
    /// closed ring does.
    dies_after: Vec<u64>,
}

/// What the back end saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The pool handed the chunk `(first, len)` to worker `w` (it may be queued behind
    /// another in the worker's hand until `Sent`).
    Handed { worker: usize, first: u64, len: u32 },
    /// A chunk `(first, len)` reached worker `w`.
    Sent { worker: usize, first: u64, len: u32 },
    /// Worker `w` sent back the chunk at `first`.
    Done { worker: usize, first: u64 },
    /// Worker `w` died, holding the chunk at `first`.
    Died { worker: usize, first: u64 },
}

#[derive(Debug, Default)]
struct Stage {
    script: Mutex<Script>,
    log: Mutex<Vec<Seen>>,
    /// Inputs pulled from the call's input so far (the test's input counts them).
    pulled: AtomicU64,
    /// `pulled` when the chunk at task 0 came back.
    pulled_when_0_done: AtomicU64,
}

impl Stage {
    fn log(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn sent(&self, first: u64) -> usize {
        self.log()
            .iter()
            .filter(|s| matches!(s, Seen::Sent { first: f, .. } if *f == first))
            .count()
    }
}

thread_local! {
    /// The stage of the next pool built on this thread.
    static NEXT: RefCell<Option<Arc<Stage>>> = const { RefCell::new(None) };
}

struct Scripted;

impl Extensions for Scripted {
    type Insights = RawInsights;

    fn default_start_method() -> StartMethod {
        StartMethod::Threading
    }

    fn backend<Sh: SharedObjects, St: 'static>(
        _: StartMethod,
        n_jobs: usize,
        _: bool,
    ) -> Result<Box<dyn Backend<Sh, St>>, PoolError> {
        let stage = NEXT
            .with(|n| n.borrow_mut().take())
            .expect("a stage is set");
        let (events_tx, events_rx) = unbounded();
        Ok(Box::new(ScriptedBackend {
            stage,
            counters: Arc::new((0..n_jobs).map(|_| WorkerCounters::default()).collect()),
            slots: (0..n_jobs).map(|_| None).collect(),
            events_tx,
            events_rx,
        }))
    }

    fn progress(_: &CallInfo) -> Option<Box<dyn ProgressSink>> {
        None
    }

    fn insights(timings: &[WorkerTimings]) -> RawInsights {
        RawInsights(timings.to_vec())
    }
}

struct Slot<Sh, St> {
    commands: Sender<Command<Sh, St>>,
    gone: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

struct ScriptedBackend<Sh, St> {
    stage: Arc<Stage>,
    counters: Arc<Vec<WorkerCounters>>,
    slots: Vec<Option<Slot<Sh, St>>>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
}

struct ScriptedLink<Sh, St> {
    worker: usize,
    generation: u64,
    stage: Arc<Stage>,
    counters: Arc<Vec<WorkerCounters>>,
    commands: Receiver<Command<Sh, St>>,
    events: Sender<Event>,
    gone: Arc<AtomicBool>,
    /// The chunk in hand.
    holding: u64,
}

impl<Sh, St> WorkerLink<Sh, St> for ScriptedLink<Sh, St> {
    fn recv(&mut self) -> Option<Command<Sh, St>> {
        let cmd = loop {
            if self.gone.load(Ordering::SeqCst) {
                return None;
            }
            match self.commands.recv_timeout(Duration::from_millis(5)) {
                Ok(c) => break c,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(_) => return None,
            }
        };
        let Command::Chunk { first, len, .. } = &cmd else {
            return Some(cmd);
        };
        let (first, len) = (*first, *len);
        self.holding = first;
        self.stage.log.lock().unwrap().push(Seen::Sent {
            worker: self.worker,
            first,
            len,
        });
        let (slow, hang) = {
            let mut s = self.stage.script.lock().unwrap();
            let slow = s.slow.iter().find(|(f, _)| *f == first).map(|(_, d)| *d);
            let hang = s
                .hangs
                .iter_mut()
                .find(|(t, times)| (first..first + u64::from(len)).contains(t) && *times > 0)
                .map(|(t, times)| {
                    *times -= 1;
                    *t
                });
            (slow, hang)
        };
        if let Some(d) = slow {
            std::thread::sleep(d);
        }
        if let Some(task) = hang {
            // Running `task` from now on, until the pool gives up on this worker.
            self.counters[self.worker].begin(task, true);
            while !self.gone.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            return None;
        }
        Some(cmd)
    }

    fn send(&mut self, event: Event) {
        if self.gone.load(Ordering::SeqCst) {
            return;
        }
        if let Event::ChunkDone { first, .. } = &event {
            let first = *first;
            if first == 0 {
                let pulled = self.stage.pulled.load(Ordering::SeqCst);
                self.stage
                    .pulled_when_0_done
                    .store(pulled, Ordering::SeqCst);
            }
            let dies = {
                let mut s = self.stage.script.lock().unwrap();
                let at = s.dies_sending.iter().position(|f| *f == first);
                at.map(|i| s.dies_sending.remove(i)).is_some()
            };
            let seen = if dies {
                self.gone.store(true, Ordering::SeqCst);
                Seen::Died {
                    worker: self.worker,
                    first,
                }
            } else {
                Seen::Done {
                    worker: self.worker,
                    first,
                }
            };
            self.stage.log.lock().unwrap().push(seen);
            let dies_after = {
                let mut s = self.stage.script.lock().unwrap();
                let at = s.dies_after.iter().position(|f| *f == first);
                at.map(|i| s.dies_after.remove(i)).is_some()
            };
            if dies_after {
                let _ = self.events.send(event);
                self.gone.store(true, Ordering::SeqCst);
                let (events, worker, generation) =
                    (self.events.clone(), self.worker, self.generation);
                std::thread::spawn(move || {
                    std::thread::sleep(HOLD);
                    let _ = events.send(Event::Died {
                        worker,
                        generation,
                        message: format!("scripted death after chunk {first}"),
                    });
                });
                return;
            }
            if dies {
                let _ = self.events.send(Event::Died {
                    worker: self.worker,
                    generation: self.generation,
                    message: format!("scripted death while sending chunk {}", self.holding),
                });
                return;
            }
        }
        let _ = self.events.send(event);
    }
}

impl<Sh: SharedObjects, St: 'static> Backend<Sh, St> for ScriptedBackend<Sh, St> {
    fn wire(&self) -> Wire {
        Wire::Local
    }

    fn counters(&self, slot: usize) -> &WorkerCounters {
        &self.counters[slot]
    }

    fn counters_for_new_worker(&mut self, slot: usize) -> CounterRef {
        CounterRef::new(self.counters.clone(), slot)
    }

    fn start_worker(&mut self, setup: WorkerSetup<Sh, St>) -> Result<(), PoolError> {
        let id = setup.id;
        self.kill(id);
        let (tx, rx) = unbounded();
        let gone = Arc::new(AtomicBool::new(false));
        let mut link = ScriptedLink {
            worker: id,
            generation: setup.generation,
            stage: self.stage.clone(),
            counters: self.counters.clone(),
            commands: rx,
            events: self.events_tx.clone(),
            gone: gone.clone(),
            holding: 0,
        };
        let thread = std::thread::spawn(move || run_worker(setup, &mut link));
        self.slots[id] = Some(Slot {
            commands: tx,
            gone,
            thread,
        });
        Ok(())
    }

    fn send(&mut self, slot: usize, cmd: Command<Sh, St>) -> Result<(), Unsent<Sh, St>> {
        let refused = || PoolError::backend("no worker", std::io::ErrorKind::BrokenPipe.into());
        let Some(s) = self.slots[slot].as_ref() else {
            return Err(Unsent::returned(refused(), cmd));
        };
        if s.gone.load(Ordering::SeqCst) {
            return Err(Unsent::returned(refused(), cmd));
        }
        if let Command::Chunk { first, len, .. } = &cmd {
            self.stage.log.lock().unwrap().push(Seen::Handed {
                worker: slot,
                first: *first,
                len: *len,
            });
        }
        s.commands
            .send(cmd)
            .map_err(|e| Unsent::returned(refused(), e.into_inner()))
    }

    fn events(&self) -> &Receiver<Event> {
        &self.events_rx
    }

    fn kill(&mut self, slot: usize) {
        if let Some(s) = self.slots[slot].take() {
            s.gone.store(true, Ordering::SeqCst);
            // It ends at its next look at `gone`; never waited for.
            drop(s.thread);
        }
    }

    fn shutdown(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        for s in self.slots.iter_mut().filter_map(Option::take) {
            let _ = s.commands.send(Command::Exit);
            while !s.thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            s.gone.store(true, Ordering::SeqCst);
        }
    }
}

/// A pool of two scripted workers, and its stage.
fn pool(script: Script) -> (WorkerPool<(), (), Scripted>, Arc<Stage>) {
    let stage = Arc::new(Stage {
        script: Mutex::new(script),
        ..Stage::default()
    });
    NEXT.with(|n| *n.borrow_mut() = Some(stage.clone()));
    let p = WorkerPool::<(), (), Scripted>::builder()
        .n_jobs(2)
        .build()
        .unwrap();
    (p, stage)
}

/// `0..n`, counting what is pulled on the stage.
fn counted(stage: &Arc<Stage>, n: u64) -> impl Iterator<Item = u64> + use<> {
    let stage = stage.clone();
    (0..n).inspect(move |_| {
        stage.pulled.fetch_add(1, Ordering::SeqCst);
    })
}

const HOLD: Duration = Duration::from_millis(300);

#[test]
fn results_wait_for_a_slow_chunk_without_stopping_the_other_worker() {
    let (mut p, stage) = pool(Script {
        slow: vec![(7, HOLD)],
        ..Script::default()
    });
    let opts = MapOptions::default().chunk_size(1).max_tasks_active(4);
    let out = p
        .map_with(|x: u64| x * 10, counted(&stage, 40), opts)
        .unwrap();
    assert_eq!(out, (0..40).map(|x| x * 10).collect::<Vec<_>>());
    // Every other chunk was done while task 7 was held, but for those its worker was handed
    // behind it while its chunks were tiny (a pipeline of at most eight in hand, fewer here as
    // `max_tasks_active` is 4): results waited for their turn, and the other worker never
    // stopped.
    let log = stage.log();
    let done_7 = log
        .iter()
        .position(|s| matches!(s, Seen::Done { first: 7, .. }))
        .unwrap();
    let done_before: Vec<u64> = log[..done_7]
        .iter()
        .filter_map(|s| match s {
            Seen::Done { first, .. } => Some(*first),
            _ => None,
        })
        .collect();
    assert!(done_before.len() >= 40 - 4, "{log:?}");
    assert!(done_before.contains(&39), "{log:?}");
}

#[test]
fn inputs_pulled_ahead_stay_bounded() {
    let (mut p, stage) = pool(Script {
        slow: vec![(0, HOLD)],
        ..Script::default()
    });
    let opts = MapOptions::default().chunk_size(1).max_tasks_active(4);
    let mut next = 0;
    for r in p
        .imap_with(|x: u64| x, counted(&stage, 1000), opts)
        .unwrap()
    {
        assert_eq!(r.unwrap(), next, "in input order");
        next += 1;
    }
    assert_eq!(next, 1000);
    // Never more than max_tasks_active chunks of one task sent and not back.
    let mut out = [0i64; 2];
    for s in stage.log() {
        match s {
            Seen::Sent { worker, len, .. } => out[worker] += i64::from(len),
            Seen::Done { worker, .. } | Seen::Died { worker, .. } => out[worker] -= 1,
            Seen::Handed { .. } => {}
        }
        assert!(out.iter().sum::<i64>() <= 4, "{out:?}");
    }
    // While task 0 was held, results ran ahead of the output up to 64 × max_tasks_active,
    // and no further.
    let pulled = stage.pulled_when_0_done.load(Ordering::SeqCst);
    assert!((4..=64 * 4 + 1).contains(&pulled), "pulled {pulled}");
}

#[test]
fn a_worker_dying_while_sending_has_its_chunk_run_again() {
    let (mut p, stage) = pool(Script {
        dies_sending: vec![6],
        ..Script::default()
    });
    // The lost chunk's first task is named as the one lost (an attempt): with a retry, the
    // chunk runs again and every result comes back.
    let opts = MapOptions::default().chunk_size(2).keep_going(1);
    let out = p
        .map_results(|x: u64| x + 1, counted(&stage, 20), opts)
        .unwrap();
    let got: Vec<u64> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, (1..=20).collect::<Vec<_>>());
    assert_eq!(stage.sent(6), 2, "{:?}", stage.log());
    // Without keep-going, the death ends the call and names the worker.
    let (mut p, stage) = pool(Script {
        dies_sending: vec![6],
        ..Script::default()
    });
    let opts = MapOptions::default().chunk_size(2);
    let e = p
        .map_with(|x: u64| x + 1, counted(&stage, 20), opts)
        .unwrap_err();
    let died = stage
        .log()
        .into_iter()
        .find_map(|s| match s {
            Seen::Died { worker, .. } => Some(worker),
            _ => None,
        })
        .unwrap();
    let f = e.failure().expect("a worker failure");
    assert_eq!((&f.cause, f.worker), (&Cause::WorkerDied, died), "{e}");
    assert!(
        f.message.contains("scripted death while sending chunk 6"),
        "{e}"
    );
}

/// An `apply_async` task handed to a worker that has died, before the pool has heard of the
/// death, is refused by the back end: it never reached the worker, and runs elsewhere. It
/// failed with "no worker: broken pipe" (a task sent to a dying worker process, seen once in
/// a run of the suite's `a_task_behind_one_that_kills_its_worker_still_runs`).
#[test]
fn an_apply_task_refused_by_a_dead_worker_runs_elsewhere() {
    let (mut p, stage) = pool(Script {
        dies_after: vec![0],
        ..Script::default()
    });
    assert_eq!(p.apply(|x: u64| x + 1, 0).unwrap(), 1);
    // Its worker is dead and not yet known to be: both workers look idle, so each gets one of
    // the next tasks.
    let rest: Vec<_> = (1..=6u64)
        .map(|i| p.apply_async(|x: u64| x * 10, i).unwrap())
        .collect();
    for (i, r) in (1..=6u64).zip(rest) {
        let got = r.get(Some(Duration::from_secs(10)));
        assert_eq!(
            got.as_ref().ok(),
            Some(&(i * 10)),
            "task {i}: {got:?} {:?}",
            stage.log()
        );
    }
}

#[test]
fn a_hung_task_times_out_and_is_retried() {
    let (mut p, stage) = pool(Script {
        hangs: vec![(9, 1)],
        ..Script::default()
    });
    let opts = MapOptions::default()
        .chunk_size(4)
        .task_timeout(Duration::from_millis(200))
        .keep_going(1);
    let out = p
        .map_results(|x: u64| x, counted(&stage, 16), opts)
        .unwrap();
    let got: Vec<u64> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, (0..16).collect::<Vec<_>>());
    // The chunk at 8 was lost with 9 running: 8 ran again with 10 and 11, and 9 alone.
    let log = stage.log();
    assert_eq!(stage.sent(8), 2, "{log:?}");
    assert_eq!(stage.sent(9), 1, "{log:?}");
}

#[test]
fn a_task_that_fails_every_attempt_reports_them_all() {
    let (mut p, stage) = pool(Script {
        hangs: vec![(9, 3)],
        ..Script::default()
    });
    let limit = Duration::from_millis(200);
    let opts = MapOptions::default()
        .chunk_size(4)
        .task_timeout(limit)
        .keep_going(2);
    let out = p
        .map_results(|x: u64| x, counted(&stage, 16), opts)
        .unwrap();
    for (i, r) in out.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, i as u64),
            Err(e) => {
                assert_eq!(i, 9, "{e}");
                let f = e.failure().unwrap();
                assert_eq!(
                    (&f.cause, f.attempts, f.task),
                    (&Cause::Timeout(limit), 3, Some(9))
                );
                assert_eq!(f.args.as_deref(), Some("9"));
                assert_eq!(f.earlier.len(), 2, "{e}");
                assert!(e.to_string().contains("after 3 attempts"), "{e}");
            }
        }
    }
    assert!(out[9].is_err());
}

#[test]
fn without_keep_going_a_timeout_names_the_task_and_its_arguments() {
    let (mut p, stage) = pool(Script {
        hangs: vec![(5, 1)],
        ..Script::default()
    });
    let opts = MapOptions::default()
        .chunk_size(3)
        .task_timeout(Duration::from_millis(200));
    let e = p
        .map_with(|x: u64| x, counted(&stage, 12), opts)
        .unwrap_err();
    let f = e.failure().unwrap();
    assert_eq!((f.task, f.args.as_deref()), (Some(5), Some("5")), "{e}");
    // The pool works again.
    assert_eq!(p.map(|x: u64| x, 0..4u64).unwrap(), vec![0, 1, 2, 3]);
}

/// Tasks from 300 on take 2 ms; the ones before, nothing.
fn slow_from_300(x: u64) -> u64 {
    if x >= 300 {
        std::thread::sleep(Duration::from_millis(2));
    }
    x
}

/// The chunks the pool handed out, in order: `(worker, first, len)`.
fn handed(log: &[Seen]) -> Vec<(usize, u64, u32)> {
    log.iter()
        .filter_map(|s| match *s {
            Seen::Handed { worker, first, len } => Some((worker, first, len)),
            _ => None,
        })
        .collect()
}

#[test]
fn chunks_shrink_in_the_tail_and_none_waits_in_a_busy_hand() {
    let (mut p, stage) = pool(Script::default());
    // 400 tasks in 8 splits: chunks of 50 while nothing says the work is slow.
    let opts = MapOptions::default().n_splits(8);
    let out = p
        .map_with(slow_from_300, counted(&stage, 400), opts)
        .unwrap();
    assert_eq!(out, (0..400).collect::<Vec<_>>());
    let log = stage.log();
    let chunks = handed(&log);
    // Every task handed out once, in order, no chunk over the split size.
    let mut next = 0;
    for &(_, first, len) in &chunks {
        assert_eq!(first, next, "{chunks:?}");
        assert!((1..=50).contains(&len), "{chunks:?}");
        next += u64::from(len);
    }
    assert_eq!(next, 400);
    // Once tasks turned slow, chunks shrank with the tasks left: the last ones are small.
    let last: Vec<u32> = chunks.iter().rev().take(2).map(|c| c.2).collect();
    assert!(last.iter().all(|&l| l <= 10), "{chunks:?}");
    // From the first shrunken chunk on (the tail), a chunk went only to a worker with nothing
    // in hand: none waited in one worker's hand while another worker could run it.
    let mut in_hand = [0i32; 2];
    let mut tail = false;
    for s in &log {
        match *s {
            Seen::Handed { worker, len, .. } => {
                tail |= len < 50;
                if tail {
                    assert_eq!(in_hand[worker], 0, "{s:?} in the tail: {log:?}");
                }
                in_hand[worker] += 1;
            }
            Seen::Done { worker, .. } | Seen::Died { worker, .. } => in_hand[worker] -= 1,
            Seen::Sent { .. } => {}
        }
    }
    assert!(tail, "{chunks:?}");
}

#[test]
fn a_chunk_size_given_stays_the_grid() {
    let (mut p, stage) = pool(Script::default());
    let opts = MapOptions::default().chunk_size(7);
    let out = p
        .map_with(slow_from_300, counted(&stage, 400), opts)
        .unwrap();
    assert_eq!(out, (0..400).collect::<Vec<_>>());
    // Chunks of 7, or runs of them while they were micro, never cut anywhere else.
    let mut chunks = handed(&stage.log());
    chunks.sort_by_key(|c| c.1);
    let mut next = 0;
    for &(_, first, len) in &chunks {
        assert_eq!(first, next, "{chunks:?}");
        next += u64::from(len);
        assert!(len % 7 == 0 || next == 400, "{chunks:?}");
    }
    assert_eq!(next, 400);
}

#[test]
fn micro_chunks_travel_in_runs_and_slow_ones_alone() {
    // Instant tasks: once both workers' chunks came back micro (< 10 µs each over two runs'
    // worth), eight go as one run. How quick the pool is depends on the machine's load (and a
    // debug build), so calls may try for up to ten seconds (a busy CI machine with builds
    // beside it made ten calls in a row too slow); one is enough.
    let (mut p, stage) = pool(Script::default());
    let opts = MapOptions::default().chunk_size(1);
    let mut calls = Vec::new();
    let tried_since = std::time::Instant::now();
    while calls.len() < 10 || tried_since.elapsed() < Duration::from_secs(10) {
        stage.log.lock().unwrap().clear();
        let out = p.map_with(|x: u64| x, 0..2000u64, opts.clone()).unwrap();
        assert_eq!(out, (0..2000).collect::<Vec<_>>());
        let mut chunks = handed(&stage.log());
        assert_eq!(
            chunks[0].2, 1,
            "the first chunks go alone, before their pace is known"
        );
        // In input order, every chunk but the last (cut short by the input's end) is one
        // task or a run of eight.
        chunks.sort_by_key(|c| c.1);
        let lens: Vec<u32> = chunks.iter().map(|c| c.2).collect();
        let (last, before) = lens.split_last().unwrap();
        assert!(before.iter().all(|&l| l == 1 || l == 8), "{lens:?}");
        assert!((1..=8).contains(last), "{lens:?}");
        let runs = lens.iter().filter(|&&l| l == 8).count();
        calls.push(runs);
        if runs > 0 {
            break;
        }
    }
    assert!(calls.iter().any(|&r| r > 0), "runs per call: {calls:?}");
    // Tasks of a millisecond are never micro: each goes alone, as asked.
    drop(p);
    let (mut p, stage) = pool(Script::default());
    let slow = |x: u64| {
        std::thread::sleep(Duration::from_millis(1));
        x
    };
    let out = p.map_with(slow, counted(&stage, 60), opts).unwrap();
    assert_eq!(out, (0..60).collect::<Vec<_>>());
    let lens: Vec<u32> = handed(&stage.log()).iter().map(|c| c.2).collect();
    assert_eq!(lens, vec![1; 60]);
}
