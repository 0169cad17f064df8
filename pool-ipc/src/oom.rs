//! Worker memory: resident-set sampling and "was that SIGKILL the OOM killer?".
//!
//! Why: a worker killed by the kernel's OOM killer just receives `SIGKILL`, exactly like a worker
//! the pool killed for a timeout; users need to be told "out of memory (last RSS 3.1 GiB)" rather
//! than "killed by signal 9". The kernel log (`dmesg`) is usually unreadable to an unprivileged
//! process, so the verdict comes from counters anyone can read:
//! - the worker's memory cgroup: `memory.events` → `oom_kill` (cgroup v2), or
//!   `memory.oom_control` → `oom_kill` (cgroup v1); resolve it while the worker lives with
//!   [`OomProbe::for_pid`] and read it before and after;
//! - the system-wide `oom_kill` line of `/proc/vmstat` (Linux 4.13+).
//!
//! [`judge`] combines them with the exit reason and whether the pool sent the kill itself.
//!
//! The figures an OOM report quotes are what the kernel knew at the death: the worker's peak
//! resident memory (its high-water mark, from reaping it: [`crate::process::WorkerProcess::peak_rss_bytes`])
//! and its memory cgroup's peak and limit ([`OomProbe::memory`]). A sample taken earlier would
//! miss the allocation that killed it.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::Instant;

use crate::process::ExitReason;

/// One resident-memory measurement of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssSample {
    /// The process measured.
    pub pid: i32,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// When it was taken.
    pub at: Instant,
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

/// The resident set size of `pid` in bytes (`/proc/<pid>/statm`, second field × page size).
pub fn rss_bytes(pid: i32) -> io::Result<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed statm"))?;
    Ok(pages * page_size())
}

/// Samples the resident set size of `pid` now.
pub fn sample(pid: i32) -> io::Result<RssSample> {
    Ok(RssSample {
        pid,
        rss_bytes: rss_bytes(pid)?,
        at: Instant::now(),
    })
}

/// OOM-kill counters at one moment; `None` where unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomCounters {
    /// The watched cgroup's `oom_kill` count.
    pub cgroup: Option<u64>,
    /// The system-wide `oom_kill` count from `/proc/vmstat`.
    pub system: Option<u64>,
}

/// Where to read a process's OOM counters. Resolve it while the process is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomProbe {
    cgroup_file: Option<PathBuf>,
}

/// A memory cgroup's figures, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupMemory {
    /// The most memory the cgroup ever used (v2 `memory.peak`, v1 `memory.max_usage_in_bytes`).
    pub peak: Option<u64>,
    /// Its limit (v2 `memory.max`, v1 `memory.limit_in_bytes`); `None` when unlimited.
    pub limit: Option<u64>,
}

/// Reads a number of bytes from a cgroup file ("max" and v1's near-`i64::MAX` mean no limit).
fn bytes_in(path: &std::path::Path) -> Option<u64> {
    let n: u64 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    (n < 1 << 60).then_some(n)
}

/// Reads `key N` from a `key value` per line file.
fn keyed(path: &std::path::Path, key: &str) -> Option<u64> {
    let s = fs::read_to_string(path).ok()?;
    s.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next()? == key).then(|| f.next()?.parse().ok())?
    })
}

impl OomProbe {
    /// The probe for the cgroup `pid` is in now.
    pub fn for_pid(pid: i32) -> Self {
        Self {
            cgroup_file: Self::resolve(&format!("/proc/{pid}/cgroup")),
        }
    }

    /// The probe for this process's cgroup (workers inherit it unless moved).
    pub fn for_self() -> Self {
        Self {
            cgroup_file: Self::resolve("/proc/self/cgroup"),
        }
    }

    fn resolve(cgroup_list: &str) -> Option<PathBuf> {
        let list = fs::read_to_string(cgroup_list).ok()?;
        let mut candidates = Vec::new();
        for line in list.lines() {
            let mut f = line.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            let rel = path.trim_start_matches('/');
            if controllers.is_empty() {
                candidates.push(
                    PathBuf::from("/sys/fs/cgroup")
                        .join(rel)
                        .join("memory.events"),
                );
            } else if controllers.split(',').any(|c| c == "memory") {
                candidates.push(
                    PathBuf::from("/sys/fs/cgroup/memory")
                        .join(rel)
                        .join("memory.oom_control"),
                );
                // Inside a cgroup namespace the listed path may not exist under the mount.
                candidates.push(PathBuf::from("/sys/fs/cgroup/memory/memory.oom_control"));
            }
        }
        candidates
            .into_iter()
            .find(|p| keyed(p, "oom_kill").is_some())
    }

    /// Whether a cgroup counter was found.
    pub fn has_cgroup_counter(&self) -> bool {
        self.cgroup_file.is_some()
    }

    /// The memory figures of the cgroup whose counter this probe reads.
    pub fn memory(&self) -> Option<CgroupMemory> {
        let file = self.cgroup_file.as_deref()?;
        let dir = file.parent()?;
        let v2 = file.ends_with("memory.events");
        let (peak, limit) = if v2 {
            ("memory.peak", "memory.max")
        } else {
            ("memory.max_usage_in_bytes", "memory.limit_in_bytes")
        };
        Some(CgroupMemory {
            peak: bytes_in(&dir.join(peak)),
            limit: bytes_in(&dir.join(limit)),
        })
    }

    /// Reads the counters now.
    pub fn read(&self) -> OomCounters {
        OomCounters {
            cgroup: self
                .cgroup_file
                .as_deref()
                .and_then(|p| keyed(p, "oom_kill")),
            system: keyed(std::path::Path::new("/proc/vmstat"), "oom_kill"),
        }
    }
}

/// How sure we are that the kernel's OOM killer ended the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomLikelihood {
    /// The worker's cgroup counted an OOM kill during its life.
    Confirmed,
    /// An unexplained `SIGKILL` with the system-wide counter up, or with no counter readable.
    Likely,
    /// An unexplained `SIGKILL`, but the readable counters did not move.
    Unlikely,
    /// Not an OOM kill: another signal, a normal exit, or a kill the pool sent itself.
    No,
}

/// The verdict on one worker death.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomVerdict {
    /// How sure.
    pub likelihood: OomLikelihood,
    /// Why, in words, for error messages.
    pub evidence: String,
}

/// What the kernel knew of a dead worker's memory, for error messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryAtDeath {
    /// The worker's peak resident memory, in bytes.
    pub peak_rss: Option<u64>,
    /// Its memory cgroup's figures.
    pub cgroup: Option<CgroupMemory>,
}

impl std::fmt::Display for MemoryAtDeath {
    /// "its peak resident memory was 250 MiB; its memory cgroup peaked at 256 MiB of its
    /// 256 MiB limit", leaving out what is unknown (and an unlimited cgroup).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(rss) = self.peak_rss {
            parts.push(format!("its peak resident memory was {} MiB", rss >> 20));
        }
        if let Some(CgroupMemory {
            peak,
            limit: Some(limit),
        }) = self.cgroup
        {
            parts.push(match peak {
                Some(p) => format!(
                    "its memory cgroup peaked at {} MiB of its {} MiB limit",
                    p >> 20,
                    limit >> 20
                ),
                None => format!("its memory cgroup's limit is {} MiB", limit >> 20),
            });
        }
        f.write_str(&parts.join("; "))
    }
}

impl OomVerdict {
    /// Confirmed or likely.
    pub fn is_oom(&self) -> bool {
        matches!(
            self.likelihood,
            OomLikelihood::Confirmed | OomLikelihood::Likely
        )
    }
}

fn rose(before: Option<u64>, after: Option<u64>) -> Option<bool> {
    Some(after? > before?)
}

/// Judges whether `reason` was the OOM killer's doing, from counters read `before` (at the
/// worker's start) and `after` its death.
pub fn judge(
    reason: ExitReason,
    killed_by_us: bool,
    before: OomCounters,
    after: OomCounters,
) -> OomVerdict {
    let v = |likelihood, evidence: String| OomVerdict {
        likelihood,
        evidence,
    };
    if reason.signal() != Some(libc::SIGKILL) {
        return v(
            OomLikelihood::No,
            format!("the worker {reason}, which the OOM killer never does"),
        );
    }
    if killed_by_us {
        return v(OomLikelihood::No, "the pool sent SIGKILL itself".into());
    }
    match (
        rose(before.cgroup, after.cgroup),
        rose(before.system, after.system),
    ) {
        (Some(true), _) => v(
            OomLikelihood::Confirmed,
            format!(
                "the worker's memory cgroup counted an OOM kill ({:?} -> {:?})",
                before.cgroup, after.cgroup
            ),
        ),
        (Some(false), Some(true)) | (None, Some(true)) => v(
            OomLikelihood::Likely,
            format!(
                "the system-wide OOM kill count rose ({:?} -> {:?})",
                before.system, after.system
            ),
        ),
        (None, None) => v(
            OomLikelihood::Likely,
            "unexplained SIGKILL and no OOM counter is readable".into(),
        ),
        _ => v(
            OomLikelihood::Unlikely,
            "unexplained SIGKILL, but no OOM kill was counted".into(),
        ),
    }
}
