//! A job's processes, and how to signal all of them.
//!
//! A job's leader runs in its own process group, so one `killpg` reaches its children and
//! grandchildren. A descendant can leave the group (`setsid`, `setpgid`) and be reparented to
//! init when its parent dies; the group no longer names it. What it keeps is its environment:
//! every job is started with GNU parallel's `PARALLEL_PID` (our pid) and `PARALLEL_SEQ` (the
//! job number), which its descendants inherit. Signalling a job therefore signals its group and
//! then every process of ours whose `/proc/PID/environ` holds both values. Only a descendant that
//! clears its environment, or execs a set-uid program (whose environ we cannot read), escapes.
//! The scan of `/proc` costs a few milliseconds; it happens only when a job is killed.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The environment variables that mark job `seq`'s processes: `PARALLEL_PID`, `PARALLEL_SEQ`.
pub(crate) fn marks(seq: u64) -> [(&'static str, String); 2] {
    [
        ("PARALLEL_PID", std::process::id().to_string()),
        ("PARALLEL_SEQ", seq.to_string()),
    ]
}

/// Sends `sig` to job `seq`'s process group `pgid` and to every process marked as the job's.
pub(crate) fn signal(pgid: Pid, seq: u64, sig: Signal) {
    let _ = killpg(pgid, sig);
    for pid in marked(seq) {
        let _ = kill(pid, sig);
    }
}

/// The processes whose environment marks them as job `seq`'s.
fn marked(seq: u64) -> Vec<Pid> {
    let [(_, ours), (_, seq)] = marks(seq);
    let want_pid = format!("PARALLEL_PID={ours}");
    let want_seq = format!("PARALLEL_SEQ={seq}");
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let mut has_pid = false;
        let mut has_seq = false;
        for var in env.split(|&b| b == 0) {
            has_pid |= var == want_pid.as_bytes();
            has_seq |= var == want_seq.as_bytes();
        }
        if has_pid && has_seq {
            found.push(Pid::from_raw(pid));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn marked_processes_are_found_after_leaving_the_group() {
        let seq = 900_000 + u64::from(std::process::id() % 1000);
        let mut child = Command::new("setsid")
            .args(["sleep", "30"])
            .envs(marks(seq))
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !marked(seq).contains(&pid) {
            assert!(std::time::Instant::now() < until, "not found");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Its group is its own (setsid), not ours: only the environment finds it.
        signal(Pid::from_raw(i32::MAX - 1), seq, Signal::SIGKILL);
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(marked(seq).is_empty());
    }
}
