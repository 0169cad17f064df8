//! Live dashboard for pool: a local web server that pools report their progress and insights to.
//!
//! Start a dashboard (here, or in another process with `pool dashboard`), connect the process
//! to it, and every map call with a progress bar shows up on its page, live: the function and
//! the line it was called from, progress, rate, ETA, status, the error when one happens, and
//! per-worker timings when insights are on.
//!
//! ```no_run
//! use pool_dashboard::{DashboardConfig, connect_to_dashboard, start_dashboard};
//!
//! let dashboard = start_dashboard(DashboardConfig::default())?;
//! println!("open {}", dashboard.url());
//! connect_to_dashboard(&dashboard.addr().to_string(), dashboard.token())?;
//! // ... run pools with progress bars ...
//! # Ok::<(), pool_dashboard::DashboardError>(())
//! ```
//!
//! # Protocol
//! - Every request must name the dashboard in `Host` (`localhost`, an IP address, or a name
//!   given to [`DashboardConfig::allow_host`]): 403 otherwise, against DNS rebinding.
//! - `GET /`: the page (static, embedded in the binary); opened at [`DashboardHandle::url`]
//!   (`/#token=...`), it follows `GET /api/events` with the token.
//! - `GET /api/calls` and `GET /api/events` need the token (`Authorization: Bearer <token>` or
//!   `?token=<token>`); 401 without it.
//! - `GET /api/calls`: every pool and call as JSON: `{"version", "now_ms", "pools": [{"key",
//!   "pool_id", "process": {"id", "pid", "host", "program", ..}, "n_jobs", "start_method",
//!   "calls": [{"key", "function", "location", "method", "state", "total", "done", "failed",
//!   "rate", "eta_s", "elapsed_s", "error", "task_errors", "insights", "started_at_ms",
//!   "finished_at_ms", ..}]}]}`. `insights` are the call's own (per-worker timings of its
//!   tasks only); `error` and `task_errors` carry the worker's backtrace.
//! - `GET /api/events`: server-sent events: one `snapshot` (the same JSON as `/api/calls`),
//!   then a `call` event (`{"process": .., "call": ..}`) each time a call changes.
//! - `POST /api/report` with `Authorization: Bearer <token>`: a [`Report`]. Answers
//!   `{"accepted": n, "ignored": n}`; 401 without the right token, 400 with `{"error": ..}`
//!   for a malformed report, 413 beyond [`MAX_REPORT_BYTES`].
//!
//! The server binds loopback by default; reports and reads need the token it printed.
//!
//! # Reporting never blocks the pool
//! See [`DashboardClient`]: events are coalesced in memory and sent by a background thread
//! with short timeouts; if the dashboard goes away, one warning is printed and reports are
//! dropped.

#![deny(missing_docs)]

mod client;
mod error;
mod global;
pub mod protocol;
#[cfg(feature = "server")]
mod server;
mod tee;

pub use client::{DashboardClient, FINISH_FLUSH, MAX_QUEUED, RETRY_AFTER, SEND_INTERVAL};
pub use error::DashboardError;
pub use global::{
    ADDR_ENV, TOKEN_ENV, connect_to_dashboard, disconnect, is_connected, reporter_for,
};
pub use protocol::{Event, ProcessInfo, Report, WorkerSummary};
#[cfg(feature = "server")]
pub use server::{
    DashboardConfig, DashboardHandle, MAX_REPORT_BYTES, SHUTDOWN_GRACE, parse_port_range,
    serve_blocking, start_dashboard,
};
pub use tee::{WithDashboard, with_dashboard};

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<crate::DashboardClient>();
        assert_send_sync::<crate::DashboardError>();
        #[cfg(feature = "server")]
        assert_send_sync::<crate::DashboardHandle>();
    }
}
