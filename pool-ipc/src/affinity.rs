//! CPU pinning of the calling thread or of a whole process (`sched_setaffinity`).
//!
//! Why: `cpu_ids` lets users keep workers off each other's cores (or off the parent's). An
//! invalid CPU id is a configuration error that must say which id and what is available,
//! rather than the kernel's bare `EINVAL`.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// Pinning failed.
#[derive(Debug, thiserror::Error)]
pub enum AffinityError {
    /// No CPUs were given.
    #[error("cannot pin to an empty set of CPUs")]
    Empty,
    /// A CPU id that this process may not use (offline, outside its cpuset, or beyond the machine).
    #[error("invalid CPU id {cpu}: available CPUs are {available:?}")]
    InvalidCpu {
        /// The offending id.
        cpu: usize,
        /// The CPUs this process may run on.
        available: Vec<usize>,
    },
    /// The kernel refused.
    #[error("sched_setaffinity failed: {0}")]
    Os(#[from] nix::Error),
}

/// The CPUs the calling thread may run on now.
pub fn current_affinity() -> Result<Vec<usize>, AffinityError> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// The online CPUs of the machine (`/sys/devices/system/cpu/online`, e.g. "0-3,6"); falls back
/// to the calling thread's affinity when unreadable.
pub fn online_cpus() -> Result<Vec<usize>, AffinityError> {
    match std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_list(&s))
    {
        Some(v) => Ok(v),
        None => current_affinity(),
    }
}

fn parse_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// Pins the calling thread to `cpus`. A worker process pins itself by calling it from its only
/// thread, before it starts others (new threads inherit the mask).
pub fn pin_current_thread(cpus: &[usize]) -> Result<(), AffinityError> {
    pin(0, cpus)
}

/// Pins task `pid` to `cpus`. Linux affinity is per thread: for a process id this pins its main
/// thread, and threads it creates *afterwards* inherit the mask; a worker that already runs
/// threads should pin itself with [`pin_current_thread`] before starting them.
pub fn pin(pid: i32, cpus: &[usize]) -> Result<(), AffinityError> {
    if cpus.is_empty() {
        return Err(AffinityError::Empty);
    }
    let available = online_cpus()?;
    let mut set = CpuSet::new();
    for &cpu in cpus {
        if !available.contains(&cpu) || set.set(cpu).is_err() {
            return Err(AffinityError::InvalidCpu { cpu, available });
        }
    }
    match sched_setaffinity(Pid::from_raw(pid), &set) {
        // EINVAL: none of the CPUs is in the process's cpuset.
        Err(nix::Error::EINVAL) => Err(AffinityError::InvalidCpu {
            cpu: cpus[0],
            available,
        }),
        r => Ok(r?),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_list("0-3,6\n"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_list("1"), Some(vec![1]));
        assert_eq!(parse_list("x"), None);
    }
}
