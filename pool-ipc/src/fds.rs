//! Leak checks for tests: open fds of this process, zombie children of this process.
//!
//! Why in the library: the pool's fault tests (and the facade's) must prove that killing,
//! crashing and restarting workers leaves no fd and no zombie behind; these read `/proc` and need
//! no privileges.

use std::fs;
use std::io;

/// Number of fds open in this process (entries of `/proc/self/fd`, minus the one used to read it).
pub fn open_fd_count() -> io::Result<usize> {
    Ok(fs::read_dir("/proc/self/fd")?.count().saturating_sub(1))
}

/// The open fd numbers of this process, sorted (minus the one used to read the directory).
pub fn open_fds() -> io::Result<Vec<i32>> {
    let dir = fs::read_dir("/proc/self/fd")?;
    let mut v: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    // Drop the fd of the directory stream itself, which is gone by now.
    v.retain(|fd| fs::read_link(format!("/proc/self/fd/{fd}")).is_ok());
    Ok(v)
}

/// Pids of children of this process that are zombies (state `Z`: dead, not reaped).
pub fn zombie_children() -> io::Result<Vec<i32>> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in fs::read_dir("/proc")? {
        let Ok(e) = e else { continue };
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": comm may contain spaces and parentheses, so split after the
        // last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (Some(state), Some(ppid)) = (f.next(), f.next()) else {
            continue;
        };
        if state == "Z" && ppid.parse::<i32>().ok() == Some(me) {
            out.push(pid);
        }
    }
    Ok(out)
}
