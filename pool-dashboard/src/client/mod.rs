//! The reporting client: a connection to a dashboard that never blocks the pool.
//!
//! 1. Sinks push events into a small queue under a mutex held for a few instructions; a
//!    progress update replaces the call's pending update instead of queueing behind it (keep
//!    the latest), so the queue holds at most one update per call.
//! 2. A background thread takes the whole queue at most every [`SEND_INTERVAL`] (at once for
//!    starts and ends) and POSTs it as one report, with short timeouts (see [`http`]).
//! 3. When a report cannot be delivered, the process prints one warning to stderr, the batch is
//!    dropped, and the thread waits [`RETRY_AFTER`] before trying again; meanwhile the queue
//!    keeps coalescing and drops events beyond [`MAX_QUEUED`]. Nothing ever waits on the
//!    network except the background thread, and `finish` waits at most [`FINISH_FLUSH`] (not at
//!    all while the dashboard is failing) so that short programs still show their last state.

mod http;
mod sink;

use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pool_core::ProgressSink;

pub(crate) use self::http::Target;
use self::http::{Limits, post_json};
use self::sink::DashboardSink;
use crate::error::DashboardError;
use crate::protocol::{Event, ProcessInfo, Report};

/// How often queued events are sent, at most.
pub const SEND_INTERVAL: Duration = Duration::from_millis(200);
/// The pause after a failed delivery.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Queued events beyond this are dropped (updates are coalesced and never count twice).
pub const MAX_QUEUED: usize = 4096;
/// How long `finish` waits for the call's last report to be delivered.
pub const FINISH_FLUSH: Duration = Duration::from_millis(1500);

/// One warning per process, whatever the number of connections.
static WARNED: AtomicBool = AtomicBool::new(false);

/// A connection to a dashboard, with its background sender thread.
///
/// Usually made by [`connect_to_dashboard`](crate::connect_to_dashboard) and used through
/// [`reporter_for`](crate::reporter_for); build one directly to report to several dashboards
/// or to keep the connection out of process-global state.
#[derive(Debug)]
pub struct DashboardClient {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    target: Target,
    process: ProcessInfo,
    queue: Mutex<Queue>,
    wake: Condvar,
    delivered: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    events: Vec<Event>,
    /// Index in `events` of each call's pending update.
    update_at: HashMap<(u64, u64), usize>,
    /// Send without waiting for the interval.
    urgent: bool,
    closed: bool,
    /// The last delivery attempt failed.
    failing: bool,
    enqueued: u64,
    attempted: u64,
    dropped: u64,
}

impl DashboardClient {
    /// Connects to the dashboard at `addr` (`host:port`, optionally with `http://`) with its
    /// token, checking both with one empty report.
    pub fn connect(addr: &str, token: &str) -> Result<Self, DashboardError> {
        let target = resolve(addr, token)?;
        let process = ProcessInfo::current();
        let body = serde_json::to_vec(&Report {
            process: process.clone(),
            events: Vec::new(),
        })
        .expect("a report serializes");
        match post_json(&target, "/api/report", &body, Limits::default()) {
            Ok((200..=299, _)) => Ok(Self::with_target(target, process)),
            Ok((status, message)) => Err(DashboardError::Refused {
                addr: target.display,
                status,
                message,
            }),
            Err(source) => Err(DashboardError::Unreachable {
                addr: target.display,
                source,
            }),
        }
    }

    /// A new connection to the same dashboard, for this process (after a fork, the sender
    /// thread of the parent does not exist in the child).
    pub(crate) fn reconnect_here(&self) -> Self {
        Self::with_target(self.shared.target.clone(), ProcessInfo::current())
    }

    fn with_target(target: Target, process: ProcessInfo) -> Self {
        let shared = Arc::new(Shared {
            target,
            process,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            delivered: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("pool-dashboard-reporter".into())
            .spawn(move || sender_loop(&s))
            .ok();
        DashboardClient {
            shared,
            thread: Mutex::new(thread),
        }
    }

    /// The process as the dashboard sees it.
    pub fn process(&self) -> &ProcessInfo {
        &self.shared.process
    }

    /// The dashboard's address, as given.
    pub fn addr(&self) -> &str {
        &self.shared.target.display
    }

    /// A progress sink that reports one call to this dashboard, from its `start` on.
    pub fn reporter(&self) -> Box<dyn ProgressSink> {
        Box::new(DashboardSink::new(Arc::clone(&self.shared)))
    }

    /// Waits until everything queued so far was sent (or failed to be), at most `timeout`.
    /// Returns whether it was delivered.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.shared.flush(timeout)
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// Sends what is queued (waiting at most `timeout`) and stops the sender thread.
    pub fn close(&self, timeout: Duration) {
        self.shared.flush(timeout);
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle
            && !self.shared.lock().failing
        {
            let _ = h.join();
        }
    }
}

impl Drop for DashboardClient {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, event: Event, urgent: bool) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        if let Event::Update { status, .. } = &event
            && let Some(&i) = q.update_at.get(&event.call())
        {
            if let Some(Event::Update { status: s, .. }) = q.events.get_mut(i) {
                *s = status.clone();
            }
            return;
        }
        if q.events.len() >= MAX_QUEUED {
            q.dropped += 1;
            return;
        }
        if let Event::Update { .. } = &event {
            let i = q.events.len();
            q.update_at.insert(event.call(), i);
        } else {
            // A later update must not move before this event.
            q.update_at.remove(&event.call());
        }
        let was_empty = q.events.is_empty();
        q.events.push(event);
        q.enqueued += 1;
        q.urgent |= urgent;
        if urgent || was_empty {
            // The sender sleeps until its next batch is due; one wake-up per batch.
            self.wake.notify_all();
        }
    }

    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut q = self.lock();
        let target = q.enqueued;
        q.urgent = true;
        self.wake.notify_all();
        while q.attempted < target && !q.failing && !q.closed {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            q = self
                .delivered
                .wait_timeout(q, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        q.attempted >= target && !q.failing
    }
}

fn sender_loop(shared: &Shared) {
    let mut last_send = Instant::now() - SEND_INTERVAL;
    let mut not_before = Instant::now();
    loop {
        let (events, upto) = {
            let mut q = shared.lock();
            loop {
                let now = Instant::now();
                let ready_at = if q.urgent {
                    not_before
                } else {
                    not_before.max(last_send + SEND_INTERVAL)
                };
                if !q.events.is_empty() && now >= ready_at {
                    break;
                }
                if q.closed {
                    return;
                }
                let wait = if q.events.is_empty() {
                    Duration::from_secs(3600)
                } else {
                    ready_at - now
                };
                q = shared
                    .wake
                    .wait_timeout(q, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            q.urgent = false;
            q.update_at.clear();
            (std::mem::take(&mut q.events), q.enqueued)
        };
        last_send = Instant::now();
        let report = Report {
            process: shared.process.clone(),
            events,
        };
        let result = match serde_json::to_vec(&report) {
            Ok(body) => post_json(&shared.target, "/api/report", &body, Limits::default())
                .map_err(|e| e.to_string())
                .and_then(|(status, msg)| match status {
                    200..=299 => Ok(()),
                    _ => Err(format!("HTTP {status}: {}", msg.trim())),
                }),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &result {
            not_before = Instant::now() + RETRY_AFTER;
            if !WARNED.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "warning: pool-dashboard: cannot report to the dashboard at {}: {e}; \
                     progress reports are dropped (the pool keeps working)",
                    shared.target.display
                );
            }
        }
        let mut q = shared.lock();
        q.attempted = upto;
        q.failing = result.is_err();
        shared.delivered.notify_all();
    }
}

fn resolve(addr: &str, token: &str) -> Result<Target, DashboardError> {
    let bad = |reason: &str| DashboardError::BadAddress {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = addr.trim();
    let hostport = trimmed
        .strip_prefix("http://")
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    if hostport.contains('/') || trimmed.starts_with("https://") {
        return Err(bad("expected host:port or http://host:port/"));
    }
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("the token must be non-empty printable ASCII"));
    }
    let sock = hostport
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .next()
        .ok_or_else(|| bad("resolves to no address"))?;
    Ok(Target {
        addr: sock,
        display: hostport.to_string(),
        token: token.to_string(),
    })
}
