//! The other subcommands: `pool dashboard` serves, `pool bench` explains itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use crate::util::pool;

#[test]
fn dashboard_serves_and_prints_its_address() {
    let mut child = pool(&["dashboard", "--port-range", "0-0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("pool dashboard started on http://")
        .expect(&first);
    // `127.0.0.1:PORT/#token=...`: the page's address carries the token in its fragment.
    let (addr, fragment) = url.split_once('/').expect(&first);
    assert!(fragment.starts_with("#token="), "{first}");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[test]
fn dashboard_rejects_a_bad_port_range() {
    let o = pool(&["dashboard", "--port-range", "9-1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--port-range"));
}

#[test]
fn bench_help_names_the_harness() {
    let o = pool(&["bench", "--help"]).output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("pool-bench"));
}
