//! Integration tests of `pool run`: the real binary against real commands. One test binary
//! (`autotests = false`), one module per behaviour.

mod util;

mod errors;
mod inputs;
mod kill;
mod ordering;
mod output;
mod placeholders;
mod policy;
mod progress;
mod resume;
mod subcommands;
mod vocabulary;
