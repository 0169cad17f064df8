//! Black-box tests of the dashboard: the reporting protocol, resilience of the reporter, and
//! the page in a real headless browser.

mod browser;
mod config;
mod processes;
mod protocol;
mod resilience;
mod support;
