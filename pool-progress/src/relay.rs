//! Bars of forked workers, drawn by the process that forked them.
//!
//! A forked worker inherits the parent's board (its `MultiProgress`, with the outer bar on
//! it); drawing there, each worker would repaint its own stale copy of the parent's bars.
//! Instead, the bars of forked workers go to the parent:
//!
//! 1. The first bar a process draws (or [`crate::prepare_for_forks`]) starts its relay: a datagram socket pair and a thread that
//!    reads one end. The other end stays open; a forked worker inherits it with the rest of the
//!    process, and the relay records which process owns it. (Spawned workers re-execute and
//!    inherit nothing: the socket is close-on-exec.)
//! 2. In any other process that holds the relay (a forked worker, or a worker of a worker), a
//!    call that would draw a bar on the same target gets a [`RemoteBar`]: each of its events
//!    is one datagram (`serde_json`), sent without blocking. Updates are dropped while the
//!    socket is full; start, failures and the end wait for room a little. `pool::println` in
//!    such a process sends its line the same way.
//! 3. The relay thread gives each remote call a [`BarSink`] of the owner's and feeds it the
//!    events: the bar lands on the owner's board at its position and stacks with the owner's
//!    bars exactly as the bars of thread workers do.
//! 4. A worker that dies mid-call (a timeout, a crash) sends no end: about every second the
//!    relay ends the bars of processes that are gone, as interrupted.
//! 5. Every datagram a process sends is counted in a page the owner maps before any fork and
//!    all its descendants share; the relay thread counts what it has drawn. When a call of the
//!    owner ends (with or without a bar of its own: [`pool_core::call_end`]) and when a bar of
//!    the owner ends, [`settle`] waits until the relay has drawn as many as were sent by then.
//!    Workers send before they hand back the result that ends the call, so a finished outer
//!    bar never sits above inner bars still catching up, and what the caller prints after the
//!    call lands below what its workers printed. With nothing outstanding, settling is two
//!    atomic loads.
//! 6. The relay thread draws while holding off forks ([`pool_core::panic::hold_off_forks`]), so
//!    no worker is forked while it holds the terminal's or the board's lock.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::num::NonZeroUsize;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pool_core::{CallInfo, Outcome, ProgressSink, Status};
use serde::{Deserialize, Serialize};

use crate::bar::BarSink;
use crate::settings::DrawTarget;

/// The longest failure message or printed line sent (only the first line of a failure is
/// shown; lines are cut, never split).
const MAX_TEXT: usize = 16 * 1024;
/// How often the relay looks for workers that died mid-call.
const REAP_EVERY: Duration = Duration::from_secs(1);
/// How long a start, a failure or an end waits for room in the socket.
const SEND_PATIENCE: Duration = Duration::from_millis(200);
/// How long [`settle`] waits for the relay.
const SETTLE_PATIENCE: Duration = Duration::from_secs(1);

struct Relay {
    owner: u32,
    target_key: usize,
    sender: UnixDatagram,
    /// Datagrams sent by this process and every process forked from it (a shared page).
    sent: &'static AtomicU64,
    /// Datagrams the relay thread has received and drawn.
    drawn: AtomicU64,
    /// Held to wait for `drawn` to grow, and by the relay thread to announce it.
    drawn_lock: Mutex<()>,
    drawn_cv: Condvar,
}

static RELAY: OnceLock<Relay> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static ON_RELAY_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[derive(Debug, Serialize, Deserialize)]
struct Message {
    pid: u32,
    call: u64,
    event: Event,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    Start { info: CallInfo },
    Update { status: Status },
    TaskFailed { message: String },
    Finish { status: Status, outcome: Outcome },
    Println { line: String },
}

/// Starts this process's relay (once), drawing on `target`.
pub(crate) fn start(target: &DrawTarget) {
    if RELAY.get().is_some() {
        return;
    }
    let Ok((sender, receiver)) = UnixDatagram::pair() else {
        return;
    };
    if sender.set_nonblocking(true).is_err() {
        return;
    }
    let Some(sent) = shared_counter() else {
        return;
    };
    let relay = Relay {
        owner: std::process::id(),
        target_key: target.key(),
        sender,
        sent,
        drawn: AtomicU64::new(0),
        drawn_lock: Mutex::new(()),
        drawn_cv: Condvar::new(),
    };
    if RELAY.set(relay).is_err() {
        return; // Another thread was first.
    }
    let target = target.clone();
    let spawned = std::thread::Builder::new()
        .name("pool-progress-relay".into())
        .spawn(move || serve(receiver, target));
    match spawned {
        Ok(_) => {
            pool_core::call_end::set(settle);
        }
        // The receiving end went with the thread: workers' sends fail and count nothing.
        Err(_) => eprintln!(
            "warning: pool-progress: no relay thread; bars of forked workers are not drawn"
        ),
    }
}

/// A counter in a page shared with every process forked from now on, never unmapped.
fn shared_counter() -> Option<&'static AtomicU64> {
    let len = NonZeroUsize::new(std::mem::size_of::<AtomicU64>())?;
    use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
    // SAFETY: a fresh anonymous mapping aliases nothing; it is zeroed (a valid `AtomicU64` of
    // 0), page-aligned, never unmapped (so `'static` holds), and `MAP_SHARED` makes its one
    // counter the same memory in every process forked later, where only atomics touch it.
    unsafe {
        let page = mmap_anonymous(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
        .ok()?;
        Some(&*page.as_ptr().cast::<AtomicU64>())
    }
}

/// The relay of an ancestor process, when this process inherited one for `target`.
fn inherited(target: &DrawTarget) -> Option<&'static Relay> {
    RELAY
        .get()
        .filter(|r| r.owner != std::process::id() && r.target_key == target.key())
}

/// Whether this process is a forked worker of a process that draws bars on `target`.
pub(crate) fn parent_draws(target: &DrawTarget) -> bool {
    inherited(target).is_some()
}

/// A sink that has the parent draw this call's bar, when this process is a forked worker of a
/// process that draws bars on `target`.
pub(crate) fn remote_bar(target: &DrawTarget) -> Option<RemoteBar> {
    inherited(target).map(|relay| RemoteBar {
        relay,
        call: NEXT.fetch_add(1, Ordering::Relaxed),
        started: false,
        last: None,
    })
}

/// Has the parent print `line` above its bars; `false` when this process has no parent that
/// draws on `target`.
pub(crate) fn println(target: &DrawTarget, line: &str) -> bool {
    let Some(relay) = inherited(target) else {
        return false;
    };
    let line = cut(line).to_string();
    send(relay, 0, Event::Println { line }, true);
    true
}

/// Waits (at most [`SETTLE_PATIENCE`]) until the relay has drawn what was sent to it so far.
/// In the owner, when a call or a bar ends; does nothing elsewhere.
pub(crate) fn settle() {
    let Some(relay) = RELAY.get() else { return };
    let sent = relay.sent.load(Ordering::SeqCst);
    if relay.drawn.load(Ordering::SeqCst) >= sent
        || relay.owner != std::process::id()
        || ON_RELAY_THREAD.with(|t| t.get())
    {
        return;
    }
    let deadline = Instant::now() + SETTLE_PATIENCE;
    let mut guard = relay.drawn_lock.lock().unwrap_or_else(|e| e.into_inner());
    while relay.drawn.load(Ordering::SeqCst) < sent {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        guard = relay
            .drawn_cv
            .wait_timeout(guard, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn cut(text: &str) -> &str {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Sends one event; `wait`: retry for [`SEND_PATIENCE`] while the socket is full. Only
/// allocation and a system call: safe in a child forked from a multi-threaded process.
fn send(relay: &Relay, call: u64, event: Event, wait: bool) -> bool {
    let message = Message {
        pid: std::process::id(),
        call,
        event,
    };
    let Ok(bytes) = serde_json::to_vec(&message) else {
        return false;
    };
    let deadline = Instant::now() + SEND_PATIENCE;
    loop {
        match relay.sender.send(&bytes) {
            Ok(_) => {
                // Counted before the sender goes on to hand back a result: see step 5.
                relay.sent.fetch_add(1, Ordering::SeqCst);
                return true;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock && wait && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return false,
        }
    }
}

/// The sink of a call in a forked worker: its events go to the parent, which draws the bar.
#[derive(Debug)]
pub(crate) struct RemoteBar {
    relay: &'static Relay,
    call: u64,
    started: bool,
    last: Option<Status>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl ProgressSink for RemoteBar {
    fn start(&mut self, info: &CallInfo) {
        let info = info.clone();
        self.started = send(self.relay, self.call, Event::Start { info }, true);
    }

    fn update(&mut self, status: &Status) {
        if self.started {
            self.last = Some(status.clone());
            let status = status.clone();
            send(self.relay, self.call, Event::Update { status }, false);
        }
    }

    fn task_failed(&mut self, message: &str) {
        if self.started {
            let message = cut(message).to_string();
            send(self.relay, self.call, Event::TaskFailed { message }, true);
        }
    }

    fn finish(&mut self, status: &Status, outcome: &Outcome) {
        if std::mem::take(&mut self.started) {
            let (status, outcome) = (status.clone(), outcome.clone());
            send(
                self.relay,
                self.call,
                Event::Finish { status, outcome },
                true,
            );
        }
    }
}

impl Drop for RemoteBar {
    /// Dropped before `finish` (the driving code unwound): the bar ends as interrupted.
    fn drop(&mut self) {
        if std::mem::take(&mut self.started) {
            let status = ended(self.last.take());
            let outcome = Outcome::Interrupted;
            send(
                self.relay,
                self.call,
                Event::Finish { status, outcome },
                true,
            );
        }
    }
}

/// The last status of a call that ends without its own final one.
fn ended(last: Option<Status>) -> Status {
    let mut status = last.unwrap_or(Status {
        total: None,
        submitted: 0,
        running: 0,
        done: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        rate: 0.0,
        eta: None,
        active: false,
    });
    status.active = false;
    status.running = 0;
    status
}

/// A remote call's bar, drawn here.
struct Drawn {
    sink: BarSink,
    last: Option<Status>,
}

/// The relay thread: draws what workers send, ends the bars of workers that died.
fn serve(receiver: UnixDatagram, target: DrawTarget) {
    ON_RELAY_THREAD.with(|t| t.set(true));
    let _ = receiver.set_read_timeout(Some(REAP_EVERY));
    let mut bars: HashMap<(u32, u64), Drawn> = HashMap::new();
    let mut buf = vec![0u8; MAX_TEXT * 2 + 4096];
    let mut reaped = Instant::now();
    loop {
        match receiver.recv(&mut buf) {
            Ok(n) => {
                if let Ok(m) = serde_json::from_slice::<Message>(&buf[..n]) {
                    pool_core::panic::hold_off_forks(|| apply(&mut bars, &target, m));
                }
                drew_one();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
        if reaped.elapsed() >= REAP_EVERY && !bars.is_empty() {
            reaped = Instant::now();
            pool_core::panic::hold_off_forks(|| end_bars_of_gone_workers(&mut bars));
        }
    }
}

fn apply(bars: &mut HashMap<(u32, u64), Drawn>, target: &DrawTarget, m: Message) {
    let key = (m.pid, m.call);
    match m.event {
        Event::Start { info } => {
            let mut sink = BarSink::for_call(target.clone(), &info);
            sink.start(&info);
            bars.insert(key, Drawn { sink, last: None });
        }
        Event::Update { status } => {
            if let Some(d) = bars.get_mut(&key) {
                d.sink.update(&status);
                d.last = Some(status);
            }
        }
        Event::TaskFailed { message } => {
            if let Some(d) = bars.get_mut(&key) {
                d.sink.task_failed(&message);
            }
        }
        Event::Finish { status, outcome } => {
            if let Some(mut d) = bars.remove(&key) {
                d.sink.finish(&status, &outcome);
            }
        }
        Event::Println { line } => crate::print_above(target, &line),
    }
}

/// The relay thread has drawn one more datagram: wakes whoever [`settle`]s.
fn drew_one() {
    if let Some(relay) = RELAY.get() {
        let _guard = relay.drawn_lock.lock().unwrap_or_else(|e| e.into_inner());
        relay.drawn.fetch_add(1, Ordering::SeqCst);
        relay.drawn_cv.notify_all();
    }
}

fn end_bars_of_gone_workers(bars: &mut HashMap<(u32, u64), Drawn>) {
    let gone: Vec<(u32, u64)> = bars
        .keys()
        .copied()
        .filter(|(pid, _)| !alive(*pid))
        .collect();
    for key in gone {
        if let Some(mut d) = bars.remove(&key) {
            let status = ended(d.last.take());
            d.sink.finish(&status, &Outcome::Interrupted);
        }
    }
}

/// Whether process `pid` still runs (a zombie does not).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_processes_are_alive_and_zombies_are_not() {
        assert!(alive(std::process::id()));
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(alive(sleeper.id()));
        sleeper.kill().unwrap();
        // Killed but not yet reaped: a zombie, gone as far as its bars are concerned.
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(sleeper.id()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(sleeper.id()), "a zombie is not alive");
        let pid = sleeper.id();
        sleeper.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_TEXT);
        let cut = cut(&text);
        assert!(cut.len() <= MAX_TEXT && text.starts_with(cut));
        assert_eq!(super::cut("short"), "short");
    }

    #[test]
    fn events_round_trip_as_datagrams() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let m = Message {
            pid: 7,
            call: 3,
            event: Event::Finish {
                status: ended(None),
                outcome: Outcome::Failed("task #1 panicked\nworker backtrace:\n...".into()),
            },
        };
        a.send(&serde_json::to_vec(&m).unwrap()).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = b.recv(&mut buf).unwrap();
        let back: Message = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!((back.pid, back.call), (7, 3));
        assert!(matches!(
            back.event,
            Event::Finish { outcome: Outcome::Failed(ref e), .. } if e.starts_with("task #1")
        ));
    }
}
