//! Showing a call both in the terminal and on the dashboard.

use pool_core::{CallInfo, Outcome, ProgressSink, ProgressStyle, Status, WorkerTimings};

use crate::global::reporter_for;

/// The sink for a call, given the one the terminal renderer made (`local`): with the style
/// `Dashboard` only the dashboard's; otherwise both when the process is connected, else
/// `local` alone. This is all the `pool` facade needs:
///
/// ```ignore
/// fn progress(info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
///     pool_dashboard::with_dashboard(info, pool_progress::sink_for(info))
/// }
/// ```
pub fn with_dashboard(
    info: &CallInfo,
    local: Option<Box<dyn ProgressSink>>,
) -> Option<Box<dyn ProgressSink>> {
    let remote = reporter_for(info);
    if info.spec.style == ProgressStyle::Dashboard {
        return remote;
    }
    match (local, remote) {
        (Some(a), Some(b)) => Some(Box::new(Tee([a, b]))),
        (a, b) => a.or(b),
    }
}

/// The progress piece of a `pool_core::Layers` that shows every call on the connected
/// dashboard, besides what the piece `P` shows (the `pool` facade uses
/// `WithDashboard<pool_progress::Bars>`).
pub struct WithDashboard<P = pool_core::NoProgress>(std::marker::PhantomData<fn() -> P>);

impl<P> std::fmt::Debug for WithDashboard<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WithDashboard")
    }
}

impl<P: pool_core::Progress> pool_core::Progress for WithDashboard<P> {
    fn sink(info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
        with_dashboard(info, P::sink(info))
    }
}

/// Two sinks fed the same events, in order.
struct Tee([Box<dyn ProgressSink>; 2]);

impl ProgressSink for Tee {
    fn start(&mut self, info: &CallInfo) {
        self.0.iter_mut().for_each(|s| s.start(info));
    }
    fn update(&mut self, status: &Status) {
        self.0.iter_mut().for_each(|s| s.update(status));
    }
    fn task_failed(&mut self, message: &str) {
        self.0.iter_mut().for_each(|s| s.task_failed(message));
    }
    fn timings(&mut self, timings: &[WorkerTimings]) {
        self.0.iter_mut().for_each(|s| s.timings(timings));
    }
    fn finish(&mut self, status: &Status, outcome: &Outcome) {
        self.0.iter_mut().for_each(|s| s.finish(status, outcome));
    }
}
