//! The process-wide connection that every pool of the process reports through.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pool_core::{CallInfo, ProgressSink, ProgressStyle};

use crate::client::DashboardClient;
use crate::error::DashboardError;

static GLOBAL: Mutex<Option<Arc<DashboardClient>>> = Mutex::new(None);
static FROM_ENV: std::sync::Once = std::sync::Once::new();

/// Environment variable naming a dashboard to connect to when the program did not call
/// [`connect_to_dashboard`]: `host:port` (with [`TOKEN_ENV`] holding the token).
pub const ADDR_ENV: &str = "POOL_DASHBOARD";
/// Environment variable holding the dashboard's token, with [`ADDR_ENV`].
pub const TOKEN_ENV: &str = "POOL_DASHBOARD_TOKEN";

fn global() -> MutexGuard<'static, Option<Arc<DashboardClient>>> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes every pool of this process report to the dashboard at `addr` (`host:port`, as printed
/// by `pool dashboard` or [`DashboardHandle::addr`](crate::DashboardHandle::addr)), with the
/// token the dashboard printed. The address and token are checked with one request; a previous
/// connection is replaced.
///
/// From then on, every call with a progress bar shows up on the dashboard. If the dashboard
/// goes away later, the pools keep working: one warning is printed and reports are dropped.
pub fn connect_to_dashboard(addr: &str, token: &str) -> Result<(), DashboardError> {
    let client = Arc::new(DashboardClient::connect(addr, token)?);
    FROM_ENV.call_once(|| {});
    let old = global().replace(client);
    if let Some(old) = old {
        old.close(Duration::from_millis(500));
    }
    Ok(())
}

/// Stops reporting: sends what is queued (waiting at most a second) and forgets the dashboard.
pub fn disconnect() {
    FROM_ENV.call_once(|| {});
    let old = global().take();
    if let Some(old) = old {
        old.close(Duration::from_secs(1));
    }
}

/// Whether this process reports to a dashboard.
pub fn is_connected() -> bool {
    global().is_some()
}

/// The sink that reports `info`'s call to the connected dashboard, or `None` when the process
/// is not connected (or the call hides its progress). The `pool` facade calls this for every
/// call with a progress bar.
///
/// When not connected, the first call looks once at [`ADDR_ENV`] and [`TOKEN_ENV`]; a failed
/// connection from the environment prints one warning.
pub fn reporter_for(info: &CallInfo) -> Option<Box<dyn ProgressSink>> {
    if info.spec.style == ProgressStyle::Hidden {
        return None;
    }
    FROM_ENV.call_once(connect_from_env);
    let mut g = global();
    let client = g.as_ref()?;
    if client.process().pid != std::process::id() {
        // A forked child: the parent's sender thread does not exist here.
        let fresh = Arc::new(client.reconnect_here());
        *g = Some(Arc::clone(&fresh));
        return Some(fresh.reporter());
    }
    Some(client.reporter())
}

fn connect_from_env() {
    let Ok(addr) = std::env::var(ADDR_ENV) else {
        return;
    };
    let token = std::env::var(TOKEN_ENV).unwrap_or_default();
    match DashboardClient::connect(&addr, &token) {
        Ok(c) => *global() = Some(Arc::new(c)),
        Err(e) => eprintln!("warning: pool-dashboard: {ADDR_ENV}={addr}: {e}"),
    }
}
