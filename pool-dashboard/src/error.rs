//! What can go wrong when starting a dashboard or connecting to one.

use std::io;
use std::net::IpAddr;
use std::ops::RangeInclusive;

/// An error of the dashboard server or of connecting to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// Every port of the range was taken (or could not be bound).
    #[error("no free port on {bind} in {}-{}: {source}", range.start(), range.end())]
    NoFreePort {
        /// The address tried.
        bind: IpAddr,
        /// The ports tried.
        range: RangeInclusive<u16>,
        /// The error of the last port tried.
        #[source]
        source: io::Error,
    },
    /// A port range that is not `FIRST-LAST` with `FIRST <= LAST`.
    #[error("bad port range {0:?}: expected FIRST-LAST, e.g. 8080-8100")]
    BadPortRange(String),
    /// An address that does not resolve.
    #[error("bad dashboard address {addr:?}: {reason}")]
    BadAddress {
        /// As given.
        addr: String,
        /// Why it was refused.
        reason: String,
    },
    /// The dashboard could not be reached.
    #[error("cannot reach the dashboard at {addr}: {source}")]
    Unreachable {
        /// Where it was looked for.
        addr: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The dashboard answered with an error (a wrong token gives status 401).
    #[error("the dashboard at {addr} refused the report (HTTP {status}): {message}")]
    Refused {
        /// Where it is.
        addr: String,
        /// The HTTP status.
        status: u16,
        /// The dashboard's explanation.
        message: String,
    },
    /// Starting the server's runtime or thread failed.
    #[error("cannot start the dashboard server: {0}")]
    Io(#[from] io::Error),
}
