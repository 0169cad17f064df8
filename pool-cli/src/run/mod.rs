//! `pool run`: a parallel command runner in the manner of GNU parallel, on a `pool::WorkerPool`
//! of threads. Each worker thread runs one job (a child process) at a time:
//!
//! 1. the inputs ([`inputs`]) are numbered and fed lazily to `imap_unordered`;
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
mod output;
mod placeholders;
mod registry;
mod signals;

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use pool::{MapOptions, ProgressSpec, StartMethod, WorkerPool};

pub(crate) use args::RunArgs;

use self::args::Config;
use self::halt::{HaltPolicy, Tally, When};
use self::inputs::Source;
use self::job::End;
use self::joblog::JobLog;
use self::output::{Capture, Printer};
use self::placeholders::Template;
use self::registry::{KillReason, Registry};

/// Most failures the exit status counts (GNU parallel's).
const MAX_FAILED_STATUS: u64 = 101;

/// One job: its sequence number (from 1) and a value per input source.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct JobSpec {
    seq: u64,
    args: Vec<String>,
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}", self.seq, self.args.join(" "))
    }
}

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
    program: Option<PathBuf>,
    timeout: Option<Duration>,
    retries: u32,
    results: Option<PathBuf>,
    registry: Arc<Registry>,
    printer: Arc<Printer>,
    joblog: Option<JobLog>,
    halt: Option<HaltPolicy>,
    total: Option<usize>,
    tally: Mutex<Tally>,
}

impl Runner {
    fn run_job(&self, slot: usize, job: JobSpec) -> Verdict {
        let mut capture = Capture::new(&self.printer);
        if self.registry.stopping() {
            capture.finish(job.seq);
            return Verdict::Skipped;
        }
        let argv = self.template.render(&job.args, job.seq, slot);
        let mut attempt = None;
        for _ in 0..=self.retries {
            if let Err(e) = capture.begin(self.results.as_deref(), job.seq) {
                let msg = format!(
                    "pool run: cannot write --results for job {}: {e}\n",
                    job.seq
                );
                capture.data(output::Stream::Err, msg.as_bytes());
            }
            let os_argv: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
            let launch = job::Launch {
                program: self.program.as_deref(),
                argv: &os_argv,
                seq: job.seq,
                slot,
                stdin: None,
                ungrouped: false,
            };
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
        let shown = self.template.display(&argv);
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
        capture.finish(job.seq);
        let verdict = match a.end {
            End::Exit(0) => Verdict::Succeeded,
            End::Killed {
                reason: KillReason::Abort,
                ..
            } => Verdict::Aborted,
            _ => Verdict::Failed,
        };
        self.count(verdict, job.seq, &shown);
        verdict
    }

    /// Counts a finished job and applies `--halt` here, in the worker, so that this worker
    /// starts no job once the policy has triggered.
    fn count(&self, verdict: Verdict, seq: u64, shown: &str) {
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
}

/// Runs `pool run`; returns the exit status.
pub(crate) fn main(args: RunArgs) -> anyhow::Result<i32> {
    let cfg = args.validate()?;
    let halt = cfg.halt.and_then(|h| h.active());
    // Ctrl-C is ours from here on, also while we wait for the first input line.
    let registry = Registry::start()?;
    let interrupted = Arc::new(AtomicBool::new(false));
    signals::handle(registry.clone(), interrupted.clone())?;
    if cfg.sources.iter().any(Source::is_stdin) && std::io::stdin().is_terminal() {
        eprintln!("pool run: reading inputs from the terminal (end them with Ctrl-D)");
    }
    let inputs = inputs::read(&cfg.sources, halt.is_some_and(|h| h.needs_total()))?;
    let total = inputs.total;
    let read_error = inputs.error.clone();
    let mut iter = inputs.iter.peekable();
    if iter.peek().is_none() {
        if let Some(e) = read_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(e);
        }
        if cfg.allow_empty {
            return Ok(0);
        }
        bail!(
            "no input: the input sources gave no values (pass inputs after `:::`, in a file \
             after `::::`, or as lines on stdin; --allow-empty makes this a success)"
        );
    }
    if cfg.dry_run {
        return dry_run(&cfg, iter);
    }

    let runner = Arc::new(Runner {
        template: cfg.template.clone(),
        program: cfg.template.fixed_program().and_then(job::resolve),
        timeout: cfg.timeout,
        retries: cfg.retries,
        results: cfg.results.clone(),
        registry: registry.clone(),
        printer: Printer::new(cfg.output, registry.clone()),
        joblog: cfg.joblog.as_deref().map(JobLog::create).transpose()?,
        halt,
        total,
        tally: Mutex::new(Tally::default()),
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
    let jobs = iter
        .enumerate()
        .map(|(i, args)| JobSpec {
            seq: i as u64 + 1,
            args,
        })
        .take_while(move |_| !stop.stopping());

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
        if runner.printer.broken() && !registry.stopping() {
            registry.abort();
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
    let failed = runner
        .tally
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .failed
        + pool_errors;
    Ok(failed.min(MAX_FAILED_STATUS) as i32)
}

fn dry_run(cfg: &Config, inputs: impl Iterator<Item = Vec<String>>) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    for (i, args) in inputs.enumerate() {
        let slot = i % cfg.jobs + 1;
        let argv = cfg.template.render(&args, i as u64 + 1, slot);
        if let Err(e) = writeln!(out, "{}", cfg.template.display(&argv)) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e.into());
        }
    }
    Ok(0)
}
