//! What the dashboard knows: processes, pools and calls, as the page and the API show them.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use pool_core::{Outcome, Status};
use serde::Serialize;

use super::names::short_function;
use crate::protocol::{Event, ProcessInfo, Report, WorkerSummary};

/// Calls kept; beyond this the oldest finished calls are forgotten.
pub(crate) const MAX_CALLS: usize = 1000;
/// Task-failure messages kept per call.
const MAX_TASK_ERRORS: usize = 20;

/// How a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CallState {
    Running,
    Done,
    Failed,
    Interrupted,
}

/// One call, flattened for the page.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CallView {
    pub(crate) key: String,
    pub(crate) pool_key: String,
    pub(crate) process_id: String,
    pub(crate) pool_id: u64,
    pub(crate) call_id: u64,
    pub(crate) method: String,
    /// The task function, without the pool's wrappers around it.
    pub(crate) function: String,
    /// The type name as reported.
    pub(crate) function_full: String,
    pub(crate) location: String,
    pub(crate) n_jobs: usize,
    pub(crate) start_method: String,
    pub(crate) desc: Option<String>,
    pub(crate) unit: String,
    pub(crate) state: CallState,
    pub(crate) total: Option<u64>,
    pub(crate) submitted: u64,
    pub(crate) running: u64,
    pub(crate) done: u64,
    pub(crate) failed: u64,
    pub(crate) elapsed_s: f64,
    pub(crate) rate: f64,
    pub(crate) eta_s: Option<f64>,
    pub(crate) error: Option<String>,
    pub(crate) task_errors: Vec<String>,
    pub(crate) insights: Option<Vec<WorkerSummary>>,
    pub(crate) started_at_ms: u64,
    pub(crate) updated_at_ms: u64,
    pub(crate) finished_at_ms: Option<u64>,
    #[serde(skip)]
    seq: u64,
}

impl CallView {
    fn set_status(&mut self, s: &Status) {
        self.total = s.total;
        self.submitted = s.submitted;
        self.running = s.running;
        self.done = s.done;
        self.failed = s.failed;
        self.elapsed_s = s.elapsed.as_secs_f64();
        self.rate = if s.rate.is_finite() { s.rate } else { 0.0 };
        self.eta_s = s.eta.map(|d| d.as_secs_f64());
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProcessView {
    #[serde(flatten)]
    pub(crate) info: ProcessInfo,
    pub(crate) first_seen_ms: u64,
    pub(crate) last_seen_ms: u64,
}

/// A pool and its calls, for `GET /api/calls`.
#[derive(Debug, Serialize)]
pub(crate) struct PoolView<'a> {
    pub(crate) key: String,
    pub(crate) pool_id: u64,
    pub(crate) process: &'a ProcessView,
    pub(crate) n_jobs: usize,
    pub(crate) start_method: &'a str,
    pub(crate) calls: Vec<&'a CallView>,
}

/// Everything, for `GET /api/calls` and the first SSE event.
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot<'a> {
    pub(crate) version: &'static str,
    pub(crate) now_ms: u64,
    pub(crate) pools: Vec<PoolView<'a>>,
}

/// What applying a report did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) accepted: usize,
    pub(crate) ignored: usize,
    pub(crate) changed: Vec<CallView>,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    processes: HashMap<String, ProcessView>,
    calls: HashMap<String, CallView>,
    next_seq: u64,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Store {
    pub(crate) fn apply(&mut self, report: Report) -> Applied {
        let now = now_ms();
        let pid = report.process.id.clone();
        self.processes
            .entry(pid.clone())
            .and_modify(|p| {
                p.last_seen_ms = now;
                p.info = report.process.clone();
            })
            .or_insert_with(|| ProcessView {
                info: report.process.clone(),
                first_seen_ms: now,
                last_seen_ms: now,
            });
        let mut out = Applied::default();
        let mut changed: Vec<String> = Vec::new();
        for event in report.events {
            let (pool_id, call_id) = event.call();
            let key = format!("{pid}/{pool_id}/{call_id}");
            if let Event::Start { info } = &event {
                self.next_seq += 1;
                let view = CallView {
                    key: key.clone(),
                    pool_key: format!("{pid}/{}", info.pool_id),
                    process_id: pid.clone(),
                    pool_id: info.pool_id,
                    call_id: info.call_id,
                    method: info.method.clone(),
                    function: short_function(&info.function),
                    function_full: info.function.clone(),
                    location: info.location.clone(),
                    n_jobs: info.n_jobs,
                    start_method: info.start_method.clone(),
                    desc: info.spec.desc.clone(),
                    unit: info.spec.unit.clone(),
                    state: CallState::Running,
                    total: info.spec.total,
                    submitted: 0,
                    running: 0,
                    done: 0,
                    failed: 0,
                    elapsed_s: 0.0,
                    rate: 0.0,
                    eta_s: None,
                    error: None,
                    task_errors: Vec::new(),
                    insights: None,
                    started_at_ms: now,
                    updated_at_ms: now,
                    finished_at_ms: None,
                    seq: self.next_seq,
                };
                self.calls.insert(key.clone(), view);
            } else {
                let Some(call) = self.calls.get_mut(&key) else {
                    out.ignored += 1;
                    continue;
                };
                call.updated_at_ms = now;
                match event {
                    Event::Start { .. } => unreachable!("handled above"),
                    Event::Update { status, .. } => call.set_status(&status),
                    Event::TaskFailed { message, .. } => {
                        if call.task_errors.len() < MAX_TASK_ERRORS {
                            call.task_errors.push(message);
                        }
                    }
                    Event::Timings { workers, .. } => call.insights = Some(workers),
                    Event::Finish {
                        status, outcome, ..
                    } => {
                        call.set_status(&status);
                        call.finished_at_ms = Some(now);
                        call.state = match outcome {
                            Outcome::Done => CallState::Done,
                            Outcome::Failed(msg) => {
                                call.error = Some(msg);
                                CallState::Failed
                            }
                            Outcome::Interrupted => CallState::Interrupted,
                        };
                    }
                }
            }
            out.accepted += 1;
            if !changed.contains(&key) {
                changed.push(key);
            }
        }
        self.evict();
        out.changed = changed
            .iter()
            .filter_map(|k| self.calls.get(k).cloned())
            .collect();
        out
    }

    fn evict(&mut self) {
        while self.calls.len() > MAX_CALLS {
            let oldest = self
                .calls
                .values()
                .filter(|c| c.state != CallState::Running)
                .min_by_key(|c| c.seq)
                .or_else(|| self.calls.values().min_by_key(|c| c.seq))
                .map(|c| c.key.clone());
            match oldest {
                Some(k) => self.calls.remove(&k),
                None => break,
            };
        }
        let live: std::collections::HashSet<&str> =
            self.calls.values().map(|c| c.process_id.as_str()).collect();
        if self.processes.len() > live.len() + 100 {
            self.processes.retain(|id, _| live.contains(id.as_str()));
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot<'_> {
        let mut calls: Vec<&CallView> = self.calls.values().collect();
        calls.sort_by_key(|c| c.seq);
        let mut pools: Vec<PoolView<'_>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for c in calls {
            let Some(process) = self.processes.get(&c.process_id) else {
                continue;
            };
            let i = *index.entry(c.pool_key.as_str()).or_insert_with(|| {
                pools.push(PoolView {
                    key: c.pool_key.clone(),
                    pool_id: c.pool_id,
                    process,
                    n_jobs: c.n_jobs,
                    start_method: &c.start_method,
                    calls: Vec::new(),
                });
                pools.len() - 1
            });
            pools[i].calls.push(c);
        }
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            now_ms: now_ms(),
            pools,
        }
    }
}

impl Store {
    pub(crate) fn process(&self, id: &str) -> Option<&ProcessView> {
        self.processes.get(id)
    }
}
