//! `pool run`: a parallel command runner in the manner of GNU parallel, on a `pool::WorkerPool`
//! of threads. Each worker thread runs one job (a child process) at a time:
//!
//! 1. the inputs ([`inputs`]) are made into numbered jobs ([`jobs`]) and fed lazily to
//!    `imap_unordered`;
//! 2. a worker renders the command ([`placeholders`]), runs it ([`job`]), retries it, prints its
//!    output ([`output`]) and logs it ([`joblog`]);
//! 3. this thread counts outcomes, applies `--halt` ([`halt`]) and computes the exit status.
//!
//! Killing (timeouts, `--halt now`, Ctrl-C) goes through [`registry`] and [`signals`].

mod args;
mod family;
mod halt;
mod inputs;
mod insights;
mod job;
mod joblog;
mod jobs;
mod output;
mod placeholders;
mod registry;
mod signals;
mod unsupported;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pool::{MapOptions, ProgressSpec, StartMethod, WorkerPool};

pub(crate) use args::RunArgs;
pub(crate) use unsupported::message as unsupported_message;

use self::args::{Config, Grouping, OutputMode, Resume, ShellUse};
use self::halt::{HaltPolicy, Tally, When};
use self::inputs::Source;
use self::job::End;
use self::joblog::JobLog;
use self::jobs::JobSpec;
use self::output::{Capture, Printer};
use self::placeholders::{Spread, Template};
use self::registry::{KillReason, Registry};

/// Most failures the exit status counts (GNU parallel's).
const MAX_FAILED_STATUS: u64 = 101;

/// How many failed jobs the summary at the end lists.
const SUMMARY_LINES: usize = 10;

/// How a job ended, as seen by the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Verdict {
    Succeeded,
    Failed,
    /// Killed by `--halt now` or Ctrl-C: neither success nor failure.
    Aborted,
    /// Not started: the run was stopping.
    Skipped,
}

/// What the workers share.
#[derive(Debug)]
struct Runner {
    template: Template,
    /// `--tag`/`--tagstring`.
    tag: Option<Template>,
    /// Execute jobs directly (no shell).
    direct: bool,
    /// Where the program (direct) or the shell was found.
    program: Option<PathBuf>,
    shell: OsString,
    timeout: Option<Duration>,
    tries: u32,
    verbose: bool,
    ungrouped: bool,
    results: Option<PathBuf>,
    registry: Arc<Registry>,
    printer: Arc<Printer>,
    joblog: Option<JobLog>,
    halt: Option<HaltPolicy>,
    total: Option<usize>,
    tally: Mutex<Tally>,
    /// The exit status `--halt` fixed when it triggered.
    halt_status: Mutex<Option<i32>>,
    /// The first failed jobs, for the summary: (seq, how it ended, command line).
    failures: Mutex<Vec<(u64, String, String)>>,
}

impl Runner {
    fn run_job(&self, slot: usize, job: JobSpec) -> Verdict {
        let tag = self.tag.as_ref().map(|t| {
            t.argv(&job.values, job.seq, slot)
                .into_iter()
                .map(OsString::into_vec)
                .collect::<Vec<_>>()
                .join(&b' ')
        });
        let mut capture = Capture::new(&self.printer, job.seq, tag);
        if self.registry.stopping() {
            capture.finish();
            return Verdict::Skipped;
        }
        let script = self.template.script(&job.values, job.seq, slot);
        let argv = if self.direct {
            self.template.argv(&job.values, job.seq, slot)
        } else {
            vec![
                self.shell.clone(),
                "-c".into(),
                OsString::from_vec(script.clone()),
            ]
        };
        let launch = job::Launch {
            program: self.program.as_deref(),
            argv: &argv,
            seq: job.seq,
            slot,
            stdin: job.stdin.as_deref(),
            ungrouped: self.ungrouped,
            die_with_us: self.joblog.is_some(),
        };
        let mut attempt = None;
        for _ in 0..self.tries {
            if let Err(e) = capture.begin(self.results.as_deref(), &job.values) {
                let msg = format!(
                    "pool run: cannot write --results for job {}: {e}\n",
                    job.seq
                );
                capture.data(output::Stream::Err, msg.as_bytes());
            }
            if self.verbose {
                let mut line = script.clone();
                line.push(b'\n');
                capture.data(output::Stream::Out, &line);
            }
            let a = job::run(&launch, self.timeout, &self.registry, &mut capture);
            let stop = a.end.success()
                || matches!(
                    a.end,
                    End::Killed {
                        reason: KillReason::Abort,
                        ..
                    }
                )
                || self.registry.stopping();
            attempt = Some(a);
            if stop {
                break;
            }
        }
        let Some(a) = attempt else {
            unreachable!("at least one attempt runs")
        };
        let shown = String::from_utf8_lossy(&script).into_owned();
        if let Some(log) = &self.joblog {
            log.record(job.seq, &a, capture.received, &shown);
        }
        if let (
            Some(t),
            End::Killed {
                reason: KillReason::Timeout,
                ..
            },
        ) = (self.timeout, &a.end)
        {
            eprintln!(
                "pool run: job {} timed out after {t:?} and was killed: {shown}",
                job.seq
            );
        }
        capture.finish();
        let verdict = match a.end {
            End::Exit(0) => Verdict::Succeeded,
            End::Killed {
                reason: KillReason::Abort,
                ..
            } => Verdict::Aborted,
            _ => Verdict::Failed,
        };
        if verdict == Verdict::Failed {
            let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if f.len() < SUMMARY_LINES {
                f.push((job.seq, a.end.describe(), shown.clone()));
            }
        }
        self.count(verdict, job.seq, &shown, a.end.status());
        verdict
    }

    /// Counts a finished job and applies `--halt` here, in the worker, so that this worker
    /// starts no job once the policy has triggered.
    fn count(&self, verdict: Verdict, seq: u64, shown: &str, status: i32) {
        let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        match verdict {
            Verdict::Succeeded => t.succeeded += 1,
            Verdict::Failed => t.failed += 1,
            Verdict::Aborted | Verdict::Skipped => return,
        }
        let Some(h) = self.halt else { return };
        if self.registry.stopping() || !h.triggered(&t, self.total) {
            return;
        }
        let mut fixed = self.halt_status.lock().unwrap_or_else(|e| e.into_inner());
        if fixed.is_none() {
            *fixed = Some(h.status_on_trigger(&t, self.total, status));
        }
        if h.when == When::Now {
            eprintln!(
                "pool run: --halt {}: stopping after job {seq} ({shown}), killing the running jobs",
                h.describe()
            );
            self.registry.abort();
        } else {
            eprintln!(
                "pool run: --halt {}: after job {seq} ({shown}), starting no more jobs, \
                 waiting for the running ones",
                h.describe()
            );
            self.registry.stop_new();
        }
    }

    /// The exit status of a run that went to its end.
    fn exit_status(&self, pool_errors: u64) -> i32 {
        if let Some(s) = *self.halt_status.lock().unwrap_or_else(|e| e.into_inner()) {
            return s;
        }
        let mut t = *self.tally.lock().unwrap_or_else(|e| e.into_inner());
        t.failed += pool_errors;
        match self.halt {
            Some(h) => h.status_at_end(&t),
            None => t.failed.min(MAX_FAILED_STATUS) as i32,
        }
    }

    /// The failure summary on stderr: how many failed, and the first of them.
    fn summary(&self) {
        let t = *self.tally.lock().unwrap_or_else(|e| e.into_inner());
        if t.failed == 0 {
            return;
        }
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = format!(
            "pool run: {} of {} jobs failed:\n",
            t.failed,
            t.failed + t.succeeded
        );
        for (seq, end, shown) in f.iter() {
            s.push_str(&format!("  job {seq} ({end}): {shown}\n"));
        }
        if t.failed as usize > f.len() {
            s.push_str(&format!(
                "  ... and {} more (--joblog FILE lists every job)\n",
                t.failed as usize - f.len()
            ));
        }
        let _ = std::io::stderr().write_all(s.as_bytes());
    }
}

/// The shell that runs command lines: `$PARALLEL_SHELL`, else `/bin/sh`.
fn shell() -> OsString {
    std::env::var_os("PARALLEL_SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into())
}

/// Runs `pool run`; returns the exit status.
pub(crate) fn main(args: RunArgs) -> anyhow::Result<i32> {
    let mut cfg = args.validate()?;
    let header = cfg.header.then(|| inputs::take_header(&mut cfg.sources));
    let halt = cfg.halt.and_then(|h| h.active());
    // Ctrl-C is ours from here on, also while we wait for the first input line.
    let registry = Registry::start()?;
    let interrupted = Arc::new(AtomicBool::new(false));
    signals::handle(registry.clone(), interrupted.clone())?;
    if cfg.sources.iter().any(Source::is_stdin) && std::io::stdin().is_terminal() {
        eprintln!("pool run: reading inputs from the terminal (end them with Ctrl-D)");
    }
    let count_first =
        halt.is_some_and(|h| h.needs_total()) || cfg.grouping == Grouping::Even || cfg.eta;
    let inputs = inputs::read(&cfg.sources, cfg.separator, count_first, cfg.link)?;
    let read_error = inputs.error.clone();
    let mut names = Vec::new();
    let (jobs, mut total) = jobs::jobs(&cfg, inputs.iter, inputs.total, header, &mut names);
    let mut jobs = jobs.peekable();
    if jobs.peek().is_none() {
        if let Some(e) = read_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(e);
        }
        return Ok(0); // GNU parallel: no input, nothing to do, success
    }
    let template = jobs::template(&cfg, &names)?;
    let direct = match cfg.shell {
        ShellUse::Auto => template.direct(),
        ShellUse::Always => false,
        ShellUse::Never => {
            let ops = template.operator_words();
            if !ops.is_empty() && !cfg.quote {
                eprintln!(
                    "pool run: warning: --no-shell passes {} to the program as argument(s); \
                     without --no-shell a shell would read them as redirections or pipes",
                    ops.iter()
                        .map(|o| format!("`{o}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            true
        }
    };
    let tag = cfg
        .tag
        .as_ref()
        .map(|t| {
            Template::parse(
                std::slice::from_ref(t),
                None,
                None,
                &names,
                false,
                Spread::Words,
            )
        })
        .transpose()?;
    if cfg.dry_run {
        return dry_run(&cfg, &template, jobs);
    }
    let skip = match (cfg.resume, &cfg.joblog) {
        (Some(r), Some(log)) => JobLog::done(log, r == Resume::Succeeded)?,
        _ => Default::default(),
    };
    if let Some(t) = &mut total {
        *t = t.saturating_sub(skip.len());
    }
    let shell = shell();
    let program = if direct {
        template
            .fixed_program()
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(job::resolve)
    } else {
        Some(PathBuf::from(&shell))
    };
    let runner = Arc::new(Runner {
        template,
        tag,
        direct,
        program,
        shell,
        timeout: cfg.timeout,
        tries: cfg.tries,
        verbose: cfg.verbose,
        ungrouped: cfg.output == OutputMode::Ungrouped,
        results: cfg.results.clone(),
        registry: registry.clone(),
        printer: Printer::new(cfg.output, registry.clone()),
        joblog: cfg
            .joblog
            .as_deref()
            .map(|p| JobLog::create(p, cfg.resume.is_some()))
            .transpose()?,
        halt,
        total,
        tally: Mutex::new(Tally::default()),
        halt_status: Mutex::new(None),
        failures: Mutex::new(Vec::new()),
    });

    // No more workers than jobs, when we know how many jobs there are.
    let workers = total.map_or(cfg.jobs, |t| cfg.jobs.min(t).max(1));
    let mut pool = WorkerPool::builder()
        .n_jobs(workers)
        .start_method(StartMethod::Threading)
        .enable_insights(cfg.insights)
        .build()?;
    let mut opts = MapOptions::default()
        .chunk_size(1)
        .max_tasks_active(workers * 2);
    if cfg.bar {
        let mut spec = ProgressSpec::default().unit("jobs").desc("pool run");
        if let Some(t) = total {
            spec = spec.total(t as u64);
        }
        opts = opts.progress(spec);
    }
    let stop = registry.clone();
    let delay = cfg.delay;
    let mut first = true;
    let jobs = jobs
        .filter(move |j| !skip.contains(&j.seq))
        .take_while(move |_| !stop.stopping())
        .inspect(move |_| {
            if let Some(d) = delay
                && !std::mem::take(&mut first)
            {
                std::thread::sleep(d);
            }
        });

    let started = Instant::now();
    let mut pool_errors = 0;
    let r = runner.clone();
    let results = pool.imap_unordered_ctx_with(
        move |ctx, job: JobSpec| r.run_job(ctx.worker_id() + 1, job),
        jobs,
        opts,
    )?;
    for res in results {
        if let Err(e) = res {
            eprintln!("pool run: {e}");
            pool_errors += 1;
        }
    }
    let wall = started.elapsed();
    runner.printer.flush();
    registry.shutdown();
    if cfg.insights {
        let table = insights::table(&pool.get_insights(), wall);
        let _ = std::io::stderr().write_all(table.as_bytes());
    }
    if let Some(e) = read_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        eprintln!("pool run: {e:#}");
        return Ok(255);
    }
    if interrupted.load(Ordering::SeqCst) {
        return Ok(signals::EXIT_INTERRUPTED);
    }
    if !runner.printer.broken() {
        runner.summary();
    }
    Ok(runner.exit_status(pool_errors))
}

fn dry_run(
    cfg: &Config,
    template: &Template,
    jobs: impl Iterator<Item = JobSpec>,
) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    for (i, job) in jobs.enumerate() {
        let slot = i % cfg.jobs + 1;
        let mut line = template.script(&job.values, job.seq, slot);
        line.push(b'\n');
        if let Err(e) = out.write_all(&line) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e.into());
        }
    }
    Ok(0)
}
