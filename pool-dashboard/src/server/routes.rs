//! The HTTP API: the page, `GET /api/calls`, `GET /api/events` (SSE), `POST /api/report`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast;

use super::guard;
use super::state::Store;
use crate::protocol::Report;

/// The page: one HTML file with its CSS and JavaScript inline.
const INDEX_HTML: &str = include_str!("../../assets/index.html");
/// The largest report accepted.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// Messages kept for slow SSE clients before they are sent a fresh snapshot instead.
const SSE_BACKLOG: usize = 1024;

/// What the SSE streams carry.
#[derive(Debug, Clone)]
pub(crate) enum Push {
    /// A call changed: its JSON (`{"process": .., "call": ..}`).
    Call(Arc<str>),
    /// The server stops: end the stream.
    Shutdown,
}

#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) token: String,
    /// Names besides `localhost` and IP addresses that `Host` may hold (see `guard`).
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) store: Mutex<Store>,
    pub(crate) push: broadcast::Sender<Push>,
}

impl AppState {
    pub(crate) fn new(token: String, allowed_hosts: Vec<String>) -> Arc<Self> {
        Arc::new(AppState {
            token,
            allowed_hosts,
            store: Mutex::new(Store::default()),
            push: broadcast::channel(SSE_BACKLOG).0,
        })
    }

    fn snapshot_json(&self) -> String {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::to_string(&store.snapshot()).expect("a snapshot serializes")
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/api/health", get(health))
        .route("/api/calls", get(calls))
        .route("/api/events", get(events))
        .route("/api/report", post(report))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_REPORT_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::guard,
        ))
        .with_state(state)
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({ "error": message.into() });
    (status, axum::Json(body)).into_response()
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn health() -> Response {
    axum::Json(json!({ "ok": true, "version": env!("CARGO_PKG_VERSION") })).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn calls(State(app): State<Arc<AppState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        app.snapshot_json(),
    )
        .into_response()
}

async fn report(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match guard::bearer(&headers) {
        Some(t) if guard::same_token(t.as_bytes(), app.token.as_bytes()) => {}
        Some(_) => return guard::unauthorized("wrong token"),
        None => return guard::unauthorized("missing `Authorization: Bearer <token>` header"),
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), format!("unreadable report: {}", e.body_text())),
    };
    let report: Report = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed report: {e}")),
    };
    if report.process.id.is_empty() || report.process.id.len() > 256 {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed report: process.id must have 1 to 256 characters",
        );
    }
    let messages: Vec<Push>;
    let (accepted, ignored) = {
        let mut store = app.store.lock().unwrap_or_else(|e| e.into_inner());
        let applied = store.apply(report);
        messages = applied
            .changed
            .iter()
            .map(|call| {
                let process = store.process(&call.process_id);
                let text = json!({ "process": process, "call": call }).to_string();
                Push::Call(Arc::from(text))
            })
            .collect();
        (applied.accepted, applied.ignored)
    };
    for m in messages {
        // No subscriber is not an error.
        let _ = app.push.send(m);
    }
    axum::Json(json!({ "accepted": accepted, "ignored": ignored })).into_response()
}

async fn events(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    // Subscribe before taking the snapshot so that no change falls between the two.
    let rx = app.push.subscribe();
    let first = app.snapshot_json();
    let stream = sse_stream(app, rx, first);
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    )
}

fn sse_stream(
    app: Arc<AppState>,
    rx: broadcast::Receiver<Push>,
    first: String,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold((app, rx, Some(first)), |(app, mut rx, first)| async move {
        if let Some(snap) = first {
            let ev = SseEvent::default().event("snapshot").data(snap);
            return Some((Ok(ev), (app, rx, None)));
        }
        let ev = match rx.recv().await {
            Ok(Push::Call(text)) => SseEvent::default().event("call").data(&*text),
            Ok(Push::Shutdown) | Err(broadcast::error::RecvError::Closed) => return None,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Too slow to follow every change: start again from the whole state.
                SseEvent::default()
                    .event("snapshot")
                    .data(app.snapshot_json())
            }
        };
        Some((Ok(ev), (app, rx, None)))
    })
}
