//! The reporting protocol: authentication, validation, many processes, SSE.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use pool_core::{CallInfo, Outcome, ProgressSpec, Status};
use pool_dashboard::{DashboardClient, MAX_REPORT_BYTES};
use serde_json::json;

use crate::support::{all_calls, dashboard, eventually, post_report, url};

fn valid_report() -> String {
    json!({
        "process": {"id": "p1", "pid": 1, "host": "h", "program": "prog"},
        "events": []
    })
    .to_string()
}

fn info(call_id: u64, pool_id: u64) -> CallInfo {
    CallInfo {
        call_id,
        pool_id,
        method: "map".into(),
        function: "my_crate::work".into(),
        location: "src/main.rs:42".into(),
        n_jobs: 2,
        start_method: "threading".into(),
        spec: ProgressSpec::default().total(10),
    }
}

fn status(done: u64, active: bool) -> Status {
    Status {
        total: Some(10),
        submitted: 10,
        running: u64::from(active),
        done,
        failed: 0,
        elapsed: Duration::from_millis(500),
        rate: done as f64 * 2.0,
        eta: None,
        active,
    }
}

#[test]
fn a_report_without_the_token_is_refused() {
    let d = dashboard();
    let (status, body) = post_report(&d, None, &valid_report());
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Authorization"),
        "{body}"
    );
    let (status, body) = post_report(&d, Some("Bearer wrong"), &valid_report());
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("wrong token"),
        "{body}"
    );
    let (status, _) = post_report(&d, Some("t0ken"), &valid_report());
    assert_eq!(status, 401, "the scheme is required");
    assert!(all_calls(&d).is_empty());
    assert!(calls_pools_empty(&d));
    let (status, body) = post_report(&d, Some("Bearer t0ken"), &valid_report());
    assert_eq!(
        (status, &body),
        (200, &json!({"accepted": 0, "ignored": 0}))
    );
    // And through the client: a wrong token is an error at connect time.
    let err = DashboardClient::connect(&d.addr().to_string(), "wrong").unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

fn calls_pools_empty(d: &pool_dashboard::DashboardHandle) -> bool {
    crate::support::calls(d)["pools"]
        .as_array()
        .unwrap()
        .is_empty()
}

#[test]
fn malformed_reports_get_a_clear_error_and_the_server_goes_on() {
    let d = dashboard();
    let auth = Some("Bearer t0ken");
    let cases: [(&str, &str); 5] = [
        (
            "{not json",
            "malformed report: key must be a string at line 1 column 2",
        ),
        ("{}", "missing field `process`"),
        (
            r#"{"process": {"id": "p", "pid": 1, "host": "h", "program": "x"}, "events": [{"type": "explode"}]}"#,
            "unknown variant `explode`",
        ),
        (
            r#"{"process": {"id": "p", "pid": 1, "host": "h", "program": "x"}, "events": [{"type": "update", "pool_id": 1, "call_id": 1}]}"#,
            "missing field `status`",
        ),
        (
            r#"{"process": {"id": "", "pid": 1, "host": "h", "program": "x"}, "events": []}"#,
            "process.id must have 1 to 256 characters",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = post_report(&d, auth, body);
        assert_eq!(status, 400, "{body} -> {answer}");
        let msg = answer["error"].as_str().unwrap_or_default();
        assert!(msg.contains(expected), "{body}: {msg:?} lacks {expected:?}");
    }
    let huge = format!(
        r#"{{"process": {{"id": "{}", "pid": 1, "host": "h", "program": "x"}}, "events": []}}"#,
        "x".repeat(MAX_REPORT_BYTES)
    );
    let (status, answer) = post_report(&d, auth, &huge);
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"].as_str().is_some(), "{answer}");
    // Still serving, and events of unknown calls are ignored, not fatal.
    let body = json!({
        "process": {"id": "p", "pid": 1, "host": "h", "program": "x"},
        "events": [{"type": "task_failed", "pool_id": 1, "call_id": 9, "message": "?"}]
    });
    let (status, answer) = post_report(&d, auth, &body.to_string());
    assert_eq!(
        (status, answer),
        (200, json!({"accepted": 0, "ignored": 1}))
    );
}

#[test]
fn many_processes_and_pools_report_at_once_and_sse_follows() {
    let d = dashboard();
    let addr = d.addr().to_string();
    // Follow the SSE stream from the start.
    let resp = crate::support::agent()
        .get(url(&d, "/api/events"))
        .header("Authorization", format!("Bearer {}", d.token()))
        .call()
        .expect("GET /api/events");
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let reader = BufReader::new(resp.into_body().into_reader());
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("an SSE line");
    assert_eq!(first, "event: snapshot");

    // Two "processes" (two connections), three pools.
    let a = DashboardClient::connect(&addr, "t0ken").unwrap();
    let b = DashboardClient::connect(&addr, "t0ken").unwrap();
    assert_ne!(a.process().id, b.process().id);
    let mut sinks = vec![
        (a.reporter(), info(1, 1)),
        (a.reporter(), info(2, 2)),
        (b.reporter(), info(1, 1)),
    ];
    for (s, i) in &mut sinks {
        s.start(i);
        s.update(&status(3, true));
    }
    // Updates alone (no start or end to push them out) are delivered within a send interval.
    let all_updated = eventually(Duration::from_secs(5), || {
        let calls = all_calls(&d);
        (calls.len() == 3 && calls.iter().all(|c| c["done"] == 3 && c["running"] == 1))
            .then_some(())
    });
    assert!(all_updated.is_some(), "{:#}", crate::support::calls(&d));
    let (s0, _) = &mut sinks[0];
    s0.finish(&status(10, false), &Outcome::Done);
    let (s1, _) = &mut sinks[1];
    s1.task_failed("task 4 panicked at src/main.rs:7:9: boom");
    s1.finish(
        &status(5, false),
        &Outcome::Failed("task 4 panicked at src/main.rs:7:9: boom".into()),
    );
    let (s2, _) = &mut sinks[2];
    s2.finish(&status(4, false), &Outcome::Interrupted);

    let snap = crate::support::calls(&d);
    let pools = snap["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 3, "{snap:#}");
    let mut states: Vec<(String, String)> = pools
        .iter()
        .flat_map(|p| p["calls"].as_array().unwrap().iter())
        .map(|c| {
            (
                c["state"].as_str().unwrap().to_string(),
                c["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("done".to_string(), String::new()),
            (
                "failed".to_string(),
                "task 4 panicked at src/main.rs:7:9: boom".to_string()
            ),
            ("interrupted".to_string(), String::new()),
        ]
    );
    let failed = pools
        .iter()
        .flat_map(|p| p["calls"].as_array().unwrap().iter())
        .find(|c| c["state"] == "failed")
        .unwrap();
    assert_eq!(failed["function"], "my_crate::work");
    assert_eq!(failed["location"], "src/main.rs:42");
    assert_eq!(failed["done"], 5);
    assert_eq!(failed["task_errors"].as_array().unwrap().len(), 1);
    let pool_b = pools
        .iter()
        .find(|p| p["process"]["id"] == b.process().id.as_str())
        .unwrap();
    assert_eq!(pool_b["process"]["pid"], std::process::id());

    // The SSE stream saw the calls change.
    let saw = eventually(Duration::from_secs(5), || {
        let lines: Vec<String> = rx.try_iter().collect();
        lines
            .iter()
            .any(|l| l.starts_with("data:") && l.contains("\"state\":\"failed\""))
            .then_some(())
    });
    assert!(saw.is_some(), "no SSE `call` event with the failure");
    drop(d);
}

#[test]
fn the_page_and_the_api_are_served() {
    let d = dashboard();
    let agent = crate::support::agent();
    let mut page = agent.get(url(&d, "/")).call().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.body_mut().read_to_string().unwrap();
    assert!(html.contains("<title>pool dashboard</title>"));
    assert!(html.contains("EventSource"));
    let mut health = agent.get(url(&d, "/api/health")).call().unwrap();
    assert!(
        health
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("\"ok\":true")
    );
    let mut missing = agent.get(url(&d, "/api/nope")).call().unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert!(
        missing
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("error")
    );
    let get_report = agent.get(url(&d, "/api/report")).call().unwrap();
    assert_eq!(get_report.status().as_u16(), 405);
    let start = std::time::Instant::now();
    d.shutdown();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_call_whose_sink_is_dropped_unfinished_shows_as_interrupted() {
    let d = dashboard();
    let client = DashboardClient::connect(&d.addr().to_string(), "t0ken").unwrap();
    let mut sink = client.reporter();
    sink.start(&info(7, 1));
    sink.update(&status(4, true));
    drop(sink);
    assert!(client.flush(Duration::from_secs(5)));
    let calls = all_calls(&d);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["state"], "interrupted");
    assert_eq!(calls[0]["done"], 4);
}

#[test]
fn with_dashboard_keeps_the_local_sink_when_not_connected() {
    let _g = crate::support::global_lock();
    pool_dashboard::disconnect();
    struct Local;
    impl pool_core::ProgressSink for Local {
        fn start(&mut self, _: &CallInfo) {}
        fn update(&mut self, _: &Status) {}
        fn finish(&mut self, _: &Status, _: &Outcome) {}
    }
    let mut i = info(1, 1);
    assert!(pool_dashboard::with_dashboard(&i, Some(Box::new(Local))).is_some());
    assert!(pool_dashboard::with_dashboard(&i, None).is_none());
    i.spec.style = pool_core::ProgressStyle::Dashboard;
    assert!(pool_dashboard::with_dashboard(&i, Some(Box::new(Local))).is_none());
}

/// GETs `path` with `Host: host` and maybe a bearer token; returns the status and the body.
fn get_as(
    d: &pool_dashboard::DashboardHandle,
    path: &str,
    host: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut req = crate::support::agent()
        .get(url(d, path))
        .header("Host", host);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().expect("the dashboard answers");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn reads_need_the_token_as_reports_do() {
    let d = dashboard();
    let host = d.addr().to_string();
    for path in ["/api/calls", "/api/events"] {
        let (status, body) = get_as(&d, path, &host, None);
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("reads need the token"), "{body}");
        assert_eq!(get_as(&d, path, &host, Some("wrong")).0, 401, "{path}");
    }
    let (status, body) = get_as(&d, "/api/calls", &host, Some("t0ken"));
    assert_eq!(status, 200, "{body}");
    let (status, _) = get_as(&d, "/api/calls?token=t0ken", &host, None);
    assert_eq!(status, 200);
    // The page and the health check hold no call data.
    assert_eq!(get_as(&d, "/", &host, None).0, 200);
    assert_eq!(get_as(&d, "/api/health", &host, None).0, 200);
}

#[test]
fn requests_naming_another_host_are_refused() {
    let d = dashboard();
    let port = d.addr().port();
    for host in [format!("rebound.test:{port}"), "evil.example".to_string()] {
        for (path, token) in [
            ("/", None),
            ("/api/calls", Some("t0ken")),
            ("/api/health", None),
        ] {
            let (status, body) = get_as(&d, path, &host, token);
            assert_eq!(status, 403, "{host}{path}: {body}");
            assert!(body.contains("Host"), "{body}");
        }
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(
            get_as(&d, "/api/calls", &host, Some("t0ken")).0,
            200,
            "{host}"
        );
    }
    let named = pool_dashboard::start_dashboard(
        pool_dashboard::DashboardConfig::default()
            .port_range(0..=0)
            .token("t0ken")
            .allow_host("box.lan"),
    )
    .unwrap();
    let host = format!("box.lan:{}", named.addr().port());
    assert_eq!(get_as(&named, "/api/calls", &host, Some("t0ken")).0, 200);
}

#[test]
fn a_kept_alive_pool_reports_each_call_its_own_insights() {
    let _g = crate::support::global_lock();
    let d = dashboard();
    pool_dashboard::connect_to_dashboard(&d.addr().to_string(), d.token()).unwrap();
    // Workers stay alive between calls: their timings come in only when asked for.
    let mut p = crate::support::Pool::builder()
        .n_jobs(2)
        .start_method(pool_core::StartMethod::Threading)
        .enable_insights(true)
        .keep_alive(true)
        .build()
        .unwrap();
    let bar = || {
        pool_core::MapOptions::default()
            .chunk_size(5)
            .progress_bar(true)
    };
    p.map_with(|x: u64| x + 1, 0..300u64, bar()).unwrap();
    // Tasks outside any call with a bar count for the pool, never for the next call.
    let h = p.apply_async(|x: u64| x, 5).unwrap();
    assert_eq!(h.get(None).unwrap(), 5);
    p.map_with(|x: u64| x, 0..50u64, pool_core::MapOptions::default())
        .unwrap();
    p.map_with(
        |x: u64| {
            std::thread::sleep(Duration::from_micros(200 + x % 7));
            x
        },
        1000..1200u64,
        bar(),
    )
    .unwrap();
    pool_dashboard::disconnect();
    let calls = eventually(Duration::from_secs(10), || {
        let c = all_calls(&d);
        (c.len() == 2 && c.iter().all(|c| c["insights"].is_array())).then_some(c)
    })
    .unwrap_or_else(|| panic!("{:?}", all_calls(&d)));
    let tasks = |c: &serde_json::Value| -> u64 {
        c["insights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["n_completed_tasks"].as_u64().unwrap())
            .sum()
    };
    let (first, second) = (&calls[0], &calls[1]);
    assert_eq!(first["total"], 300);
    assert_eq!(tasks(first), 300, "{first}");
    assert_eq!(second["total"], 200);
    assert_eq!(tasks(second), 200, "the second call's own tasks: {second}");
    for w in second["insights"].as_array().unwrap() {
        for s in w["slowest"].as_array().unwrap() {
            let x: u64 = s["args"].as_str().unwrap().parse().unwrap();
            assert!((1000..1200).contains(&x), "{second}");
        }
    }
    // The pool's own insights still count everything.
    let all: u64 = p.get_insights().0.iter().map(|t| t.n_completed_tasks).sum();
    assert_eq!(all, 300 + 1 + 50 + 200);
    d.shutdown();
}
