//! `pool bench`: the comparison harness, which is its own binary (`pool-bench`, with rayon and
//! the Python peers); this runs the one built beside `pool`.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use anyhow::{Context as _, bail};

/// Runs `pool-bench` with `args` in place of this process.
pub(crate) fn main(args: Vec<String>) -> anyhow::Result<()> {
    let me = std::env::current_exe().context("cannot find this executable")?;
    let harness = me.with_file_name("pool-bench");
    if !harness.exists() {
        bail!(
            "the harness binary is not built next to {}: run `cargo build --release -p pool-bench` \
             (or `cargo run -p pool-bench --release -- {}`)",
            me.display(),
            args.join(" ")
        );
    }
    let e = Command::new(&harness).args(&args).exec();
    Err(e).with_context(|| format!("cannot run {}", harness.display()))
}
