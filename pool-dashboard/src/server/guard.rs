//! Who may read: every request must name this dashboard in its `Host` header, and reads of
//! call data need the token, as reports do.
//!
//! 1. `Host` must be `localhost`, an IP address (any: a page can only reach an address by
//!    number from an origin that is that number), or a name allowed with
//!    [`DashboardConfig::allow_host`](crate::DashboardConfig::allow_host). A page of another
//!    site that makes its own name resolve to this machine (DNS rebinding) sends its own name:
//!    refused with 403, before anything else, whatever else it sends.
//! 2. The page itself (`/`) and `/api/health` hold no call data and need no token. The page
//!    reads the token from its address's fragment (`/#token=...`, never sent to servers or in
//!    `Referer`s) and sends it with each read.
//! 3. `GET /api/calls` and `GET /api/events` need the token: `Authorization: Bearer <token>`
//!    or `?token=<token>` (an `EventSource` cannot set headers). Without it: 401.
//! 4. `POST /api/report` checks its `Authorization` header itself (401 without the token).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::routes::{AppState, error};

/// The middleware of every route: checks `Host`, then the token of reads.
pub(crate) async fn guard(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_is_ours(host, &app.allowed_hosts) {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "the Host header {host:?} does not name this dashboard (a page of another site \
                 reaching it through DNS rebinding would send such a name): open the dashboard \
                 at its IP address or localhost, or allow the name with \
                 DashboardConfig::allow_host / `pool dashboard --allow-host`"
            ),
        );
    }
    let path = req.uri().path();
    if path == "/api/calls" || path == "/api/events" {
        let given = bearer(req.headers())
            .map(str::to_string)
            .or_else(|| query_token(req.uri().query()));
        match given {
            Some(t) if same_token(t.as_bytes(), app.token.as_bytes()) => {}
            Some(_) => return unauthorized("wrong token"),
            None => {
                return unauthorized(
                    "reads need the token: open the address the dashboard printed (it ends with \
                     #token=...), or send `Authorization: Bearer <token>` or `?token=<token>`",
                );
            }
        }
    }
    next.run(req).await
}

/// Whether `host` (a `Host` header: a name or address, maybe with a port) names this
/// dashboard.
pub(crate) fn host_is_ours(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        Some(rest) => match rest.split_once(']') {
            Some((v6, _)) => return v6.parse::<IpAddr>().is_ok(),
            None => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    if name.is_empty() {
        return false;
    }
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok()
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The `token` parameter of a query string (tokens are printable ASCII without `&`, `=`, `%`
/// in practice; a percent-encoded one is decoded).
fn query_token(query: Option<&str>) -> Option<String> {
    let value = query?.split('&').find_map(|kv| kv.strip_prefix("token="))?;
    Some(percent_decode(value))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Compares without stopping at the first difference.
pub(crate) fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

pub(crate) fn unauthorized(why: &str) -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        format!("{why} (the token is the one the dashboard printed)"),
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let none: &[String] = &[];
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "10.1.2.3",
        ] {
            assert!(host_is_ours(ok, none), "{ok}");
        }
        for bad in [
            "rebound.test:8080",
            "evil.com",
            "",
            ":8080",
            "[::1",
            "127.0.0.1.evil.com",
        ] {
            assert!(!host_is_ours(bad, none), "{bad}");
        }
        assert!(host_is_ours("box.lan:8080", &["box.lan".to_string()]));
    }

    #[test]
    fn query_tokens() {
        assert_eq!(query_token(Some("a=1&token=t%30ken")), Some("t0ken".into()));
        assert_eq!(query_token(Some("a=1")), None);
        assert_eq!(query_token(None), None);
    }
}
