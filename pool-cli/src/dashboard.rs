//! `pool dashboard`: serve the live dashboard that pools report to.

use std::net::IpAddr;

use anyhow::Context as _;
use pool_dashboard::{DashboardConfig, parse_port_range, serve_blocking};

/// Arguments of `pool dashboard`.
#[derive(Debug, clap::Args)]
pub(crate) struct DashboardArgs {
    /// Ports to try, in order: the first free one is used.
    #[arg(long, value_name = "FROM-TO", default_value = "8080-8100")]
    port_range: String,
    /// Address to bind. Loopback by default; anything else exposes the page to the network
    /// (reports and reads still need the token).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The token reports and reads must carry (random when not given).
    #[arg(long)]
    token: Option<String>,
    /// A host name to answer to besides `localhost` and IP addresses (repeatable); requests
    /// naming any other host are refused, against DNS rebinding.
    #[arg(long, value_name = "NAME")]
    allow_host: Vec<String>,
}

/// Serves until the process is stopped.
pub(crate) fn main(args: DashboardArgs) -> anyhow::Result<()> {
    let ports = parse_port_range(&args.port_range).context("--port-range")?;
    let mut cfg = DashboardConfig::default().port_range(ports).bind(args.bind);
    if let Some(t) = args.token {
        cfg = cfg.token(t);
    }
    for name in args.allow_host {
        cfg = cfg.allow_host(name);
    }
    serve_blocking(cfg).context("cannot serve the dashboard")?;
    Ok(())
}
