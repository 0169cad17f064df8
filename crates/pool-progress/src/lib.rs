//! Progress bars for pool: indicatif bars, plain log lines, hooks.
