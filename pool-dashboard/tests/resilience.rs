//! A dashboard that dies or hangs never stalls a pool.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use pool_core::{CallInfo, MapOptions, Outcome, ProgressSpec, Status};
use pool_dashboard::{DashboardClient, FINISH_FLUSH, connect_to_dashboard, disconnect};

use crate::support::{all_calls, dashboard, eventually, global_lock, pool};

/// Generous: these tests catch hangs, they do not time anything.
const NO_HANG: Duration = Duration::from_secs(20);

#[test]
fn a_dashboard_that_dies_mid_run_does_not_stall_the_pool() {
    let _g = global_lock();
    let d = dashboard();
    connect_to_dashboard(&d.addr().to_string(), d.token()).unwrap();
    let mut pool = pool(2, true);
    let killer = std::thread::spawn(move || {
        // Dies once the call has shown up on it, while the tasks still run.
        let seen = eventually(Duration::from_secs(10), || {
            all_calls(&d)
                .iter()
                .any(|c| c["state"] == "running")
                .then_some(())
        });
        d.shutdown();
        seen.is_some()
    });
    let start = Instant::now();
    let out = pool
        .map_with(
            |x: u64| {
                std::thread::sleep(Duration::from_millis(20));
                x * 2
            },
            0..60u64,
            MapOptions::default().progress_bar(true),
        )
        .unwrap();
    assert_eq!(out.len(), 60);
    assert_eq!(out[59], 118);
    assert!(
        killer.join().unwrap(),
        "the call never reached the dashboard"
    );
    // And the next calls, with the dashboard gone, run as if it never existed.
    for _ in 0..3 {
        let out = pool
            .map_with(
                |x: u64| x + 1,
                0..100u64,
                MapOptions::default().progress_bar(true),
            )
            .unwrap();
        assert_eq!(out.len(), 100);
    }
    assert!(start.elapsed() < NO_HANG, "took {:?}", start.elapsed());
    let t = Instant::now();
    disconnect();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "disconnect took {:?}",
        t.elapsed()
    );
}

fn info() -> CallInfo {
    CallInfo {
        call_id: 1,
        pool_id: 1,
        method: "map".into(),
        function: "f".into(),
        location: "x.rs:1".into(),
        n_jobs: 1,
        start_method: "threading".into(),
        spec: ProgressSpec::default(),
    }
}

fn status(done: u64) -> Status {
    Status {
        total: None,
        submitted: done,
        running: 0,
        done,
        failed: 0,
        elapsed: Duration::from_millis(done),
        rate: 1.0,
        eta: None,
        active: true,
    }
}

#[test]
fn a_dashboard_that_hangs_costs_the_pool_nothing_but_a_bounded_wait_at_the_end() {
    // A real dashboard to connect to, then replaced on the same port by a listener that
    // accepts connections and never answers.
    let d = dashboard();
    let addr = d.addr();
    let client = DashboardClient::connect(&addr.to_string(), d.token()).unwrap();
    d.shutdown();
    let hole = TcpListener::bind(addr).expect("the port is free again");
    let holder = std::thread::spawn(move || {
        let mut open = Vec::new();
        hole.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(8);
        while Instant::now() < end {
            if let Ok((s, _)) = hole.accept() {
                open.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let mut sink = client.reporter();
    let t = Instant::now();
    sink.start(&info());
    let mut slowest = Duration::ZERO;
    for i in 0..20_000 {
        let u = Instant::now();
        sink.update(&status(i));
        if i % 100 == 0 {
            sink.task_failed("boom");
        }
        slowest = slowest.max(u.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(200),
        "an update took {slowest:?}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "updates took {:?}",
        t.elapsed()
    );
    let f = Instant::now();
    sink.finish(&status(20_000), &Outcome::Done);
    let waited = f.elapsed();
    assert!(
        waited <= FINISH_FLUSH + Duration::from_millis(500),
        "finish waited {waited:?}"
    );
    // Later calls do not wait at all once the dashboard is known to fail.
    std::thread::sleep(Duration::from_secs(3));
    let mut sink = client.reporter();
    let f = Instant::now();
    sink.start(&info());
    sink.finish(&status(1), &Outcome::Done);
    assert!(
        f.elapsed() < Duration::from_millis(500),
        "took {:?}",
        f.elapsed()
    );
    assert_eq!(client.dropped(), 0, "coalescing keeps the queue small");
    drop(client);
    holder.join().unwrap();
}

#[test]
fn connecting_to_nothing_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = DashboardClient::connect(&format!("127.0.0.1:{port}"), "t").unwrap_err();
    assert!(
        err.to_string().contains("cannot reach the dashboard"),
        "{err}"
    );
    let err = DashboardClient::connect("https://example.invalid/x", "t").unwrap_err();
    assert!(err.to_string().contains("bad dashboard address"), "{err}");
}
