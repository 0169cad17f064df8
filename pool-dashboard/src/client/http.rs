//! A minimal HTTP/1.1 POST over `std::net::TcpStream`.
//!
//! Why not an HTTP client crate: the reporter runs inside every program that uses a pool, and
//! all it ever does is POST a small JSON body to a plain-HTTP address and read a status line.
//! A hand-written request costs ~60 lines and no dependency, and makes the time limits explicit:
//! a connect timeout, per-read/write timeouts and an overall deadline, so a dashboard that is
//! gone or stuck costs the background thread a bounded wait and never the pool anything.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Where reports go.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    /// As given by the user, for messages and the `Host` header.
    pub(crate) display: String,
    pub(crate) token: String,
}

/// The largest response read (status and error messages are small).
const MAX_RESPONSE: usize = 64 * 1024;

/// Time limits of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) connect: Duration,
    pub(crate) total: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect: Duration::from_millis(1000),
            total: Duration::from_millis(2500),
        }
    }
}

/// POSTs `body` as JSON to `path`; returns the status code and the response body.
pub(crate) fn post_json(
    target: &Target,
    path: &str,
    body: &[u8],
    limits: Limits,
) -> io::Result<(u16, String)> {
    let deadline = Instant::now() + limits.total;
    let mut stream = TcpStream::connect_timeout(&target.addr, limits.connect)?;
    stream.set_nodelay(true)?;
    let left = |d: Instant| {
        d.checked_duration_since(Instant::now())
            .filter(|t| !t.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "dashboard request timed out"))
    };
    stream.set_write_timeout(Some(left(deadline)?))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        host = target.addr,
        token = target.token,
        len = body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(left(deadline)?))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_RESPONSE || response_complete(&buf) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    parse_response(&buf)
}

/// Whether the headers and a `Content-Length` body have arrived.
fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|len| buf.len() >= end + 4 + len)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_response(buf: &[u8]) -> io::Result<(u16, String)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response");
    let line_end = find(buf, b"\r\n").ok_or_else(bad)?;
    let line = std::str::from_utf8(&buf[..line_end]).map_err(|_| bad())?;
    let mut parts = line.split_whitespace();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(bad());
    }
    let status = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let body = find(buf, b"\r\n\r\n")
        .map(|e| String::from_utf8_lossy(&buf[e + 4..]).into_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let r = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 5\r\n\r\nnope!";
        assert!(response_complete(r));
        assert_eq!(parse_response(r).unwrap(), (401, "nope!".to_string()));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc"
        ));
        assert!(parse_response(b"garbage").is_err());
    }
}
