//! A live dashboard for this program's pools.
//!
//! Starts a dashboard on the first free port of 8080-8100, connects the process to it, and runs
//! two map calls that show up on its page: one that succeeds (with insights) and one that fails
//! with a worker panic. Then it keeps serving for a while so the page can be looked at.
//!
//! ```text
//! cargo run --example dashboard            # serves 30 s after the work
//! cargo run --example dashboard -- 300     # serves 5 minutes after the work
//! ```
//!
//! To report to a dashboard started elsewhere (`pool dashboard` prints its address and token),
//! call only `connect_to_dashboard(addr, token)`, or set `POOL_DASHBOARD` and
//! `POOL_DASHBOARD_TOKEN`.

use std::error::Error;
use std::time::Duration;

use pool::{MapOptions, ProgressSpec, ProgressStyle, StartMethod, WorkerPool};
use pool_dashboard::{DashboardConfig, connect_to_dashboard, disconnect, start_dashboard};

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * x
}

fn parse_record(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(15));
    if x == 150 {
        panic!("record {x} is corrupt");
    }
    x
}

fn main() -> Result<(), Box<dyn Error>> {
    let serve_for: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dashboard = start_dashboard(DashboardConfig::default())?;
    println!(
        "dashboard on {} (token {})",
        dashboard.url(),
        dashboard.token()
    );
    connect_to_dashboard(&dashboard.addr().to_string(), dashboard.token())?;

    let mut pool = WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Threading)
        .enable_insights(true)
        .build()?;
    let inputs: Vec<u64> = (0..200).collect();
    let squares = pool.map_with(
        slow_square,
        inputs.clone(),
        MapOptions::default().progress(ProgressSpec::default().desc("squares")),
    )?;
    println!("sum of squares: {}", squares.iter().sum::<u64>());

    // Shown on the dashboard only, not in the terminal.
    let only_dashboard = ProgressSpec::default().style(ProgressStyle::Dashboard);
    match pool.map_with(
        parse_record,
        inputs,
        MapOptions::default().progress(only_dashboard),
    ) {
        Ok(_) => println!("unexpectedly, every record parsed"),
        Err(e) => println!("the second call failed, as planned: {}", first_line(&e)),
    }

    println!("serving {} for {serve_for} s", dashboard.url());
    std::thread::sleep(Duration::from_secs(serve_for));
    disconnect();
    dashboard.shutdown();
    Ok(())
}

fn first_line(e: &dyn Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}
