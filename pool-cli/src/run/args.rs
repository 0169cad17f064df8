//! The flags of `pool run`, in two stages (ripgrep's habit): [`RunArgs`] is what clap parses,
//! [`Config`] is the validated plan the runner executes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use super::halt::HaltPolicy;
use super::inputs::Source;
use super::placeholders::Template;

const EXAMPLES: &str = "\
Examples:
  pool run echo {} ::: a b c                 # one job per argument
  ls *.png | pool run -j4 convert {} {.}.jpg # one job per stdin line
  pool run echo {1}-{2} ::: a b ::: 1 2      # every combination: a-1 a-2 b-1 b-2
  pool run echo {1}-{2} ::: a b :::+ 1 2     # side by side: a-1 b-2
  pool run --shell 'gzip -c {} > {}.gz' :::: files.txt
  pool run --timeout 10s --retries 2 --joblog jobs.tsv ./check.sh ::: host1 host2

Placeholders: {} input, {.} without extension, {/} basename, {//} dirname,
{/.} basename without extension, {#} job number, {%} job slot, {N} {N.} {N/} {N//}
{N/.} the N-th input source. Without any placeholder the inputs are appended.

Exit status: 0 if every job succeeded, else the number of failed jobs (at most 101);
130 after Ctrl-C; 255 on other errors.";

/// `pool run [OPTIONS] [--] COMMAND [ARGS...] [::: ARGS... | :::: FILES...]...`
#[derive(Debug, clap::Args)]
#[command(
    after_help = EXAMPLES,
    override_usage = "pool run [OPTIONS] [--] COMMAND [ARGS...] [::: INPUTS...]... [:::: FILES...]..."
)]
pub(crate) struct RunArgs {
    /// Run at most N jobs at once [default: number of CPUs].
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,

    /// Print the output of jobs in input order (default: in completion order).
    #[arg(short = 'k', long)]
    keep_order: bool,

    /// Print output line by line as jobs produce it (lines of different jobs may alternate, but
    /// never mix within a line). Default: each job's output at once when it ends.
    #[arg(
        long = "line-buffer",
        visible_alias = "lb",
        conflicts_with = "keep_order"
    )]
    line_buffer: bool,

    /// Show a progress bar on stderr.
    #[arg(long)]
    bar: bool,

    /// Show a progress bar with the estimated time left.
    #[arg(long)]
    eta: bool,

    /// Kill a job, with all its children, when it runs longer than this (10, 1.5s, 500ms, 2m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Run a failed job again, up to N more times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    retries: u32,

    /// When to stop: never (default), now,fail=N, soon,fail=N%, now,success=N, soon,done=N ...
    /// `now` kills the running jobs, `soon` lets them finish; no new job starts.
    #[arg(long, value_name = "POLICY", value_parser = HaltPolicy::parse)]
    halt: Option<HaltPolicy>,

    /// Log every job to FILE: Seq Host Starttime JobRuntime Send Receive Exitval Signal Command.
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,

    /// Also save each job's output in DIR/N/stdout and DIR/N/stderr (N: the job number, {#}).
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,

    /// Print the commands that would run, one per line, and run nothing.
    #[arg(long)]
    dry_run: bool,

    /// Run the command with `sh -c`, so it may use pipes, redirections and variables.
    /// Placeholders are replaced by shell-quoted values.
    #[arg(long)]
    shell: bool,

    /// Read inputs from FILE, one per line (same as `:::: FILE`); may be repeated.
    #[arg(short = 'a', long = "arg-file", value_name = "FILE")]
    arg_files: Vec<PathBuf>,

    /// Print the pool's insights table (time per worker, slowest jobs) on stderr at the end.
    #[arg(long)]
    insights: bool,

    /// Succeed without running anything when there is no input (default: an error).
    #[arg(long)]
    allow_empty: bool,

    /// The command and its arguments, then input sources: `::: ARGS...` and `:::: FILES...`
    /// (every combination of them), `:::+ ARGS...` and `::::+ FILES...` (side by side with the
    /// source before).
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        num_args = 0..
    )]
    command: Vec<String>,
}

/// How each job's output reaches our stdout and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputMode {
    /// All of a job's output at once when it ends, in completion order.
    Grouped,
    /// All of a job's output at once, in input order.
    Ordered,
    /// Complete lines as soon as they are written.
    Lines,
}

/// The validated plan of a `pool run`.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) jobs: usize,
    pub(crate) output: OutputMode,
    pub(crate) bar: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retries: u32,
    pub(crate) halt: Option<HaltPolicy>,
    pub(crate) joblog: Option<PathBuf>,
    pub(crate) results: Option<PathBuf>,
    pub(crate) dry_run: bool,
    pub(crate) insights: bool,
    pub(crate) allow_empty: bool,
    pub(crate) template: Template,
    pub(crate) sources: Vec<Source>,
}

impl RunArgs {
    /// Checks the flags and splits the command from its input sources.
    pub(crate) fn validate(self) -> anyhow::Result<Config> {
        let jobs = match self.jobs {
            Some(0) => bail!("-j/--jobs must be at least 1"),
            Some(n) => n,
            None => pool::cpu_count().max(1),
        };
        if self.timeout == Some(Duration::ZERO) {
            bail!("--timeout must be more than zero");
        }
        let (words, mut sources) = split_sources(self.command)?;
        if words.is_empty() {
            bail!(
                "no command given: usage is `pool run [OPTIONS] [--] COMMAND [ARGS...] \
                 [::: INPUTS...]` (see `pool run --help`)"
            );
        }
        sources.extend(self.arg_files.into_iter().map(Source::File));
        if sources.is_empty() {
            sources.push(Source::Stdin);
        }
        let template = Template::parse(&words, self.shell, sources.len())?;
        let output = if self.line_buffer {
            OutputMode::Lines
        } else if self.keep_order {
            OutputMode::Ordered
        } else {
            OutputMode::Grouped
        };
        Ok(Config {
            jobs,
            output,
            bar: self.bar || self.eta,
            timeout: self.timeout,
            retries: self.retries,
            halt: self.halt,
            joblog: self.joblog,
            results: self.results,
            dry_run: self.dry_run,
            insights: self.insights,
            allow_empty: self.allow_empty,
            template,
            sources,
        })
    }
}

/// Splits `COMMAND ARGS... ::: A B :::+ C :::: FILE` into the command words and the sources.
fn split_sources(words: Vec<String>) -> anyhow::Result<(Vec<String>, Vec<Source>)> {
    let mut command = Vec::new();
    let mut sources = Vec::new();
    let mut current: Option<(&'static str, Vec<String>)> = None;
    let mut finish = |cur: Option<(&'static str, Vec<String>)>| -> anyhow::Result<()> {
        let Some((sep, vals)) = cur else {
            return Ok(());
        };
        if vals.is_empty() {
            bail!("`{sep}` must be followed by at least one {}", what(sep));
        }
        let linked = sep.ends_with('+');
        if linked && sources.is_empty() {
            bail!("`{sep}` links to the input source before it, but there is none: use `:::`");
        }
        let wrap = |s: Source| {
            if linked {
                Source::Linked(Box::new(s))
            } else {
                s
            }
        };
        if sep.starts_with("::::") {
            sources.extend(
                vals.into_iter()
                    .map(|v| wrap(Source::File(PathBuf::from(v)))),
            );
        } else {
            sources.push(wrap(Source::Args(vals)));
        }
        Ok(())
    };
    for w in words {
        match w.as_str() {
            ":::" => finish(current.replace((":::", Vec::new())))?,
            ":::+" => finish(current.replace((":::+", Vec::new())))?,
            "::::" => finish(current.replace(("::::", Vec::new())))?,
            "::::+" => finish(current.replace(("::::+", Vec::new())))?,
            _ => match &mut current {
                Some((_, vals)) => vals.push(w),
                None => command.push(w),
            },
        }
    }
    finish(current)?;
    Ok((command, sources))
}

fn what(sep: &str) -> &'static str {
    if !sep.starts_with("::::") {
        "argument (the inputs)"
    } else {
        "file name (files of inputs, one per line)"
    }
}

/// Parses `10`, `1.5`, `1.5s`, `500ms`, `2m`, `1h` (a bare number is seconds, as in GNU parallel).
pub(crate) fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a duration (examples: 10, 1.5s, 500ms, 2m, 1h)"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => bail!("unknown unit `{unit}` in `{s}`: use ms, s, m, h or d"),
    };
    Duration::try_from_secs_f64(n * scale).with_context(|| format!("`{s}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("3x").is_err());
    }

    #[test]
    fn sources_split() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (cmd, src) = split_sources(w(&["echo", "{}", ":::", "a", "b", "::::", "f"])).unwrap();
        assert_eq!(cmd, w(&["echo", "{}"]));
        assert_eq!(src.len(), 2);
        assert!(split_sources(w(&["echo", ":::"])).is_err());
    }
}
