//! The flags of `pool run`, in two stages (ripgrep's habit): [`RunArgs`] is what clap parses,
//! [`Config`] is the validated plan the runner executes.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use super::halt::HaltPolicy;
use super::inputs::Source;

const EXAMPLES: &str = "\
Examples:
  pool run echo {} ::: a b c                 # one job per argument
  ls *.png | pool run -j4 convert {} {.}.jpg # one job per stdin line
  pool run echo {1}-{2} ::: a b ::: 1 2      # every combination: a-1 a-2 b-1 b-2
  pool run echo {1}-{2} ::: a b :::+ 1 2     # side by side: a-1 b-2
  pool run 'gzip -c {} > {}.gz' :::: files.txt   # shell syntax: through sh, inputs quoted
  pool run --timeout 10s --retries 2 --joblog jobs.tsv ./check.sh ::: host1 host2

Placeholders: {} input, {.} without extension, {/} basename, {//} dirname,
{/.} basename without extension, {#} job number, {%} job slot, {N} {N.} {N/} {N//}
{N/.} the N-th input source. Without any placeholder the inputs are appended.

Exit status: 0 if every job succeeded, else the number of failed jobs (at most 101;
--halt changes it as in GNU parallel);
130 after Ctrl-C; 255 on other errors.";

/// `pool run [OPTIONS] [--] COMMAND [ARGS...] [::: ARGS... | :::: FILES...]...`
#[derive(Debug, clap::Args)]
#[command(
    after_help = EXAMPLES,
    override_usage = "pool run [OPTIONS] [--] COMMAND [ARGS...] [::: INPUTS...]... [:::: FILES...]..."
)]
pub(crate) struct RunArgs {
    /// Jobs at once: N, +N / -N (CPUs plus or minus N), N% (of the CPUs), 0 (as many as there
    /// are jobs) [default: number of CPUs].
    #[arg(
        short = 'j',
        long = "jobs",
        visible_short_alias = 'P',
        value_name = "N",
        allow_hyphen_values = true
    )]
    jobs: Option<String>,

    /// Print the output of jobs in input order (default: in completion order).
    #[arg(short = 'k', long)]
    keep_order: bool,

    /// Print output line by line as jobs produce it (lines of different jobs may alternate, but
    /// never mix within a line). With -k, the oldest running job prints live, the others wait.
    #[arg(long = "line-buffer", visible_alias = "lb")]
    line_buffer: bool,

    /// Let jobs write straight to our stdout and stderr (fastest; output of jobs may mix).
    #[arg(short = 'u', long)]
    ungroup: bool,

    /// Show a progress bar on stderr (counts jobs, shows the time left).
    #[arg(long, visible_alias = "progress")]
    bar: bool,

    /// Show a progress bar with the estimated time left (inputs are counted first, as GNU does).
    #[arg(long)]
    eta: bool,

    /// Kill a job, with all its children, when it runs longer than this (10, 1.5s, 500ms, 2m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Run a failing job at most N times in all (GNU parallel's counting: 1 = no retry).
    #[arg(long, value_name = "N", default_value_t = 1)]
    retries: u32,

    /// When to stop: never (default), now,fail=N, soon,fail=N%, now,success=N, soon,done=N ...
    /// `now` kills the running jobs, `soon` lets them finish; no new job starts. Short forms:
    /// 1 (soon,fail=1), 2 (now,fail=1), -1 (soon,success=1), -2 (now,success=1), P% (soon,fail=P%).
    #[arg(long, visible_alias = "halt-on-error", value_name = "POLICY", value_parser = HaltPolicy::parse, allow_hyphen_values = true)]
    halt: Option<HaltPolicy>,

    /// Log every job to FILE: Seq Host Starttime JobRuntime Send Receive Exitval Signal Command.
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,

    /// With --joblog: skip the jobs the log shows as finished, run the others, append to it.
    #[arg(long, requires = "joblog")]
    resume: bool,

    /// With --joblog: like --resume, but also run again the jobs the log shows as failed.
    #[arg(long, requires = "joblog")]
    resume_failed: bool,

    /// Save each job's output in DIR/1/<value>/stdout, stderr and seq (GNU parallel's tree).
    #[arg(long, visible_alias = "res", value_name = "DIR")]
    results: Option<PathBuf>,

    /// Print the commands that would run, one per line, and run nothing.
    #[arg(long)]
    dry_run: bool,

    /// Run every job through the shell, even a plain command (which otherwise runs directly,
    /// with the same meaning and without the cost of a shell).
    #[arg(long, conflicts_with = "no_shell")]
    shell: bool,

    /// Never use a shell: each command word is one argument, values are substituted as they are.
    #[arg(long)]
    no_shell: bool,

    /// Quote the command: each word is one argument, as typed (GNU's -q; runs without a shell).
    #[arg(short = 'q', long)]
    quote: bool,

    /// Read inputs from FILE, one per line (same as `:::: FILE`); may be repeated.
    #[arg(short = 'a', long = "arg-file", value_name = "FILE")]
    arg_files: Vec<PathBuf>,

    /// Inputs end at this byte instead of a newline (\n, \t, \0 and \\ are understood).
    #[arg(short = 'd', long, value_name = "DELIM")]
    delimiter: Option<String>,

    /// Inputs end at NUL bytes (for `find -print0`).
    #[arg(short = '0', long)]
    null: bool,

    /// Split each input into columns at this regular expression: {1}, {2}...
    #[arg(long, visible_alias = "colsep", short = 'C', value_name = "REGEX")]
    col_sep: Option<String>,

    /// The first input (of each source) names the columns: {name} (`--header :`).
    #[arg(long, value_name = "REGEX")]
    header: Option<String>,

    /// Take the sources side by side (shorter ones wrap around) instead of every combination.
    #[arg(long, visible_alias = "xapply")]
    link: bool,

    /// At most N inputs per job; {} is all of them, as separate words.
    #[arg(short = 'n', long = "max-args", value_name = "N")]
    max_args: Option<usize>,

    /// N inputs per job, as {1}..{N} (missing ones are empty).
    #[arg(short = 'N', long = "max-replace-args", value_name = "N")]
    max_replace_args: Option<usize>,

    /// As many inputs per job as spread them evenly over the slots; a word with {} is repeated
    /// for each input (context replace).
    #[arg(short = 'X', long = "xargs-context")]
    context: bool,

    /// As many inputs per job as spread them evenly over the slots; {} is all of them.
    #[arg(short = 'm', long = "multiple")]
    multiple: bool,

    /// Use STR instead of {} for the input.
    #[arg(short = 'I', value_name = "STR")]
    replace: Option<String>,

    /// Print each job's command line (on stdout, with its output).
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,

    /// Prefix each output line with the job's inputs and a tab.
    #[arg(long)]
    tag: bool,

    /// Prefix each output line with STR (placeholders allowed) and a tab.
    #[arg(long, value_name = "STR")]
    tagstring: Option<String>,

    /// Wait this long between starting two jobs (10, 1.5s, 500ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    delay: Option<Duration>,

    /// Split stdin into blocks (at newlines) and give each job one block on its stdin.
    #[arg(long)]
    pipe: bool,

    /// The size of a --pipe block (1M, 100k, 512): records are added until it is reached.
    #[arg(long, visible_alias = "block-size", value_name = "SIZE", value_parser = parse_size)]
    block: Option<usize>,

    /// Print the pool's insights table (time per worker, slowest jobs) on stderr at the end.
    #[arg(long)]
    insights: bool,

    /// Accepted for compatibility: no input is a success (GNU parallel's behaviour).
    #[arg(long, hide = true)]
    allow_empty: bool,

    /// Accepted for compatibility with GNU parallel scripts; they change nothing here.
    #[arg(long = "will-cite", hide = true)]
    will_cite: bool,
    #[arg(long = "no-notice", hide = true)]
    no_notice: bool,
    #[arg(long = "group", hide = true)]
    group: bool,
    #[arg(short = 'r', long = "no-run-if-empty", hide = true)]
    no_run_if_empty: bool,

    /// The command and its arguments, then input sources: `::: ARGS...` and `:::: FILES...`
    /// (every combination of them), `:::+ ARGS...` and `::::+ FILES...` (side by side with the
    /// source before).
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        num_args = 0..,
        value_parser = clap::value_parser!(OsString)
    )]
    command: Vec<OsString>,
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
    /// Complete lines as soon as they are written by the oldest job; the others wait their turn.
    OrderedLines,
    /// The job writes to our stdout and stderr itself.
    Ungrouped,
}

/// How inputs are grouped into jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// One input (a value per source) per job.
    One,
    /// Up to N inputs per job.
    Up(usize),
    /// The inputs spread evenly over the job slots (`-X`, `-m`).
    Even,
}

/// When the runner uses a shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShellUse {
    /// When the command line holds shell syntax (see [`super::placeholders`]).
    Auto,
    Always,
    Never,
}

/// The validated plan of a `pool run`.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) jobs: usize,
    pub(crate) output: OutputMode,
    pub(crate) bar: bool,
    /// `--eta`: count the inputs first, so that the time left is known from the start.
    pub(crate) eta: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) tries: u32,
    pub(crate) halt: Option<HaltPolicy>,
    pub(crate) joblog: Option<PathBuf>,
    pub(crate) resume: Option<Resume>,
    pub(crate) results: Option<PathBuf>,
    pub(crate) dry_run: bool,
    pub(crate) insights: bool,
    pub(crate) shell: ShellUse,
    pub(crate) words: Vec<Vec<u8>>,
    pub(crate) replace: Option<Vec<u8>>,
    pub(crate) quote: bool,
    pub(crate) sources: Vec<Source>,
    pub(crate) separator: u8,
    pub(crate) colsep: Option<regex::bytes::Regex>,
    pub(crate) header: bool,
    pub(crate) link: bool,
    pub(crate) grouping: Grouping,
    pub(crate) context: bool,
    pub(crate) verbose: bool,
    pub(crate) tag: Option<Vec<u8>>,
    pub(crate) delay: Option<Duration>,
    pub(crate) pipe: Option<usize>,
}

/// `--resume` or `--resume-failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Skip every job in the log.
    Finished,
    /// Skip the jobs the log shows as succeeded.
    Succeeded,
}

impl RunArgs {
    /// Checks the flags and splits the command from its input sources.
    pub(crate) fn validate(self) -> anyhow::Result<Config> {
        let cpus = pool::cpu_count().max(1);
        let jobs = match &self.jobs {
            Some(spec) => parse_jobs(spec, cpus)?,
            None => cpus,
        };
        if self.timeout == Some(Duration::ZERO) {
            bail!("--timeout must be more than zero");
        }
        let (words, mut sources) = split_sources(self.command)?;
        if words.is_empty() && !self.pipe {
            bail!(
                "no command given: usage is `pool run [OPTIONS] [--] COMMAND [ARGS...] \
                 [::: INPUTS...]` (see `pool run --help`)"
            );
        }
        sources.extend(self.arg_files.into_iter().map(Source::File));
        if sources.is_empty() {
            sources.push(Source::Stdin);
        }
        let output = match (self.ungroup, self.line_buffer, self.keep_order) {
            (true, _, _) => OutputMode::Ungrouped,
            (false, true, true) => OutputMode::OrderedLines,
            (false, true, false) => OutputMode::Lines,
            (false, false, true) => OutputMode::Ordered,
            (false, false, false) => OutputMode::Grouped,
        };
        let separator = match (self.null, &self.delimiter) {
            (true, Some(_)) => {
                bail!("-0/--null and -d/--delimiter both set the delimiter: give one")
            }
            (true, None) => 0,
            (false, Some(d)) => parse_delimiter(d)?,
            (false, None) => b'\n',
        };
        let colsep = self
            .col_sep
            .as_deref()
            .map(|c| {
                regex::bytes::Regex::new(c)
                    .with_context(|| format!("--colsep `{c}` is not a regular expression"))
            })
            .transpose()?;
        let grouping = match (
            self.max_args,
            self.max_replace_args,
            self.context || self.multiple,
        ) {
            (Some(0), _, _) | (_, Some(0), _) => bail!("-n/-N must be at least 1"),
            (Some(_), Some(_), _) => {
                bail!("-n and -N both set how many inputs a job takes: give one")
            }
            (Some(n), None, _) | (None, Some(n), _) => Grouping::Up(n),
            (None, None, true) => Grouping::Even,
            (None, None, false) => Grouping::One,
        };
        if self.pipe && (self.link || colsep.is_some() || self.header.is_some()) {
            bail!(
                "--pipe gives each job a block of stdin: --link, --colsep and --header do not apply"
            );
        }
        let shell = match (self.shell, self.no_shell || self.quote) {
            (true, _) => ShellUse::Always,
            (false, true) => ShellUse::Never,
            (false, false) => ShellUse::Auto,
        };
        let tag = match (self.tag, self.tagstring) {
            (_, Some(t)) => Some(t.into_bytes()),
            (true, None) => Some(b"{}".to_vec()),
            (false, None) => None,
        };
        Ok(Config {
            jobs,
            output,
            bar: self.bar || self.eta,
            eta: self.eta,
            timeout: self.timeout,
            tries: self.retries.max(1),
            halt: self.halt,
            joblog: self.joblog,
            resume: match (self.resume, self.resume_failed) {
                (_, true) => Some(Resume::Succeeded),
                (true, false) => Some(Resume::Finished),
                (false, false) => None,
            },
            results: self.results,
            dry_run: self.dry_run,
            insights: self.insights,
            shell,
            words: words.into_iter().map(OsString::into_vec).collect(),
            replace: self.replace.map(String::into_bytes),
            quote: self.quote,
            sources,
            separator,
            colsep,
            header: self.header.is_some(),
            link: self.link,
            grouping,
            context: self.context,
            verbose: self.verbose,
            tag,
            delay: self.delay,
            pipe: self.pipe.then(|| self.block.unwrap_or(1024 * 1024)),
        })
    }
}

/// `-j`: N, +N, -N, N%, 0 (unbounded, as many as there are jobs).
fn parse_jobs(spec: &str, cpus: usize) -> anyhow::Result<usize> {
    let bad = || {
        anyhow::anyhow!(
            "-j/--jobs `{spec}`: expected N, +N, -N (CPUs plus or minus N), N% (of the CPUs) or 0"
        )
    };
    let n = if let Some(p) = spec.strip_suffix('%') {
        let p: f64 = p.parse().map_err(|_| bad())?;
        (cpus as f64 * p / 100.0).floor() as usize
    } else if let Some(plus) = spec.strip_prefix('+') {
        cpus + plus.parse::<usize>().map_err(|_| bad())?
    } else if let Some(minus) = spec.strip_prefix('-') {
        cpus.saturating_sub(minus.parse::<usize>().map_err(|_| bad())?)
    } else {
        match spec.parse::<usize>().map_err(|_| bad())? {
            0 => UNBOUNDED_JOBS,
            n => n,
        }
    };
    Ok(n.max(1))
}

/// `-j 0`: as many jobs at once as there are jobs, up to this many.
const UNBOUNDED_JOBS: usize = 1024;

/// `-d`: one byte, or `\n`, `\t`, `\0`, `\\`.
fn parse_delimiter(d: &str) -> anyhow::Result<u8> {
    Ok(match d {
        "\\n" => b'\n',
        "\\t" => b'\t',
        "\\0" => 0,
        "\\\\" => b'\\',
        d if d.len() == 1 => d.as_bytes()[0],
        _ => bail!("-d/--delimiter `{d}`: expected one byte, or \\n, \\t, \\0, \\\\"),
    })
}

/// `--block`: 512, 100k, 1M, 1G (powers of 1024, as GNU parallel).
pub(crate) fn parse_size(s: &str) -> anyhow::Result<usize> {
    let (num, scale) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let scale = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                _ => bail!("`{s}`: the unit should be k, M or G"),
            };
            (&s[..i], scale)
        }
        _ => (s, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a size (512, 100k, 1M)"))?;
    Ok(((n * scale as f64) as usize).max(1))
}

/// Splits `COMMAND ARGS... ::: A B :::+ C :::: FILE` into the command words and the sources.
fn split_sources(words: Vec<OsString>) -> anyhow::Result<(Vec<OsString>, Vec<Source>)> {
    let mut command = Vec::new();
    let mut sources = Vec::new();
    let mut current: Option<(&'static str, Vec<OsString>)> = None;
    let mut finish = |cur: Option<(&'static str, Vec<OsString>)>| -> anyhow::Result<()> {
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
            sources.push(wrap(Source::Args(
                vals.into_iter().map(OsString::into_vec).collect(),
            )));
        }
        Ok(())
    };
    for w in words {
        match w.to_str().unwrap_or("") {
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
    fn job_counts() {
        assert_eq!(parse_jobs("3", 2).unwrap(), 3);
        assert_eq!(parse_jobs("+1", 2).unwrap(), 3);
        assert_eq!(parse_jobs("-1", 2).unwrap(), 1);
        assert_eq!(parse_jobs("-5", 2).unwrap(), 1);
        assert_eq!(parse_jobs("50%", 4).unwrap(), 2);
        assert_eq!(parse_jobs("200%", 2).unwrap(), 4);
        assert_eq!(parse_jobs("0", 2).unwrap(), UNBOUNDED_JOBS);
        assert!(parse_jobs("x", 2).is_err());
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert_eq!(parse_delimiter("\\0").unwrap(), 0);
    }

    #[test]
    fn sources_split() {
        let w = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let (cmd, src) = split_sources(w(&["echo", "{}", ":::", "a", "b", "::::", "f"])).unwrap();
        assert_eq!(cmd, w(&["echo", "{}"]));
        assert_eq!(src.len(), 2);
        assert!(split_sources(w(&["echo", ":::"])).is_err());
    }
}
