//! What users see: examples and nested bars in real terminals (tmux) and pipes.

mod forked_lines;
mod nested_bars;
mod seeds;
mod tmux;

/// Spawned workers re-execute this test binary: become a worker before the test harness starts.
#[ctor::ctor(unsafe)]
fn spawned_worker_entry() {
    pool::entry();
}
