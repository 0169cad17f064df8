//! End to end in a real headless Chromium, driven over WebDriver (raw JSON over HTTP, so no
//! browser-automation crate and no async runtime in the tests): the dashboard runs, a pool
//! reports to it, and the page is checked while the work runs, after it succeeds and after it
//! fails. Screenshots are saved as test artifacts.
//!
//! Needs `chromium` and `chromium-driver` (Debian). Without them the test is skipped with a
//! loud message, except under `CI` where a missing browser fails it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pool_core::{MapOptions, ProgressSpec};
use pool_dashboard::{connect_to_dashboard, disconnect};
use serde_json::{Value, json};

use crate::support::{agent, dashboard, eventually, global_lock, pool};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(30);

static GATE: AtomicBool = AtomicBool::new(false);

/// The first call's task: quick, succeeds.
fn resize_image(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    x * 2
}

/// The second call's task: the first ten run, the rest wait for the gate; input 30 fails.
fn parse_record(x: u64) -> u64 {
    if x >= 10 {
        while !GATE.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if x == 30 {
        panic!("boom: cannot parse record {x}");
    }
    std::thread::sleep(Duration::from_millis(10));
    x
}

fn browser_available() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    if ci {
        panic!(
            "CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing: \
             apt-get install -y chromium chromium-driver"
        );
    }
    // Straight to stderr: the test harness hides what `eprintln!` says in a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! SKIPPED: the dashboard browser test needs {CHROMIUM} and {CHROMEDRIVER}\n\
         !!! (apt-get install -y chromium chromium-driver); under CI=true this fails.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    false
}

fn screenshot_path(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var("POOL_DASHBOARD_SCREENSHOT") {
        let p = PathBuf::from(p);
        return match name {
            "dashboard-screenshot.png" => p,
            other => p.with_file_name(other),
        };
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join(name)
}

/// A chromedriver process and one browser session; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: Option<String>,
    profile: PathBuf,
}

impl Browser {
    fn start() -> Browser {
        Self::start_with(&[])
    }

    /// A browser with extra command-line switches.
    fn start_with(extra: &[&str]) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Clock times on the page are local: make local UTC, as the test computes them.
            .env("TZ", "UTC")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile =
            std::env::temp_dir().join(format!("pool-dashboard-chromium-{}", std::process::id()));
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            profile,
        };
        let ready = eventually(WAIT, || {
            let mut r = agent().get(format!("{}/status", b.base)).call().ok()?;
            let v: Value = r.body_mut().read_json().ok()?;
            (v["value"]["ready"] == true).then_some(())
        });
        assert!(ready.is_some(), "chromedriver did not become ready");
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--user-data-dir={}", b.profile.display()));
        args.extend(extra.iter().map(|a| a.to_string()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
        }}});
        let v = b.send("POST", "/session", Some(caps));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"));
        b.session = Some(id.to_string());
        b
    }

    /// A WebDriver command; returns its `value`.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let a = agent();
        let mut resp = match (method, body) {
            ("GET", _) => a.get(&url).call(),
            ("DELETE", _) => a.delete(&url).call(),
            (_, b) => a.post(&url).send_json(b.unwrap_or(json!({}))),
        }
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status().as_u16();
        let v: Value = resp.body_mut().read_json().expect("WebDriver JSON");
        assert!(
            status < 400,
            "WebDriver {method} {path}: HTTP {status}: {v}"
        );
        v["value"].clone()
    }

    fn session_path(&self, tail: &str) -> String {
        format!(
            "/session/{}{tail}",
            self.session.as_deref().expect("a session")
        )
    }

    fn goto(&self, url: &str) {
        self.send(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    fn eval(&self, script: &str) -> Value {
        let body = json!({"script": script, "args": []});
        self.send("POST", &self.session_path("/execute/sync"), Some(body))
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.send("GET", &self.session_path("/screenshot"), None);
        let png = base64_decode(v.as_str().expect("base64 PNG"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = screenshot_path(name);
        std::fs::write(&path, png).expect("the screenshot is written");
        eprintln!("screenshot saved to {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.session.is_some() {
            let path = self.session_path("");
            let _ = agent().delete(format!("{}{path}", self.base)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// What the page shows for each call.
const READ_PAGE: &str = r#"
return {
  conn: document.getElementById('conn').textContent,
  totals: document.getElementById('totals').textContent,
  calls: [...document.querySelectorAll('.call')].map(e => ({
    state: e.dataset.state,
    badge: e.querySelector('.status').textContent,
    fn: e.querySelector('.fn').textContent,
    where: e.querySelector('.where').textContent,
    progress: e.querySelector('.progress-text').textContent,
    bar: e.querySelector('.fill').style.width,
    stats: e.querySelector('.stats').innerText,
    error: (e.querySelector('pre.error') || {}).textContent || null,
    workers: e.querySelectorAll('.insights tr.worker').length,
    insight_tasks: [...e.querySelectorAll('.insights tr.worker')]
      .reduce((n, r) => n + Number(r.children[1].textContent), 0),
    slowest_args: [...e.querySelectorAll('.insights table.slowest td.args')].map(t => t.textContent),
    clock: (e.querySelector('.clock') || {}).textContent || null,
  })),
};"#;

/// The call of `function` in `state` (any state: "").
fn find_call<'a>(page: &'a Value, function: &str, state: &str) -> Option<&'a Value> {
    page["calls"]
        .as_array()?
        .iter()
        .find(|c| c["fn"].as_str() == Some(function) && (state.is_empty() || c["state"] == state))
}

#[test]
fn the_page_shows_calls_live_while_they_run_and_after_they_fail() {
    if !browser_available() {
        return;
    }
    let _g = global_lock();
    GATE.store(false, Ordering::Release);
    let d = dashboard();
    connect_to_dashboard(&d.addr().to_string(), d.token()).unwrap();
    let browser = Browser::start();
    browser.goto(&d.url());

    // A call that succeeds, with insights.
    let mut p = pool(2, true);
    let out = p
        .map_with(
            resize_image,
            (0..40u64).collect::<Vec<_>>(),
            MapOptions::default().progress(ProgressSpec::default().desc("thumbnails")),
        )
        .unwrap();
    assert_eq!(out.len(), 40);

    // A lazy call abandoned after its first result: interrupted.
    {
        let mut it = p
            .imap_with(
                resize_image,
                (0..400u64).collect::<Vec<_>>(),
                MapOptions::default().chunk_size(1).progress_bar(true),
            )
            .unwrap();
        assert_eq!(it.next().map(Result::unwrap), Some(0));
    }

    // A call that runs until the gate opens, then fails.
    let runner = std::thread::spawn(move || {
        p.map_with(
            parse_record,
            (0..60u64).collect::<Vec<_>>(),
            MapOptions::default().chunk_size(1).progress_bar(true),
        )
    });

    // While it runs.
    let page = eventually(WAIT, || {
        let page = browser.eval(READ_PAGE);
        let c = find_call(&page, "dashboard::browser::parse_record", "")?;
        (c["state"] == "running" && c["progress"] == "10 / 60 tasks (17%)").then_some(page)
    })
    .unwrap_or_else(|| panic!("the running call never showed: {}", browser.eval(READ_PAGE)));
    let running = find_call(&page, "dashboard::browser::parse_record", "").unwrap();
    assert_eq!(page["conn"], "live");
    assert_eq!(running["badge"], "running");
    assert!(
        running["where"].as_str().unwrap().starts_with("map() at "),
        "{running}"
    );
    assert!(
        running["where"]
            .as_str()
            .unwrap()
            .contains("tests/browser.rs:"),
        "{running}"
    );
    assert_eq!(running["bar"], "16.7%");
    let stats = running["stats"].as_str().unwrap();
    for s in [
        "rate",
        "ETA",
        "elapsed",
        "running",
        "failed 0",
        "workers 2 (threading)",
    ] {
        assert!(stats.contains(s), "{stats:?} lacks {s:?}");
    }
    let done = find_call(&page, "dashboard::browser::resize_image", "done")
        .expect("the first call is listed");
    assert_eq!(done["progress"], "40 / 40 tasks (100%)");
    assert_eq!(done["workers"], 2, "insights: one row per worker");
    assert!(done["error"].is_null());
    let interrupted = find_call(&page, "dashboard::browser::resize_image", "interrupted")
        .unwrap_or_else(|| panic!("no interrupted call: {page}"));
    assert_eq!(interrupted["badge"], "interrupted");
    assert!(
        interrupted["where"]
            .as_str()
            .unwrap()
            .starts_with("imap() at "),
        "{interrupted}"
    );
    assert!(
        page["totals"].as_str().unwrap().contains("1 running"),
        "{page}"
    );
    browser.screenshot("dashboard-screenshot-running.png");

    // After the failure.
    GATE.store(true, Ordering::Release);
    let err = runner.join().unwrap().unwrap_err();
    assert!(
        err.to_string().contains("boom: cannot parse record 30"),
        "{err}"
    );
    let page = eventually(WAIT, || {
        let page = browser.eval(READ_PAGE);
        (find_call(&page, "dashboard::browser::parse_record", "")?["state"] == "failed")
            .then_some(page)
    })
    .unwrap_or_else(|| panic!("the failure never showed: {}", browser.eval(READ_PAGE)));
    let failed = find_call(&page, "dashboard::browser::parse_record", "").unwrap();
    assert_eq!(failed["badge"], "failed");
    let error = failed["error"].as_str().expect("the error is shown");
    assert!(error.contains("task #30 panicked"), "{error}");
    assert!(error.contains("boom: cannot parse record 30"), "{error}");
    assert!(
        page["totals"].as_str().unwrap().contains("1 failed"),
        "{page}"
    );
    let shot = browser.screenshot("dashboard-screenshot.png");
    assert!(std::fs::metadata(shot).unwrap().len() > 10_000);

    drop(browser);
    disconnect();
    d.shutdown();
}

/// A quick task with one slow input (7): the slowest task of the pool's first call.
fn thumbnail(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(if x == 7 { 60 } else { 1 }));
    x
}

/// The second call's task, on inputs 1000..1200.
fn checksum(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(1 + x % 3));
    x
}

/// The third call's task: input 3 panics.
fn explode(x: u64) -> u64 {
    if x == 3 {
        panic!("explode: bad input {x}");
    }
    x
}

/// Seconds since midnight (UTC) of `HH:MM:SS`.
fn seconds_of_day(hms: &str) -> u64 {
    let p: Vec<u64> = hms.split(':').map(|v| v.parse().unwrap()).collect();
    p[0] * 3600 + p[1] * 60 + p[2]
}

fn now_seconds_of_day() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.as_secs() % 86_400
}

#[test]
fn each_call_shows_its_own_insights_its_backtrace_and_its_clock_times() {
    if !browser_available() {
        return;
    }
    let _g = global_lock();
    let d = dashboard();
    connect_to_dashboard(&d.addr().to_string(), d.token()).unwrap();
    let browser = Browser::start();
    browser.goto(&d.url());

    let mut p = pool(2, true);
    let bar = || MapOptions::default().chunk_size(4).progress_bar(true);
    p.map_with(thumbnail, (0..300u64).collect::<Vec<_>>(), bar())
        .unwrap();
    let before = now_seconds_of_day();
    p.map_with(checksum, (1000..1200u64).collect::<Vec<_>>(), bar())
        .unwrap();
    let after = now_seconds_of_day();
    let err = p
        .map_with(explode, (0..20u64).collect::<Vec<_>>(), bar())
        .unwrap_err();
    assert!(err.to_string().contains("explode: bad input 3"), "{err}");

    let page = eventually(WAIT, || {
        let page = browser.eval(READ_PAGE);
        find_call(&page, "dashboard::browser::explode", "failed")?;
        let c = find_call(&page, "dashboard::browser::checksum", "done")?;
        (c["workers"] == 2).then_some(page)
    })
    .unwrap_or_else(|| panic!("the calls never showed: {}", browser.eval(READ_PAGE)));

    // Insights per call: the second call's own 200 tasks, its own slowest inputs.
    let first = find_call(&page, "dashboard::browser::thumbnail", "done").unwrap();
    assert_eq!(first["insight_tasks"], 300, "{first}");
    assert_eq!(first["slowest_args"][0], "7", "{first}");
    let second = find_call(&page, "dashboard::browser::checksum", "done").unwrap();
    assert_eq!(
        second["insight_tasks"], 200,
        "this call's tasks only: {second}"
    );
    let args = second["slowest_args"].as_array().unwrap();
    assert!(!args.is_empty(), "{second}");
    for a in args {
        let x: u64 = a.as_str().unwrap().parse().unwrap();
        assert!(
            (1000..1200).contains(&x),
            "a slowest task that is not among this call's inputs: {second}"
        );
    }

    // Start and end clock times.
    let clock = second["clock"]
        .as_str()
        .unwrap_or_else(|| panic!("no clock: {second}"));
    let (started, ended) = clock
        .strip_prefix("started ")
        .and_then(|c| c.split_once(" · ended "))
        .unwrap_or_else(|| panic!("{clock:?}"));
    let (started, ended) = (seconds_of_day(started), seconds_of_day(ended));
    assert!(
        before <= started + 1 && started <= ended && ended <= after + 1,
        "{clock:?} is not within the call ({before}..{after} s of the day)"
    );

    // The failed call shows the worker's backtrace, down to the task function.
    let failed = find_call(&page, "dashboard::browser::explode", "failed").unwrap();
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("task #3 panicked"), "{error}");
    assert!(error.contains("worker backtrace:"), "{error}");
    assert!(error.contains("browser::explode"), "{error}");
    assert!(
        failed["clock"].as_str().unwrap_or("").contains(" · ended "),
        "{failed}"
    );
    browser.screenshot("dashboard-screenshot-insights.png");

    drop(browser);
    disconnect();
    d.shutdown();
}

const READ_TEXT: &str = "return document.body.innerText;";

#[test]
fn reads_need_the_token_and_a_host_that_is_this_dashboard() {
    if !browser_available() {
        return;
    }
    let _g = global_lock();
    let d = dashboard();
    connect_to_dashboard(&d.addr().to_string(), d.token()).unwrap();
    let mut p = pool(2, false);
    p.map_with(
        resize_image,
        (0..4u64).collect::<Vec<_>>(),
        MapOptions::default().progress_bar(true),
    )
    .unwrap();
    disconnect();
    let port = d.addr().port();
    // `rebound.test` resolves to the dashboard, as a rebinding attacker's name would.
    let browser = Browser::start_with(&["--host-resolver-rules=MAP rebound.test 127.0.0.1"]);

    // The page at its printed address (with the token) shows the call.
    browser.goto(&d.url());
    let shown = eventually(WAIT, || {
        let page = browser.eval(READ_PAGE);
        find_call(&page, "dashboard::browser::resize_image", "done").map(|_| ())
    });
    assert!(shown.is_some(), "{}", browser.eval(READ_PAGE));

    // Without the token: no data, and the page says why.
    browser.goto(&format!("http://127.0.0.1:{port}/"));
    let page = eventually(WAIT, || {
        let page = browser.eval(READ_PAGE);
        (page["conn"] != "connecting").then_some(page)
    })
    .unwrap();
    assert_eq!(page["calls"].as_array().unwrap().len(), 0, "{page}");
    assert!(
        page["conn"].as_str().unwrap().contains("token"),
        "the page says a token is needed: {page}"
    );
    browser.goto(&format!("http://127.0.0.1:{port}/api/calls"));
    let text = browser.eval(READ_TEXT).as_str().unwrap().to_string();
    assert!(text.contains("token"), "{text}");
    assert!(!text.contains("resize_image"), "{text}");

    // Through another name (DNS rebinding), even with the token: refused.
    for path in ["/", "/api/calls?token=t0ken", "/api/events?token=t0ken"] {
        browser.goto(&format!("http://rebound.test:{port}{path}"));
        let text = browser.eval(READ_TEXT).as_str().unwrap().to_string();
        assert!(text.contains("Host"), "{path}: {text}");
        assert!(!text.contains("resize_image"), "{path}: {text}");
    }

    drop(browser);
    d.shutdown();
}
