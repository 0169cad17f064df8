//! `pool`: run commands in parallel with progress, timeouts, retries and a job log.
//!
//! This file is a thin dispatcher: it parses the command line, hands each subcommand to its
//! module and turns the outcome into an exit status. Exit statuses of `pool run` follow GNU
//! parallel: 0 when every job succeeded, the number of failed jobs (at most 101) otherwise,
//! 130 after Ctrl-C, and 255 for usage and other errors.

mod bench;
mod dashboard;
mod run;

use clap::{Parser, Subcommand};

/// Exit status for usage errors and failures of `pool` itself (GNU parallel's).
const EXIT_ERROR: i32 = 255;

#[derive(Debug, Parser)]
#[command(
    name = "pool",
    version,
    about = "Run commands in parallel with progress, timeouts, retries and a job log.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command once per input, in parallel (GNU parallel's model).
    Run(Box<run::RunArgs>),
    /// Serve the live dashboard that pools report their progress, errors and insights to.
    Dashboard(dashboard::DashboardArgs),
    /// Run the comparison benchmark harness (arguments go to `pool-bench`, e.g. `--quick`).
    Bench {
        /// Arguments for the harness.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // An option `pool run` lacks: say what it is and why, not clap's "use -- --flag".
            let is_run = std::env::args().nth(1).as_deref() == Some("run");
            if is_run
                && e.kind() == clap::error::ErrorKind::UnknownArgument
                && let Some(clap::error::ContextValue::String(flag)) =
                    e.get(clap::error::ContextKind::InvalidArg)
            {
                eprintln!("{}", run::unsupported_message(flag));
                std::process::exit(EXIT_ERROR);
            }
            // --help and --version print to stdout and succeed; usage errors fail like GNU
            // parallel's (255).
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli.command {
        Command::Run(args) => match run::main(*args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("pool run: {e:#}");
                EXIT_ERROR
            }
        },
        Command::Dashboard(args) => match dashboard::main(args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("pool dashboard: {e:#}");
                EXIT_ERROR
            }
        },
        Command::Bench { args } => match bench::main(args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("pool bench: {e:#}");
                EXIT_ERROR
            }
        },
    };
    std::process::exit(code);
}
