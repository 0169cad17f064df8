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
    /// The last resident-memory sample taken before the death, if any.
    pub last_rss: Option<RssSample>,
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
/// worker's start or at the last sample) and `after` its death.
pub fn judge(
    reason: ExitReason,
    killed_by_us: bool,
    before: OomCounters,
    after: OomCounters,
    last_rss: Option<RssSample>,
) -> OomVerdict {
    let v = |likelihood, evidence: String| OomVerdict {
        likelihood,
        evidence,
        last_rss,
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
