//! The workloads: the seven of issue #5 (which the Python peers run too), then the rows of
//! issue #17's table (Rust only): their names, sizes, inputs, and serial reference answers.
//!
//! A workload is prepared once (inputs built outside any timing) and then handed to every
//! contender. The reference checksum comes from a plain serial loop over [`crate::kernels`],
//! never from a contender, so a contender that drops, reorders or miscomputes results is caught.

use serde::{Deserialize, Serialize};

use crate::kernels;

/// The workloads, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// `x * x` over many integers: pure scheduling and transfer overhead.
    Trivial,
    /// Many tasks of ~1 ms arithmetic.
    Cpu1ms,
    /// Task lengths from a heavy-tailed (Pareto) distribution with a fixed seed.
    Skewed,
    /// 400 tasks: 392 of 0.2 ms and 8 of 50 ms spread among them (issue #13).
    Uneven,
    /// 400 tasks of lognormal length: median 0.5 ms, σ 1.2, capped at 50 ms, fixed seed.
    Lognormal,
    /// `uneven` through `imap`.
    UnevenImap,
    /// `uneven` through `map_unordered`.
    UnevenUnordered,
    /// `uneven` through `imap_unordered`.
    UnevenImapUnordered,
    /// `lognormal` through `imap`.
    LognormalImap,
    /// `lognormal` through `map_unordered`.
    LognormalUnordered,
    /// `lognormal` through `imap_unordered`.
    LognormalImapUnordered,
    /// Short tasks that all update a per-worker state, merged at the end.
    Stateful,
    /// A ~100 MB table that tasks read, built once per worker (or per task, if the contender must).
    ExpensiveInit,
    /// 1 MiB inputs and 1 MiB outputs per task.
    Payload,
    /// Pool start, one task, join.
    Startup,
    /// A keep-alive pool started before the clock: `x * x` over the range `0..n`.
    SteadyRange,
    /// A keep-alive pool: `x * x` over a borrowed slice (`v.iter().copied()`; rayon `par_iter`).
    SteadySlice,
    /// A keep-alive pool: `x * x` over an owned `Vec` moved in (cloned before the clock).
    SteadyOwned,
    /// A keep-alive pool: a short word's byte sum over an owned `Vec<String>` moved in: inputs
    /// that own memory, which a thread worker must keep a copy of for an error report.
    SteadyWords,
    /// Build a pool, `x * x` over `0..n`, join.
    FreshRange,
    /// One worker, `chunk_size(1)`: what one task's round trip costs.
    PerTask,
    /// A keep-alive pool, `chunk_size(1)`: 1 MiB in, 1 MiB out per task (inputs moved in).
    RoundTrips,
    /// A keep-alive pool: a few tasks that each return one big result.
    BigResults,
    /// `round-trips` with a task that returns its input (`|v| v`): the transport alone.
    EchoTrips,
    /// `big-results`' sizes, each buffer moved in and returned (`|v| v`): the transport alone.
    BigEcho,
    /// `round-trips` with `SharedBytes` in and out: buffers that cross as handles.
    SharedTrips,
    /// `echo-trips` with `SharedBytes`.
    SharedEcho,
    /// `big-results` with `SharedBytes` results, written where the caller reads them.
    SharedBigResults,
    /// `big-echo` with `SharedBytes`.
    SharedBigEcho,
}

impl WorkloadKind {
    /// All workloads, in report order.
    pub const ALL: [WorkloadKind; 29] = [
        Self::Trivial,
        Self::Cpu1ms,
        Self::Skewed,
        Self::Uneven,
        Self::Lognormal,
        Self::UnevenImap,
        Self::UnevenUnordered,
        Self::UnevenImapUnordered,
        Self::LognormalImap,
        Self::LognormalUnordered,
        Self::LognormalImapUnordered,
        Self::Stateful,
        Self::ExpensiveInit,
        Self::Payload,
        Self::Startup,
        Self::SteadyRange,
        Self::SteadySlice,
        Self::SteadyOwned,
        Self::SteadyWords,
        Self::FreshRange,
        Self::PerTask,
        Self::RoundTrips,
        Self::BigResults,
        Self::EchoTrips,
        Self::BigEcho,
        Self::SharedTrips,
        Self::SharedEcho,
        Self::SharedBigResults,
        Self::SharedBigEcho,
    ];

    /// Whether `bench/peers.py` runs this workload (issue #5's seven); the others are Rust only.
    pub fn python_peers(self) -> bool {
        matches!(
            self,
            Self::Trivial
                | Self::Cpu1ms
                | Self::Skewed
                | Self::Uneven
                | Self::Lognormal
                | Self::Stateful
                | Self::ExpensiveInit
        )
    }

    /// Whether buffers are `pool::SharedBytes` (only contenders that can name the type run it).
    pub fn shared(self) -> bool {
        matches!(
            self,
            Self::SharedTrips | Self::SharedEcho | Self::SharedBigResults | Self::SharedBigEcho
        )
    }

    /// The task lengths of the uneven mixes of issue #13 (in µs), whatever the form.
    pub fn uneven_mix(self) -> Option<Vec<u64>> {
        match self {
            Self::Uneven | Self::UnevenImap | Self::UnevenUnordered | Self::UnevenImapUnordered => {
                Some(uneven_micros())
            }
            Self::Lognormal
            | Self::LognormalImap
            | Self::LognormalUnordered
            | Self::LognormalImapUnordered => Some(lognormal_micros()),
            _ => None,
        }
    }

    /// Which call of a pool runs the workload (contenders without the choice ignore it).
    pub fn form(self) -> Form {
        match self {
            Self::UnevenImap | Self::LognormalImap => Form::Imap,
            Self::UnevenUnordered | Self::LognormalUnordered => Form::MapUnordered,
            Self::UnevenImapUnordered | Self::LognormalImapUnordered => Form::ImapUnordered,
            _ => Form::Map,
        }
    }

    /// A form variant of an uneven mix: only the pools, rayon (for the ratio) and serial (for
    /// the efficiency) run it.
    pub fn form_variant(self) -> bool {
        self.form() != Form::Map
    }

    /// What one run moves, for the report's per-task time or throughput.
    pub fn per_run(self, sizes: &Sizes) -> Option<PerRun> {
        match self {
            Self::PerTask => Some(PerRun::Tasks(sizes.per_task_n)),
            Self::RoundTrips | Self::EchoTrips | Self::SharedTrips | Self::SharedEcho => Some(
                PerRun::Bytes(2 * sizes.round_trips * kernels::PAYLOAD_BYTES as u64),
            ),
            Self::BigResults | Self::SharedBigResults => {
                Some(PerRun::Bytes(sizes.big_results * sizes.big_result_bytes))
            }
            Self::BigEcho | Self::SharedBigEcho => Some(PerRun::Bytes(
                2 * sizes.big_results * sizes.big_result_bytes,
            )),
            _ => None,
        }
    }

    /// The name used on the command line, in JSON and by `bench/peers.py`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Trivial => "trivial",
            Self::Cpu1ms => "cpu-1ms",
            Self::Skewed => "skewed",
            Self::Uneven => "uneven",
            Self::Lognormal => "lognormal",
            Self::UnevenImap => "uneven-imap",
            Self::UnevenUnordered => "uneven-unordered",
            Self::UnevenImapUnordered => "uneven-imap-unordered",
            Self::LognormalImap => "lognormal-imap",
            Self::LognormalUnordered => "lognormal-unordered",
            Self::LognormalImapUnordered => "lognormal-imap-unordered",
            Self::Stateful => "stateful",
            Self::ExpensiveInit => "expensive-init",
            Self::Payload => "payload",
            Self::Startup => "startup",
            Self::SteadyRange => "steady-range",
            Self::SteadySlice => "steady-slice",
            Self::SteadyOwned => "steady-owned",
            Self::SteadyWords => "steady-words",
            Self::FreshRange => "fresh-range",
            Self::PerTask => "per-task",
            Self::RoundTrips => "round-trips",
            Self::BigResults => "big-results",
            Self::EchoTrips => "echo-trips",
            Self::BigEcho => "big-echo",
            Self::SharedTrips => "shared-trips",
            Self::SharedEcho => "shared-echo",
            Self::SharedBigResults => "shared-big-results",
            Self::SharedBigEcho => "shared-big-echo",
        }
    }

    /// One line on what the workload does and what it measures.
    pub fn description(self) -> &'static str {
        match self {
            Self::Trivial => {
                "x*x over every integer below N: per-task overhead and result transfer"
            }
            Self::Cpu1ms => "tasks of ~1 ms xorshift arithmetic: scaling on CPU-bound work",
            Self::Skewed => "task lengths from a capped Pareto draw (fixed seed): load balancing",
            Self::Uneven => "392 tasks of 0.2 ms and 8 of 50 ms: no slow task may stall the rest",
            Self::Lognormal => "400 lognormal task lengths (median 0.5 ms, capped at 50 ms)",
            Self::UnevenImap => "uneven, through imap (results read as they come, in order)",
            Self::UnevenUnordered => "uneven, through map_unordered",
            Self::UnevenImapUnordered => "uneven, through imap_unordered",
            Self::LognormalImap => "lognormal, through imap",
            Self::LognormalUnordered => "lognormal, through map_unordered",
            Self::LognormalImapUnordered => "lognormal, through imap_unordered",
            Self::Stateful => {
                "50 µs tasks adding into a per-worker 1024-bin histogram, merged at exit"
            }
            Self::ExpensiveInit => {
                "a 100 MB table built per worker (or per task), 1024 lookups per task"
            }
            Self::Payload => "1 MiB in, 1 MiB out per task (byte-wise affine map): bulk transfer",
            Self::Startup => "start a pool, run one task, join: fixed cost of a pool",
            Self::SteadyRange => "steady pool, x*x over 0..n (the range itself is the input)",
            Self::SteadySlice => {
                "steady pool, x*x over a borrowed slice (v.iter().copied(); rayon par_iter)"
            }
            Self::SteadyOwned => "steady pool, x*x over an owned Vec moved in",
            Self::SteadyWords => {
                "steady pool, a word's byte sum over an owned Vec<String> moved in"
            }
            Self::FreshRange => "build a pool, x*x over 0..n, join",
            Self::PerTask => "one worker, chunk_size(1), x*x: the cost of one task's round trip",
            Self::RoundTrips => "steady pool, chunk_size(1), 1 MiB in and 1 MiB out per task",
            Self::BigResults => "steady pool, a few tasks each returning one big byte buffer",
            Self::EchoTrips => {
                "steady pool, chunk_size(1), 1 MiB in and the same 1 MiB out (|v| v): transport"
            }
            Self::BigEcho => {
                "steady pool, chunk_size(1), each big buffer in and out (|v| v): transport"
            }
            Self::SharedTrips => "round-trips with SharedBytes in and out (cross as handles)",
            Self::SharedEcho => "echo-trips with SharedBytes: the transport of a handle",
            Self::SharedBigResults => "big-results with SharedBytes results",
            Self::SharedBigEcho => "big-echo with SharedBytes",
        }
    }

    /// Parses a name given to `--only`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// Which call of a pool runs a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `map`: all results, in order.
    Map,
    /// `imap`: an iterator of results, in order.
    Imap,
    /// `map_unordered`: all results, in completion order.
    MapUnordered,
    /// `imap_unordered`: an iterator of results, in completion order.
    ImapUnordered,
}

/// How big each workload is; `--quick` picks the small set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sizes {
    /// Integers squared by `trivial`.
    pub trivial_n: u64,
    /// Tasks in `cpu-1ms`.
    pub cpu_tasks: u64,
    /// Length of one `cpu-1ms` task, in µs.
    pub cpu_task_us: u64,
    /// Tasks in `skewed`.
    pub skewed_tasks: u64,
    /// Pareto scale (the shortest task), in µs.
    pub skewed_min_us: u64,
    /// Pareto shape; smaller is heavier-tailed.
    pub skewed_alpha: f64,
    /// Longest task allowed, in µs (keeps one draw from dominating the run).
    pub skewed_cap_us: u64,
    /// Seed of the skewed draw.
    pub skewed_seed: u64,
    /// Tasks in `stateful`.
    pub stateful_tasks: u64,
    /// Length of one `stateful` task, in µs.
    pub stateful_task_us: u64,
    /// Words in the expensive-init table (8 bytes each).
    pub table_entries: u64,
    /// Tasks in `expensive-init`.
    pub table_tasks: u64,
    /// Tasks in `payload` (each 1 MiB in, 1 MiB out).
    pub payload_tasks: u64,
    /// Tasks of `per-task` (one worker, one task per chunk).
    pub per_task_n: u64,
    /// Tasks of `round-trips` (each 1 MiB in, 1 MiB out).
    pub round_trips: u64,
    /// Tasks of `big-results`.
    pub big_results: u64,
    /// Bytes of each `big-results` result.
    pub big_result_bytes: u64,
}

/// What one run of a workload moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerRun {
    /// Tasks: the report gives the time per task.
    Tasks(u64),
    /// Bytes: the report gives GB/s.
    Bytes(u64),
}

impl Sizes {
    /// Words in `steady-words`: a fifth of `trivial`'s integers (each word is a heap string).
    pub fn words_n(&self) -> u64 {
        self.trivial_n / 5
    }

    /// The sizes named in issue #5.
    pub fn full() -> Self {
        Self {
            trivial_n: 10_000_000,
            cpu_tasks: 10_000,
            cpu_task_us: 1000,
            skewed_tasks: 4000,
            skewed_min_us: 200,
            skewed_alpha: 1.5,
            skewed_cap_us: 200_000,
            skewed_seed: 0x5EED,
            stateful_tasks: 20_000,
            stateful_task_us: 50,
            table_entries: 12_500_000,
            table_tasks: 200,
            payload_tasks: 256,
            per_task_n: 100_000,
            round_trips: 256,
            big_results: 8,
            big_result_bytes: 64 << 20,
        }
    }

    /// Small enough that `--quick` runs everything, Python included, in under two minutes on
    /// two cores.
    pub fn quick() -> Self {
        Self {
            trivial_n: 100_000,
            cpu_tasks: 600,
            skewed_tasks: 600,
            stateful_tasks: 3000,
            table_tasks: 16,
            payload_tasks: 48,
            per_task_n: 5000,
            round_trips: 48,
            big_result_bytes: 8 << 20,
            ..Self::full()
        }
    }

    /// The skewed workload's task lengths in µs: Pareto(`skewed_min_us`, `skewed_alpha`),
    /// capped, drawn with SplitMix64 from `skewed_seed`. Generated here and passed to Python
    /// as a list, so both languages run the same draw.
    pub fn skewed_micros(&self) -> Vec<u64> {
        (0..self.skewed_tasks)
            .map(|i| {
                let bits = kernels::mix(self.skewed_seed.wrapping_add(i.wrapping_mul(0x9E37)));
                // Uniform in (0, 1]: never zero, so the power below stays finite.
                let u = ((bits >> 11) + 1) as f64 / (1u64 << 53) as f64;
                let us = self.skewed_min_us as f64 / u.powf(1.0 / self.skewed_alpha);
                (us as u64).min(self.skewed_cap_us)
            })
            .collect()
    }
}

/// Task lengths of `uneven` in µs: 392 × 200 and 8 × 50 000, one slow task in each fifty.
pub fn uneven_micros() -> Vec<u64> {
    (0..400)
        .map(|i| if i % 50 == 25 { 50_000 } else { 200 })
        .collect()
}

/// Task lengths of `lognormal` in µs: `500 · e^(1.2 z)` for standard normal `z` (Box-Muller over
/// SplitMix64 from a fixed seed), within 20 µs..50 ms.
pub fn lognormal_micros() -> Vec<u64> {
    let uniform = |i: u64| ((kernels::mix(0x10C0 + i) >> 11) + 1) as f64 / (1u64 << 53) as f64;
    (0..400u64)
        .map(|i| {
            let z = (-2.0 * uniform(2 * i).ln()).sqrt()
                * (2.0 * std::f64::consts::PI * uniform(2 * i + 1)).cos();
            ((500.0 * (1.2 * z).exp()) as u64).clamp(20, 50_000)
        })
        .collect()
}

/// Packs task lengths in µs as skewed-style inputs (index and iterations).
fn packed(micros: &[u64], k_per_ms: KPerMs) -> Vec<u64> {
    micros
        .iter()
        .enumerate()
        .map(|(i, &us)| kernels::pack_skewed(i as u64, kernels::iterations_for(us, k_per_ms)))
        .collect()
}

/// The calibrated speed of [`kernels::spin`] in one language: iterations per millisecond.
pub type KPerMs = u64;

/// Inputs of the workloads that map `u64 -> u64`, for one language's calibration.
pub fn u64_inputs(kind: WorkloadKind, sizes: &Sizes, k_per_ms: KPerMs) -> Vec<u64> {
    match kind {
        WorkloadKind::Trivial => (0..sizes.trivial_n).collect(),
        WorkloadKind::Cpu1ms => (0..sizes.cpu_tasks).collect(),
        WorkloadKind::Skewed => packed(&sizes.skewed_micros(), k_per_ms),
        WorkloadKind::Uneven
        | WorkloadKind::UnevenImap
        | WorkloadKind::UnevenUnordered
        | WorkloadKind::UnevenImapUnordered => packed(&uneven_micros(), k_per_ms),
        WorkloadKind::Lognormal
        | WorkloadKind::LognormalImap
        | WorkloadKind::LognormalUnordered
        | WorkloadKind::LognormalImapUnordered => packed(&lognormal_micros(), k_per_ms),
        WorkloadKind::Stateful => (0..sizes.stateful_tasks).collect(),
        WorkloadKind::ExpensiveInit => (0..sizes.table_tasks).collect(),
        WorkloadKind::Payload => (0..sizes.payload_tasks).collect(),
        WorkloadKind::Startup => vec![7],
        WorkloadKind::SteadySlice | WorkloadKind::SteadyOwned => (0..sizes.trivial_n).collect(),
        WorkloadKind::SteadyWords => (0..sizes.words_n()).collect(),
        WorkloadKind::RoundTrips
        | WorkloadKind::EchoTrips
        | WorkloadKind::SharedTrips
        | WorkloadKind::SharedEcho => (0..sizes.round_trips).collect(),
        WorkloadKind::BigEcho | WorkloadKind::SharedBigEcho => (0..sizes.big_results).collect(),
        // Made by the contender (a range, or a task index): nothing to prepare.
        WorkloadKind::SteadyRange
        | WorkloadKind::FreshRange
        | WorkloadKind::PerTask
        | WorkloadKind::BigResults
        | WorkloadKind::SharedBigResults => Vec::new(),
    }
}

/// The serial reference checksum of a workload, for one language's calibration.
pub fn reference_checksum(kind: WorkloadKind, sizes: &Sizes, k_per_ms: KPerMs) -> u64 {
    let inputs = u64_inputs(kind, sizes, k_per_ms);
    let squares = |n: u64| kernels::checksum_u64(&(0..n).map(kernels::square).collect::<Vec<_>>());
    match kind {
        WorkloadKind::SteadyRange
        | WorkloadKind::SteadySlice
        | WorkloadKind::SteadyOwned
        | WorkloadKind::FreshRange => squares(sizes.trivial_n),
        WorkloadKind::PerTask => squares(sizes.per_task_n),
        WorkloadKind::SteadyWords => kernels::checksum_u64(
            &inputs
                .iter()
                .map(|&i| kernels::word_sum(kernels::word(i)))
                .collect::<Vec<_>>(),
        ),
        WorkloadKind::BigResults
        | WorkloadKind::BigEcho
        | WorkloadKind::SharedBigResults
        | WorkloadKind::SharedBigEcho => kernels::words_checksum(
            &(0..sizes.big_results)
                .map(|i| kernels::big_result(i, sizes.big_result_bytes))
                .collect::<Vec<_>>(),
        ),
        WorkloadKind::Trivial | WorkloadKind::Startup => kernels::checksum_u64(
            &inputs
                .iter()
                .map(|&x| kernels::square(x))
                .collect::<Vec<_>>(),
        ),
        WorkloadKind::Cpu1ms => {
            let k = kernels::iterations_for(sizes.cpu_task_us, k_per_ms);
            kernels::checksum_u64(
                &inputs
                    .iter()
                    .map(|&x| kernels::spin(x, k))
                    .collect::<Vec<_>>(),
            )
        }
        WorkloadKind::Skewed
        | WorkloadKind::Uneven
        | WorkloadKind::UnevenImap
        | WorkloadKind::UnevenUnordered
        | WorkloadKind::UnevenImapUnordered
        | WorkloadKind::Lognormal
        | WorkloadKind::LognormalImap
        | WorkloadKind::LognormalUnordered
        | WorkloadKind::LognormalImapUnordered => kernels::checksum_u64(
            &inputs
                .iter()
                .map(|&x| kernels::spin_packed(x))
                .collect::<Vec<_>>(),
        ),
        WorkloadKind::Stateful => {
            let k = kernels::iterations_for(sizes.stateful_task_us, k_per_ms);
            let mut state = vec![0u64; kernels::STATE_BINS];
            inputs
                .iter()
                .for_each(|&i| kernels::stateful_step(&mut state, i, k));
            kernels::state_checksum(&state)
        }
        WorkloadKind::ExpensiveInit => {
            let table = kernels::build_table(sizes.table_entries as usize);
            let out: Vec<u64> = inputs
                .iter()
                .map(|&i| kernels::table_lookup(&table, i))
                .collect();
            kernels::checksum_u64(&out)
        }
        WorkloadKind::EchoTrips | WorkloadKind::SharedEcho => kernels::payload_checksum(
            &inputs
                .iter()
                .map(|&i| kernels::payload_input(i))
                .collect::<Vec<_>>(),
        ),
        WorkloadKind::Payload | WorkloadKind::RoundTrips | WorkloadKind::SharedTrips => {
            let outs: Vec<Vec<u8>> = inputs
                .iter()
                .map(|&i| kernels::payload_task(&kernels::payload_input(i)))
                .collect();
            kernels::payload_checksum(&outs)
        }
    }
}
