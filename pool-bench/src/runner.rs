//! Runs the Rust contenders on a workload: one checked warm-up run each, then timed rounds.
//!
//! Honesty rule: a contender's timings count only if the checksum of its results equals the
//! serial reference on the warm-up run *and* on every timed run. Otherwise the row is marked
//! `invalid`, the error is printed loudly, and the harness exits non-zero at the end.

use std::time::Instant;

use anyhow::Result;

use crate::contenders::{Contender, U64Task};
use crate::kernels;
use crate::results::{Row, Status};
use crate::stats::Summary;
use crate::workload::{KPerMs, Sizes, WorkloadKind, u64_inputs};

/// A workload's inputs, built once before any contender runs.
#[derive(Debug)]
pub struct Prepared {
    /// Which workload.
    pub kind: WorkloadKind,
    u64_inputs: Vec<u64>,
    payloads: Vec<Vec<u8>>,
    /// The `shared-*` workloads' inputs: `payloads` copied into `SharedBytes`.
    #[cfg(feature = "pool-contenders")]
    shared: Vec<pool::SharedBytes>,
    words: Vec<String>,
    task: U64Task,
    stateful_k: u64,
    sizes: Sizes,
}

impl Prepared {
    /// Builds the inputs of `kind` for the Rust calibration `k_per_ms`.
    pub fn new(kind: WorkloadKind, sizes: &Sizes, k_per_ms: KPerMs) -> Self {
        let u64_inputs = u64_inputs(kind, sizes, k_per_ms);
        let payloads = match kind {
            WorkloadKind::Payload
            | WorkloadKind::RoundTrips
            | WorkloadKind::EchoTrips
            | WorkloadKind::SharedTrips
            | WorkloadKind::SharedEcho => u64_inputs
                .iter()
                .map(|&i| kernels::payload_input(i))
                .collect(),
            WorkloadKind::BigEcho | WorkloadKind::SharedBigEcho => u64_inputs
                .iter()
                .map(|&i| kernels::big_result(i, sizes.big_result_bytes))
                .collect(),
            _ => Vec::new(),
        };
        let words = match kind {
            WorkloadKind::SteadyWords => u64_inputs.iter().map(|&i| kernels::word(i)).collect(),
            _ => Vec::new(),
        };
        let task = match kind {
            WorkloadKind::Cpu1ms => U64Task::Spin {
                k: kernels::iterations_for(sizes.cpu_task_us, k_per_ms),
            },
            kind if kind == WorkloadKind::Skewed || kind.uneven_mix().is_some() => {
                U64Task::SpinPacked
            }
            WorkloadKind::ExpensiveInit => U64Task::TableLookup {
                entries: sizes.table_entries,
            },
            _ => U64Task::Square,
        };
        let stateful_k = kernels::iterations_for(sizes.stateful_task_us, k_per_ms);
        #[cfg(feature = "pool-contenders")]
        let (shared, payloads) = if kind.shared() {
            let shared = payloads
                .iter()
                .map(|p| pool::SharedBytes::from(&p[..]))
                .collect();
            (shared, Vec::new())
        } else {
            (Vec::new(), payloads)
        };
        Self {
            kind,
            u64_inputs,
            payloads,
            #[cfg(feature = "pool-contenders")]
            shared,
            words,
            task,
            stateful_k,
            sizes: sizes.clone(),
        }
    }

    /// One run of a `shared-*` workload; its inputs are cloned before the clock starts, as
    /// the other owned inputs are (a clone of a `SharedBytes` is a reference, not a copy).
    #[cfg(feature = "pool-contenders")]
    fn run_shared(&self, contender: &dyn Contender) -> Result<(f64, u64)> {
        let Some(c) = contender.shared() else {
            anyhow::bail!(
                "{} does not run the {} workload",
                contender.name(),
                self.kind.name()
            );
        };
        let s = &self.sizes;
        let inputs = self.shared.clone();
        let start = Instant::now();
        let (outs, checksum): (_, fn(&[pool::SharedBytes]) -> u64) = match self.kind {
            WorkloadKind::SharedTrips => (c.shared_trips(inputs)?, kernels::payload_checksum),
            WorkloadKind::SharedEcho => (c.shared_echo(inputs)?, kernels::payload_checksum),
            WorkloadKind::SharedBigEcho => (c.shared_echo(inputs)?, kernels::words_checksum),
            _ => (
                c.shared_big_results(s.big_results, s.big_result_bytes)?,
                kernels::words_checksum,
            ),
        };
        let elapsed = start.elapsed().as_secs_f64();
        Ok((elapsed, checksum(&outs)))
    }

    #[cfg(not(feature = "pool-contenders"))]
    fn run_shared(&self, contender: &dyn Contender) -> Result<(f64, u64)> {
        anyhow::bail!(
            "{} needs the pool contenders: {}",
            self.kind.name(),
            contender.name()
        )
    }

    /// One run of `contender`: returns the wall time of the call and the checksum of its
    /// results (computed after the clock stops).
    pub fn run_once(&self, contender: &dyn Contender) -> Result<(f64, u64)> {
        let s = &self.sizes;
        // Owned inputs are cloned before the clock starts: moving them in is what is timed.
        let (owned, owned_payloads) = match self.kind {
            WorkloadKind::SteadyOwned => (self.u64_inputs.clone(), Vec::new()),
            WorkloadKind::RoundTrips | WorkloadKind::EchoTrips | WorkloadKind::BigEcho => {
                (Vec::new(), self.payloads.clone())
            }
            _ => (Vec::new(), Vec::new()),
        };
        let owned_words = match self.kind {
            WorkloadKind::SteadyWords => self.words.clone(),
            _ => Vec::new(),
        };
        let start = Instant::now();
        let u64s = |outs: Result<Vec<u64>>| -> Result<(f64, u64)> {
            let outs = outs?;
            let elapsed = start.elapsed().as_secs_f64();
            Ok((elapsed, kernels::checksum_u64(&outs)))
        };
        match self.kind {
            WorkloadKind::SteadyRange => u64s(contender.steady_range(s.trivial_n)),
            WorkloadKind::SteadySlice => u64s(contender.steady_slice(&self.u64_inputs)),
            WorkloadKind::SteadyOwned => u64s(contender.steady_owned(owned)),
            WorkloadKind::SteadyWords => u64s(contender.steady_words(owned_words)),
            WorkloadKind::FreshRange => u64s(contender.fresh_range(s.trivial_n)),
            WorkloadKind::PerTask => u64s(contender.per_task(s.per_task_n)),
            WorkloadKind::RoundTrips => {
                let outs = contender.round_trips(owned_payloads)?;
                let elapsed = start.elapsed().as_secs_f64();
                Ok((elapsed, kernels::payload_checksum(&outs)))
            }
            WorkloadKind::EchoTrips => {
                let outs = contender.echo(owned_payloads)?;
                let elapsed = start.elapsed().as_secs_f64();
                Ok((elapsed, kernels::payload_checksum(&outs)))
            }
            WorkloadKind::BigEcho => {
                let outs = contender.echo(owned_payloads)?;
                let elapsed = start.elapsed().as_secs_f64();
                Ok((elapsed, kernels::words_checksum(&outs)))
            }
            WorkloadKind::BigResults => {
                let outs = contender.big_results(s.big_results, s.big_result_bytes)?;
                let elapsed = start.elapsed().as_secs_f64();
                Ok((elapsed, kernels::words_checksum(&outs)))
            }
            WorkloadKind::Stateful => {
                let state = contender.stateful(&self.u64_inputs, self.stateful_k)?;
                let elapsed = start.elapsed().as_secs_f64();
                Ok((elapsed, kernels::state_checksum(&state)))
            }
            WorkloadKind::Payload => {
                let outs = contender.payload(&self.payloads)?;
                let elapsed = start.elapsed().as_secs_f64();
                Ok((elapsed, kernels::payload_checksum(&outs)))
            }
            kind if kind.shared() => self.run_shared(contender),
            _ => {
                let outs = contender.map_u64_as(self.task, &self.u64_inputs, self.kind.form())?;
                let elapsed = start.elapsed().as_secs_f64();
                Ok((elapsed, kernels::checksum_u64(&outs)))
            }
        }
    }
}

/// Runs every contender on `prepared`: each does one checked warm-up, then `runs` rounds in
/// which each contender runs once, checked and timed. Rounds interleave the contenders so that a
/// burst of load from elsewhere on the machine is spread over all of them, not pinned on one.
pub fn measure_all(
    contenders: &[&dyn Contender],
    prepared: &Prepared,
    expected: u64,
    runs: usize,
) -> Vec<Row> {
    let mut rows: Vec<Row> = contenders
        .iter()
        .map(|c| new_row(*c, prepared.kind, expected))
        .collect();
    // Timed runs each row gets; cut to SLOW_ROW_RUNS for a row whose warm-up was slow.
    let mut budget = vec![runs; rows.len()];
    for round in 0..=runs {
        for ((c, row), budget) in contenders.iter().zip(&mut rows).zip(&mut budget) {
            if row.status == Status::Ok && round <= *budget {
                let warm_up_s = run_checked(*c, prepared, round, row);
                if round == 0 && warm_up_s > SLOW_ROW_S && runs > SLOW_ROW_RUNS {
                    *budget = SLOW_ROW_RUNS;
                    let cut = format!("{SLOW_ROW_RUNS} runs: warm-up took {warm_up_s:.0} s");
                    row.note = Some(
                        row.note
                            .take()
                            .map_or(cut.clone(), |n| format!("{n}; {cut}")),
                    );
                }
            }
        }
    }
    summarize(&mut rows);
    rows
}

/// Gives each measured row its summary; a row that failed keeps no times.
pub fn summarize(rows: &mut [Row]) {
    for row in rows {
        if row.status == Status::Ok {
            row.summary = Summary::of(&row.times_s);
        } else {
            row.times_s.clear();
        }
    }
}

/// Runs one contender alone: a checked warm-up, then `runs` checked, timed runs.
pub fn measure(contender: &dyn Contender, prepared: &Prepared, expected: u64, runs: usize) -> Row {
    measure_all(&[contender], prepared, expected, runs).remove(0)
}

/// A fresh `ok` row of `contender` on `kind`, before any run.
pub fn new_row(contender: &dyn Contender, kind: WorkloadKind, expected: u64) -> Row {
    Row {
        contender: contender.name(),
        language: "rust".into(),
        status: Status::Ok,
        times_s: Vec::new(),
        summary: None,
        checksum: None,
        expected_checksum: expected,
        ratio_vs_rayon: None,
        ratio_vs_mpire: None,
        note: contender.note(kind),
        error: None,
    }
}

/// A row whose warm-up takes longer than this gets only [`SLOW_ROW_RUNS`] timed runs, so the
/// full sizes finish in minutes (MPIRE spends ~10 µs per task on `trivial`'s 10 M tasks).
/// `bench/peers.py` applies the same rule.
pub const SLOW_ROW_S: f64 = 20.0;
/// Timed runs of a slow row.
pub const SLOW_ROW_RUNS: usize = 3;

/// One run (round 0 is the untimed warm-up); marks the row invalid or failed when it must.
/// Returns the run's wall time (0 when it failed).
fn run_checked(contender: &dyn Contender, prepared: &Prepared, round: usize, row: &mut Row) -> f64 {
    let name = &row.contender;
    let workload = prepared.kind.name();
    match prepared.run_once(contender) {
        Ok((elapsed, checksum)) => {
            row.checksum = Some(checksum);
            let expected = row.expected_checksum;
            if checksum != expected {
                let which = if round == 0 {
                    "the warm-up".to_string()
                } else {
                    format!("timed run {round}")
                };
                let msg = format!(
                    "checksum mismatch on {which}: got {checksum:#018x}, expected {expected:#018x}"
                );
                eprintln!("\n!!! INVALID: {name} on {workload}: {msg}; its timings are void\n");
                row.status = Status::Invalid;
                row.error = Some(msg);
            } else if round > 0 {
                row.times_s.push(elapsed);
            }
            elapsed
        }
        Err(e) => {
            eprintln!("!!! FAILED: {name} on {workload}: {e:#}");
            row.status = Status::Failed;
            row.error = Some(format!("{e:#}"));
            0.0
        }
    }
}
