//! One whole benchmark run: calibrate, run the Rust contenders workload by workload, run the
//! Python peers, check every answer, compute ratios, write the reports.
//!
//! Rust contenders run first, then the Python peers, never at the same time: on two cores any
//! overlap would be measured as slowness. Each Rust contender runs each round in a fresh child
//! process ([`crate::isolate`]), so no contender runs in what another left behind.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::calibrate::spin_k_per_ms;
use crate::cli::Args;
use crate::contenders::Contender;
use crate::isolate::{OneRun, measure_all_in_children};
use crate::python::{self, CONTENDERS, PythonWork};
use crate::results::{Calibration, Machine, Report, Row, Status, WorkloadResult};
use crate::runner::{Prepared, measure_all};
use crate::workload::{PerRun, Sizes, WorkloadKind, reference_checksum};
use crate::{contenders, report};

/// The workspace root, as seen when this crate was compiled (`pool-bench/..`).
fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// What the run produced, for `main` to turn into an exit code.
#[derive(Debug)]
pub struct Outcome {
    /// The report written to disk.
    pub report: Report,
    /// Where it was written.
    pub out_dir: PathBuf,
}

/// Runs the benchmark described by `args`.
pub fn run(args: &Args) -> Result<Outcome> {
    let started = Instant::now();
    let root = workspace_root();
    let bench_dir = args.bench_dir.clone().unwrap_or_else(|| root.join("bench"));
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| bench_dir.join("results"));
    std::fs::create_dir_all(&out_dir)?;
    let sizes = args.sizes()?;
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 5 }).max(1);
    let machine = Machine::detect();
    let n_jobs = args.n_jobs.unwrap_or(machine.cpus).max(1);
    let workloads = select(&args.only)?;

    let rust_k = args.k_per_ms.unwrap_or_else(spin_k_per_ms);
    let exe = std::env::current_exe().context("locating this binary to re-execute it")?;
    // In children, each child makes its own (`OneRun::ballast_mib`).
    let ballast = resident_ballast(if args.in_process { args.ballast_mib } else { 0 });
    eprintln!("== pool-bench: {n_jobs} workers, {runs} runs, spin {rust_k} iterations/ms");
    let contenders = if args.contenders.is_empty() {
        contenders::all(n_jobs)?
    } else {
        let names = args.contenders.iter().map(|n| n.trim());
        names
            .map(|n| contenders::by_name(n, n_jobs))
            .collect::<Result<_>>()?
    };
    let mut results = Vec::new();
    for &kind in &workloads {
        let expected = reference_checksum(kind, &sizes, rust_k);
        let selected: Vec<&dyn Contender> = contenders
            .iter()
            .map(|c| c.as_ref())
            .filter(|c| c.supports(kind))
            .collect();
        let mut rows = if args.in_process {
            let prepared = Prepared::new(kind, &sizes, rust_k);
            measure_all(&selected, &prepared, expected, runs)
        } else {
            let plan = OneRun {
                contender: "",
                kind,
                sizes: &sizes,
                n_jobs,
                k_per_ms: rust_k,
                expected,
                runs,
                ballast_mib: args.ballast_mib,
            };
            measure_all_in_children(&exe, &selected, &plan)
        };
        if let Some(per_run) = kind.per_run(&sizes) {
            rows.iter_mut().for_each(|row| add_rate(row, per_run));
        }
        if kind.uneven_mix().is_some() {
            add_efficiency(&mut rows, n_jobs);
        }
        for row in &rows {
            let times: Vec<_> = row.times_s.iter().map(|t| format!("{t:.4}")).collect();
            eprintln!(
                "{:<15} {:<22} [{}]",
                kind.name(),
                row.contender,
                times.join(", ")
            );
        }
        results.push(WorkloadResult {
            workload: kind.name().into(),
            description: kind.description().into(),
            rows,
        });
    }

    drop(ballast);
    let python_workloads: Vec<WorkloadKind> = workloads
        .iter()
        .copied()
        .filter(|k| k.python_peers())
        .collect();
    let fixed_k = (args.python_work == PythonWork::SameIterations).then_some(rust_k);
    let mut python_info = None;
    let mut python_k = None;
    if python_workloads.is_empty() {
        // Only Rust workloads: no peers to run or to skip.
    } else if args.skip_python {
        add_python_placeholders(
            &mut results,
            &sizes,
            rust_k,
            "--skip-python",
            Status::Skipped,
        );
    } else {
        match python::run_peers(
            &bench_dir,
            &out_dir,
            &python_workloads,
            &sizes,
            n_jobs,
            runs,
            fixed_k,
        ) {
            Ok(py) => {
                for w in &mut results {
                    if let Some(rows) = py.rows.get(&w.workload) {
                        w.rows.extend(rows.iter().cloned());
                    }
                }
                python_info = Some(py.info);
                python_k = Some(py.k_per_ms);
            }
            Err(e) => {
                eprintln!("!!! FAILED: python peers: {e:#}");
                let why = format!("python peers failed: {e:#}");
                add_python_placeholders(&mut results, &sizes, rust_k, &why, Status::Failed);
            }
        }
    }

    let mut report = Report {
        generator: format!("pool-bench {}", env!("CARGO_PKG_VERSION")),
        started_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            - started.elapsed().as_secs(),
        quick: args.quick,
        runs,
        n_jobs,
        machine,
        python: python_info,
        calibration: Calibration {
            rust_k_per_ms: rust_k,
            python_k_per_ms: python_k,
            python_work: args.python_work.name().into(),
        },
        sizes,
        workloads: results,
    };
    report.machine.load_after = Machine::load_average();
    report.compute_ratios();
    report::write_all(&report, &out_dir)?;
    eprintln!(
        "== done in {:.1} s; wrote results.json, results.md, results.svg to {}",
        started.elapsed().as_secs_f64(),
        out_dir.display()
    );
    Ok(Outcome { report, out_dir })
}

/// `mib` MiB of memory, every page written, so it is resident in this process.
pub fn resident_ballast(mib: usize) -> Vec<u8> {
    if mib == 0 {
        return Vec::new();
    }
    let mut v = vec![0u8; mib << 20];
    for page in v.chunks_mut(4096) {
        page[0] = 1;
    }
    eprintln!("== ballast: {mib} MiB resident in the harness process");
    std::hint::black_box(v)
}

fn add_python_placeholders(
    results: &mut [WorkloadResult],
    sizes: &Sizes,
    k: u64,
    why: &str,
    status: Status,
) {
    for w in results.iter_mut() {
        let Some(kind) = WorkloadKind::from_name(&w.workload).filter(|k| k.python_peers()) else {
            continue;
        };
        // Placeholders carry Rust's reference; no Python run happened to check.
        let expected = reference_checksum(kind, sizes, k);
        for c in CONTENDERS
            .into_iter()
            .filter(|c| python::runs_workload(c, kind))
        {
            w.rows.push(python::skipped_row(c, expected, why, status));
        }
    }
}

fn select(only: &[String]) -> Result<Vec<WorkloadKind>> {
    if only.is_empty() {
        return Ok(WorkloadKind::ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in only {
        let Some(kind) = WorkloadKind::from_name(name.trim()) else {
            let names: Vec<_> = WorkloadKind::ALL.iter().map(|w| w.name()).collect();
            bail!(
                "unknown workload {name:?}; expected one of {}",
                names.join(", ")
            );
        };
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    // Report order, whatever order the flags gave.
    out.sort_by_key(|k| WorkloadKind::ALL.iter().position(|w| w == k));
    Ok(out)
}

/// Adds each row's parallel efficiency, `serial / (n_jobs · median)`, to its note, on the
/// uneven mixes (issue #13 asks ≥ 90%): `efficiency 93.1%`.
fn add_efficiency(rows: &mut [Row], n_jobs: usize) {
    let median = |row: &Row| row.summary.map(|s| s.median_s);
    let Some(serial) = rows
        .iter()
        .find(|r| r.contender == "serial")
        .and_then(median)
    else {
        return;
    };
    for row in rows.iter_mut().filter(|r| r.contender != "serial") {
        let Some(m) = median(row) else { continue };
        let eff = format!("efficiency {:.1}%", 100.0 * serial / (n_jobs as f64 * m));
        row.note = Some(
            row.note
                .take()
                .map_or(eff.clone(), |n| format!("{eff}; {n}")),
        );
    }
}

/// Adds the median's time per task or throughput to a row's note (`906 ns per task`,
/// `5.5 GB/s`).
fn add_rate(row: &mut Row, per_run: PerRun) {
    let Some(median) = row.summary.map(|s| s.median_s) else {
        return;
    };
    let rate = match per_run {
        PerRun::Tasks(n) => format!("{} per task", report::human_time(median / n as f64)),
        PerRun::Bytes(b) => format!("{:.2} GB/s", b as f64 / median / 1e9),
    };
    row.note = Some(
        row.note
            .take()
            .map_or(rate.clone(), |n| format!("{rate}; {n}")),
    );
}
