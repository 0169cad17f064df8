//! Where the dashboard listens.

use std::net::{IpAddr, Ipv4Addr, TcpListener};

use pool_dashboard::{DashboardConfig, DashboardError, parse_port_range, start_dashboard};

use crate::support::agent;

#[test]
fn it_binds_loopback_by_default_with_a_random_token() {
    let a = start_dashboard(DashboardConfig::default().port_range(0..=0)).unwrap();
    let b = start_dashboard(DashboardConfig::default().port_range(0..=0)).unwrap();
    assert!(a.addr().ip().is_loopback());
    assert_eq!(
        a.url(),
        format!("http://127.0.0.1:{}/#token={}", a.addr().port(), a.token())
    );
    assert_eq!(a.token().len(), 32);
    assert_ne!(a.token(), b.token());
    let shown = format!("{:?}", DashboardConfig::default().token("secret"));
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn a_taken_port_range_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = start_dashboard(DashboardConfig::default().port_range(port..=port)).unwrap_err();
    assert!(matches!(err, DashboardError::NoFreePort { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("{port}-{port}")), "{err}");
    assert!(parse_port_range("9000").is_ok());
    assert!(parse_port_range("a-b").is_err());
}

#[test]
fn exposing_it_beyond_loopback_is_an_explicit_option() {
    let d = start_dashboard(
        DashboardConfig::default()
            .port_range(0..=0)
            .bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    )
    .unwrap();
    assert!(d.addr().ip().is_unspecified());
    assert_eq!(
        d.url(),
        format!("http://localhost:{}/#token={}", d.addr().port(), d.token())
    );
    let loopback = format!("http://127.0.0.1:{}/api/health", d.addr().port());
    assert_eq!(agent().get(loopback).call().unwrap().status().as_u16(), 200);
}
