//! Helpers shared by the tests.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use pool_core::{Layers, RawInsights, StartMethod, Threads};
use pool_dashboard::{DashboardConfig, DashboardHandle};
use serde_json::Value;

/// Tests that use the process-global connection run one at a time.
static GLOBAL: Mutex<()> = Mutex::new(());

pub(crate) fn global_lock() -> MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pool whose progress goes to the connected dashboard, as the `pool` facade wires it.
pub(crate) type Pool =
    pool_core::WorkerPool<(), (), Layers<Threads, pool_dashboard::WithDashboard, RawInsights>>;

pub(crate) fn pool(n_jobs: usize, insights: bool) -> Pool {
    Pool::builder()
        .n_jobs(n_jobs)
        .start_method(StartMethod::Threading)
        .enable_insights(insights)
        .build()
        .expect("a thread pool builds")
}

/// A dashboard on a free loopback port with a known token.
pub(crate) fn dashboard() -> DashboardHandle {
    pool_dashboard::start_dashboard(DashboardConfig::default().port_range(0..=0).token("t0ken"))
        .expect("the dashboard starts")
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

pub(crate) fn url(d: &DashboardHandle, path: &str) -> String {
    format!("http://{}{path}", d.addr())
}

/// POSTs a raw body to `/api/report`; returns the status and the JSON answer.
pub(crate) fn post_report(d: &DashboardHandle, auth: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = agent()
        .post(url(d, "/api/report"))
        .header("Content-Type", "application/json");
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let mut resp = req.send(body).expect("the dashboard answers");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

pub(crate) fn calls(d: &DashboardHandle) -> Value {
    agent()
        .get(url(d, "/api/calls"))
        .header("Authorization", format!("Bearer {}", d.token()))
        .call()
        .expect("GET /api/calls")
        .body_mut()
        .read_json()
        .expect("JSON")
}

/// All calls of all pools, flattened.
pub(crate) fn all_calls(d: &DashboardHandle) -> Vec<Value> {
    calls(d)["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["calls"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Polls `f` until it returns `Some`, at most `timeout`.
pub(crate) fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
