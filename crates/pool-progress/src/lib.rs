//! Progress rendering for pool: indicatif bars on a terminal, plain log lines elsewhere, and a
//! hook for the dashboard. (Being built: see issue #4.)

use pool_core::{CallInfo, ProgressSink};

/// The renderer for a call that asked for progress, honouring its style and the global
/// default.
pub fn sink_for(_info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
    None
}
