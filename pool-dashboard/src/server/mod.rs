//! The dashboard server: an axum app on its own thread and single-threaded tokio runtime.
//!
//! Shutdown: [`DashboardHandle::shutdown`] (or dropping the handle) signals the server, which
//! stops accepting, ends every SSE stream (a [`routes::Push::Shutdown`] message) so that
//! graceful shutdown does not wait for browsers, waits at most [`SHUTDOWN_GRACE`] for requests
//! in flight, then drops the runtime and joins the thread.

mod guard;
mod names;
mod routes;
mod state;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

pub use self::routes::MAX_REPORT_BYTES;
use self::routes::{AppState, Push};
use crate::error::DashboardError;

/// How long shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Where and how the dashboard listens.
///
/// ```
/// use pool_dashboard::DashboardConfig;
///
/// let cfg = DashboardConfig::default().port_range(9000..=9010).token("s3cret");
/// assert_eq!(cfg.bind.to_string(), "127.0.0.1");
/// ```
#[derive(Clone)]
pub struct DashboardConfig {
    /// Ports tried in order; the first free one is used (`0..=0`: any free port).
    pub port_range: RangeInclusive<u16>,
    /// The address to bind: loopback by default. Anything else exposes the dashboard to the
    /// network (reports and reads still need the token; the page itself holds no data).
    pub bind: IpAddr,
    /// The token reports and reads must carry; random (128 bits) when `None`.
    pub token: Option<String>,
    /// Host names the dashboard answers to besides `localhost` and IP addresses (requests
    /// naming any other host are refused, against DNS rebinding).
    pub allowed_hosts: Vec<String>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            port_range: 8080..=8100,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            token: None,
            allowed_hosts: Vec::new(),
        }
    }
}

impl fmt::Debug for DashboardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardConfig")
            .field("port_range", &self.port_range)
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl DashboardConfig {
    /// Sets the ports to try.
    pub fn port_range(mut self, r: RangeInclusive<u16>) -> Self {
        self.port_range = r;
        self
    }
    /// Sets the address to bind (an explicit choice to leave loopback).
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.bind = ip;
        self
    }
    /// Sets the token instead of a random one.
    pub fn token(mut self, t: impl Into<String>) -> Self {
        self.token = Some(t.into());
        self
    }
    /// Answers requests that name the dashboard `name` (a host name of this machine, when it
    /// binds beyond loopback). `localhost` and IP addresses are always answered; other names
    /// are refused, so that a page of another site cannot read the dashboard by making its own
    /// name resolve here (DNS rebinding).
    ///
    /// ```
    /// let cfg = pool_dashboard::DashboardConfig::default().allow_host("box.lan");
    /// assert_eq!(cfg.allowed_hosts, ["box.lan"]);
    /// ```
    pub fn allow_host(mut self, name: impl Into<String>) -> Self {
        self.allowed_hosts.push(name.into());
        self
    }
}

/// Parses `FIRST-LAST` (or a single port) as given to `pool dashboard --port-range`.
///
/// ```
/// assert_eq!(pool_dashboard::parse_port_range("8080-8100").unwrap(), 8080..=8100);
/// assert!(pool_dashboard::parse_port_range("8100-8080").is_err());
/// ```
pub fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>, DashboardError> {
    let bad = || DashboardError::BadPortRange(s.to_string());
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to std's randomly keyed SipHash.
        use std::hash::{BuildHasher, Hasher};
        for half in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .elapsed()
                    .unwrap_or_default()
                    .as_nanos(),
            );
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bind(cfg: &DashboardConfig) -> Result<TcpListener, DashboardError> {
    let mut last = None;
    for port in cfg.port_range.clone() {
        match TcpListener::bind(SocketAddr::new(cfg.bind, port)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(DashboardError::NoFreePort {
        bind: cfg.bind,
        range: cfg.port_range.clone(),
        source: last.unwrap_or_else(|| std::io::Error::other("the port range is empty")),
    })
}

/// A running dashboard. Dropping it stops the server; see [`DashboardHandle::wait`] to keep
/// serving.
#[must_use = "dropping the handle stops the dashboard"]
pub struct DashboardHandle {
    addr: SocketAddr,
    token: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for DashboardHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardHandle")
            .field("addr", &self.addr)
            .field("running", &self.stop.is_some())
            .finish_non_exhaustive()
    }
}

impl DashboardHandle {
    /// The address it listens on (give it to `connect_to_dashboard`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The page's address with the token, e.g. `http://127.0.0.1:8080/#token=9f3c...`: the
    /// page reads the token from the fragment (never sent to the server in the URL) and sends
    /// it with each read.
    pub fn url(&self) -> String {
        let host = match self.addr.ip() {
            ip if ip.is_unspecified() => "localhost".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}/#token={}", self.addr.port(), self.token)
    }
    /// The token reports and reads must carry.
    pub fn token(&self) -> &str {
        &self.token
    }
    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }
    /// Serves until the process ends.
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DashboardHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Starts a dashboard on its own thread: binds the first free port of the range and returns
/// at once. Give [`DashboardHandle::addr`] and [`DashboardHandle::token`] to
/// [`connect_to_dashboard`](crate::connect_to_dashboard), here or in another process.
pub fn start_dashboard(cfg: DashboardConfig) -> Result<DashboardHandle, DashboardError> {
    let listener = bind(&cfg)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let token = cfg.token.clone().unwrap_or_else(random_token);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let app = AppState::new(token.clone(), cfg.allowed_hosts.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("pool-dashboard-server".into())
        .spawn(move || serve(runtime, listener, app, stopped))?;
    Ok(DashboardHandle {
        addr,
        token,
        stop: Some(stop),
        thread: Some(thread),
    })
}

fn serve(
    runtime: tokio::runtime::Runtime,
    listener: TcpListener,
    app: Arc<AppState>,
    stopped: oneshot::Receiver<()>,
) {
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("pool-dashboard: cannot listen: {e}");
                return;
            }
        };
        let (graceful, graceful_rx) = oneshot::channel::<()>();
        let router = routes::router(Arc::clone(&app));
        let server = tokio::spawn(async move {
            let signal = async move {
                let _ = graceful_rx.await;
            };
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(signal)
                .await
            {
                eprintln!("pool-dashboard: server error: {e}");
            }
        });
        let _ = stopped.await;
        let _ = graceful.send(());
        let _ = app.push.send(Push::Shutdown);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
}

/// Starts a dashboard, prints how to reach it, and serves until the process ends: the
/// `pool dashboard` command.
pub fn serve_blocking(cfg: DashboardConfig) -> Result<(), DashboardError> {
    let exposed = !cfg.bind.is_loopback();
    let handle = start_dashboard(cfg)?;
    println!("pool dashboard started on {}", handle.url());
    println!(
        "reports go to {} with token {}",
        handle.addr(),
        handle.token()
    );
    println!(
        "connect from code:  pool_dashboard::connect_to_dashboard(\"{}\", \"{}\")",
        handle.addr(),
        handle.token()
    );
    println!(
        "or from the environment:  export {}={} {}={}",
        crate::ADDR_ENV,
        handle.addr(),
        crate::TOKEN_ENV,
        handle.token()
    );
    if exposed {
        println!(
            "note: listening beyond loopback: anyone who can reach {} and has the token can \
             read the calls",
            handle.addr()
        );
    }
    handle.wait();
    Ok(())
}
