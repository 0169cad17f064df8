//! A job's processes, and how to signal all of them.
//!
//! A job's leader runs in its own process group, so one `killpg` reaches its children and
//! grandchildren. A descendant can leave the group (`setsid`, `setpgid`) and be reparented to
//! init when its parent dies; the group no longer names it. What it keeps is its environment:
//! every job is started with GNU parallel's `PARALLEL_PID` (our pid) and `PARALLEL_SEQ` (the
//! job number), which its descendants inherit. Signalling a job therefore signals its group and
//! then every process of ours whose `/proc/PID/environ` holds both values. Only a descendant that
//! clears its environment, or execs a set-uid program (whose environ we cannot read), escapes.
//! The scan of `/proc` costs a few milliseconds; it happens only when a job is killed. A
//! process caught in the middle of an exec shows no environment for a moment; it is read again.
//! One whose main thread ended while its other threads run reads as a zombie with no memory;
//! its environment is read through those threads.

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
    let mut buf = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Some(len) = environment(pid, &mut buf) else {
            continue;
        };
        let mut has_pid = false;
        let mut has_seq = false;
        for var in buf[..len].split(|&b| b == 0) {
            has_pid |= var == want_pid.as_bytes();
            has_seq |= var == want_seq.as_bytes();
        }
        if has_pid && has_seq {
            found.push(Pid::from_raw(pid));
        }
    }
    found
}

/// How long a process whose environment reads empty for now is waited for, [`RETRY_PAUSE`]
/// apart.
const EXEC_PATIENCE: std::time::Duration = std::time::Duration::from_millis(200);
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// Room for an ordinary environment in one `read`: a single read sees a single address space.
const ONE_READ: usize = 128 * 1024;

/// Reads `pid`'s environment into the start of `buf`; its length, or `None` if it has none we
/// may read.
///
/// A process in the middle of an exec is a moving target (CI saw a job's descendant outlive its
/// kill). Its environment reads as empty while its new memory has none copied in yet, which
/// lasts as long as the exec is kept off a CPU; a read also comes back empty when the address
/// space it opened was replaced before the read; and a read in several parts can get the start
/// of the old environment and then nothing. So the file is read at once after it is opened, in
/// one `read` where it fits, and a process that reads empty is read again unless it is sure to
/// have none (see [`why_empty`]).
fn environment(pid: i32, buf: &mut Vec<u8>) -> Option<usize> {
    let until = std::time::Instant::now() + EXEC_PATIENCE;
    let mut empty_on_purpose_before = false;
    loop {
        let read = read_whole(format!("/proc/{pid}/environ").as_ref(), buf);
        if let Ok(len @ 1..) = read {
            return Some(len);
        }
        match why_empty(pid) {
            // The main thread's memory is gone: its read fails ("no such process").
            Empty::LeaderGone => return live_thread_environment(pid, buf),
            why if read.is_err() || why == Empty::ForGood => return None,
            Empty::OnPurpose if empty_on_purpose_before => return None,
            why => empty_on_purpose_before = why == Empty::OnPurpose,
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        std::thread::sleep(RETRY_PAUSE);
    }
}

/// The environment of `pid`'s first thread that has one: a process whose main thread ended
/// reads as a zombie with no memory, while its other threads run in that memory.
fn live_thread_environment(pid: i32, buf: &mut Vec<u8>) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .filter(|t| t.file_name().to_str() != Some(&pid.to_string()))
        .find_map(|t| {
            read_whole(&t.path().join("environ"), buf)
                .ok()
                .filter(|&n| n > 0)
        })
}

/// Reads the file at `path` into the start of `buf`, in as few reads as possible, the first
/// right after the file is opened; returns its length. `buf` keeps its size from one file to
/// the next (it only grows), so a scan of `/proc` fills it without clearing it first.
fn read_whole(path: &std::path::Path, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read;
    if buf.len() < ONE_READ {
        buf.resize(ONE_READ, 0);
    }
    let mut file = std::fs::File::open(path)?;
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(len);
        }
        len += n;
        if len == buf.len() {
            buf.resize(2 * len, 0);
        }
    }
}

/// Why a process's environment read as empty.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Empty {
    /// A kernel thread, an exiting process or a zombie: it has none and never will.
    ForGood,
    /// Its main thread ended and other threads run on (the process reads as a zombie): they
    /// have it.
    LeaderGone,
    /// Its environment's bounds are set and equal: cleared on purpose (`env -i`), or an exec
    /// caught for a moment between setting the two.
    OnPurpose,
    /// The bounds are not set yet (an exec is under way), or the read met the old address space
    /// as it was being replaced.
    ForNow,
}

/// Tells from `/proc/PID/stat` why `pid`'s environment just read as empty.
fn why_empty(pid: i32) -> Empty {
    const PF_EXITING: u64 = 0x4;
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Empty::ForGood;
    };
    // After the command name, in parentheses: state (field 3), ..., flags (9), ...,
    // num_threads (20), ..., env_start (50), env_end (51), exit_code (52).
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return Empty::ForGood;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let state = fields.first().copied().unwrap_or("Z");
    let flags = field(9).unwrap_or(PF_KTHREAD);
    let (env_start, env_end) = (field(50).unwrap_or(0), field(51).unwrap_or(0));
    // A zombie main thread is counted among the threads until the last one ends.
    if state == "Z" && field(20).unwrap_or(0) > 1 {
        Empty::LeaderGone
    } else if matches!(state, "Z" | "X" | "x") || flags & (PF_EXITING | PF_KTHREAD) != 0 {
        Empty::ForGood
    } else if env_end != 0 && env_start == env_end {
        Empty::OnPurpose
    } else {
        Empty::ForNow
    }
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

    /// A process that is in the middle of an exec has no readable environment for a moment;
    /// a single scan of `/proc` can miss it (CI saw one outlive its kill). One that execs
    /// itself without pause is mid-exec often; every kill must still reach it.
    #[test]
    fn a_process_caught_mid_exec_is_still_signalled() {
        let dir = std::env::temp_dir().join(format!("pool-family-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("reexec");
        std::fs::write(
            &script,
            "#!/bin/sh\n[ \"$1\" -gt 0 ] && exec \"$0\" $(($1 - 1))\nexec sleep 30\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let seq = 910_000 + u64::from(std::process::id() % 1000);
        let mut missed = 0;
        for round in 0..20 {
            let mut child = Command::new("setsid")
                .arg(&script)
                .arg("1000000")
                .envs(marks(seq + round))
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            signal(Pid::from_raw(i32::MAX - 1), seq + round, Signal::SIGKILL);
            let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > until {
                    missed += 1;
                    child.kill().unwrap();
                    child.wait().unwrap();
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            missed, 0,
            "{missed} of 20 re-executing processes outlived their kill"
        );
    }

    /// The helper process of the next test (run only by it, through `ZOMBIE_LEADER`): forks a
    /// child whose main thread exits while a second thread lives on, prints the child's pid.
    #[test]
    #[ignore = "a helper process, started by a_process_whose_main_thread_exited_is_signalled"]
    fn zombie_leader_helper() {
        if std::env::var_os(ZOMBIE_LEADER).is_none() {
            return;
        }
        // SAFETY: the child only spawns a thread (glibc's malloc is ready for a fork) and ends
        // its own thread with a system call.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(30)));
                // SAFETY: `SYS_exit` ends this thread only, at once; the process lives on in
                // the thread above, its leader a zombie.
                unsafe { libc::syscall(libc::SYS_exit, 0) };
                unreachable!("SYS_exit returned");
            }
            nix::unistd::ForkResult::Parent { child } => {
                println!("leader {child}");
                let _ = nix::sys::wait::waitpid(child, None);
            }
        }
    }

    const ZOMBIE_LEADER: &str = "POOL_FAMILY_ZOMBIE_LEADER";

    /// The threads of `pid` that have not ended.
    fn live_threads(pid: i32) -> usize {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return 0;
        };
        tasks
            .flatten()
            .filter(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                let state = stat.rsplit_once(')').map_or("", |(_, s)| s.trim_start());
                !state.is_empty() && !state.starts_with(['Z', 'X'])
            })
            .count()
    }

    /// A process whose main thread ended while others run on reads as a zombie, with no
    /// environment of its own: its live threads still carry the marks, and a kill of the
    /// process reaches them all.
    #[test]
    fn a_process_whose_main_thread_exited_is_signalled() {
        use std::io::BufRead;
        let seq = 920_000 + u64::from(std::process::id() % 1000);
        let mut helper = Command::new("setsid")
            .arg(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "run::family::tests::zombie_leader_helper",
            ])
            .args(["--nocapture", "--test-threads=1", "-q"])
            .env(ZOMBIE_LEADER, "1")
            .envs(marks(seq))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(helper.stdout.take().unwrap());
        let pid: i32 = out
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("leader ").map(|p| p.parse().unwrap()))
            .expect("the helper names its child");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while why_empty(pid) != Empty::LeaderGone || live_threads(pid) != 1 {
            assert!(
                std::time::Instant::now() < until,
                "the child did not settle"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        signal(Pid::from_raw(i32::MAX - 1), seq, Signal::SIGKILL);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while live_threads(pid) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let left = live_threads(pid);
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(helper.id() as i32), Signal::SIGKILL);
        let _ = helper.wait();
        assert_eq!(
            left, 0,
            "a thread of the zombie-led process outlived its kill"
        );
    }

    /// Only a process that may yet show an environment is read again: one cleared on purpose
    /// or a zombie is believed at once.
    #[test]
    fn empty_environments_are_told_apart() {
        let mut cleared = Command::new("env")
            .args(["-i", "sleep", "30"])
            .spawn()
            .unwrap();
        let mut exited = Command::new("true").spawn().unwrap();
        let pid = |c: &std::process::Child| c.id() as i32;
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let comm = |c: &std::process::Child| {
            std::fs::read_to_string(format!("/proc/{}/comm", c.id())).unwrap_or_default()
        };
        while comm(&cleared).trim() != "sleep" || why_empty(pid(&exited)) != Empty::ForGood {
            assert!(std::time::Instant::now() < until, "children did not settle");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(why_empty(pid(&cleared)) == Empty::OnPurpose);
        let mut buf = Vec::new();
        assert!(environment(pid(&cleared), &mut buf).is_none());
        assert!(environment(pid(&exited), &mut buf).is_none());
        assert!(environment(std::process::id() as i32, &mut buf).is_some());
        cleared.kill().unwrap();
        cleared.wait().unwrap();
        exited.wait().unwrap();
    }
}
