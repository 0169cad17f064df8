//! Resident-memory sampling and the OOM verdict, including a real OOM kill when this machine
//! lets us create a memory cgroup (root with cgroup v1 or v2); otherwise that test says so.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pool_ipc::oom::{self, OomCounters, OomLikelihood, OomProbe};
use pool_ipc::process::ExitReason;
use pool_ipc::shm::SharedRegion;

const KILL: ExitReason = ExitReason::Signaled {
    signal: libc::SIGKILL,
    core_dumped: false,
};

/// Touches `mib` MiB, one write per page, and keeps it.
fn hog(mib: usize) -> Vec<u8> {
    let mut v = vec![0u8; mib << 20];
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    std::hint::black_box(v)
}

fn wait_flag(region: &SharedRegion, value: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while region.atomic_u32(0).load(Ordering::SeqCst) != value {
        assert!(
            std::time::Instant::now() < deadline,
            "flag {value} never set"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn rss_of_a_worker_grows_when_it_allocates() {
    let _g = common::serial();
    assert!(oom::rss_bytes(std::process::id() as i32).unwrap() > 0);
    let region = Arc::new(SharedRegion::create("flag", 4096).unwrap());
    let r2 = Arc::clone(&region);
    let mut w = common::fork(move || {
        r2.atomic_u32(0).store(1, Ordering::SeqCst);
        wait_flag(&r2, 2);
        let _keep = hog(64);
        r2.atomic_u32(0).store(3, Ordering::SeqCst);
        wait_flag(&r2, 4);
        0
    });
    wait_flag(&region, 1);
    let before = oom::sample(w.pid()).unwrap();
    region.atomic_u32(0).store(2, Ordering::SeqCst);
    wait_flag(&region, 3);
    let after = oom::sample(w.pid()).unwrap();
    region.atomic_u32(0).store(4, Ordering::SeqCst);
    assert!(
        after.rss_bytes >= before.rss_bytes + (60 << 20),
        "{before:?} -> {after:?}"
    );
    assert!(w.wait().unwrap().success());
}

#[test]
fn verdicts_follow_the_evidence() {
    let c = |cg, sys| OomCounters {
        cgroup: cg,
        system: sys,
    };
    let segv = ExitReason::Signaled {
        signal: libc::SIGSEGV,
        core_dumped: false,
    };
    assert_eq!(
        oom::judge(segv, false, c(Some(0), Some(0)), c(Some(1), Some(1))).likelihood,
        OomLikelihood::No
    );
    assert_eq!(
        oom::judge(KILL, true, c(Some(0), None), c(Some(1), None)).likelihood,
        OomLikelihood::No
    );
    let v = oom::judge(KILL, false, c(Some(2), Some(5)), c(Some(3), Some(6)));
    assert_eq!(v.likelihood, OomLikelihood::Confirmed);
    assert!(v.is_oom() && v.evidence.contains("cgroup"), "{v:?}");
    assert_eq!(
        oom::judge(KILL, false, c(None, Some(5)), c(None, Some(6))).likelihood,
        OomLikelihood::Likely
    );
    assert_eq!(
        oom::judge(KILL, false, c(None, None), c(None, None)).likelihood,
        OomLikelihood::Likely
    );
    assert_eq!(
        oom::judge(KILL, false, c(Some(1), Some(5)), c(Some(1), Some(5))).likelihood,
        OomLikelihood::Unlikely
    );
    // Counters of this machine are readable the same way the pool will read them.
    let now = OomProbe::for_self().read();
    assert!(now.system.is_some() || !Path::new("/proc/vmstat").exists());
}

fn fs_magic(path: &str) -> Option<i64> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: zeroed statfs is a valid out buffer; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out pointer.
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0).then_some(st.f_type as i64)
}

/// A memory cgroup with a small limit, removed on drop.
struct LimitedCgroup(PathBuf);

impl LimitedCgroup {
    fn create(limit: u64) -> Option<Self> {
        let name = format!("pool-ipc-oom-{}", std::process::id());
        // cgroup v2 (unified) first, then v1's memory controller.
        for (base, limit_file, magic) in [
            ("/sys/fs/cgroup", "memory.max", 0x6367_7270),
            (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                0x0027_e0eb,
            ),
        ] {
            if fs_magic(base) != Some(magic) {
                continue; // not a cgroup mount (e.g. the tmpfs of a v1 hierarchy's root)
            }
            let dir = Path::new(base).join(&name);
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            let cg = Self(dir);
            if std::fs::write(cg.0.join(limit_file), limit.to_string()).is_ok() {
                // No swapping out of the OOM (v2: swap.max; v1: memsw), where supported.
                let _ = std::fs::write(cg.0.join("memory.swap.max"), "0");
                let _ = std::fs::write(cg.0.join("memory.memsw.limit_in_bytes"), limit.to_string());
                return Some(cg);
            }
        }
        None
    }
}

impl Drop for LimitedCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_real_oom_kill_is_confirmed() {
    let _g = common::serial();
    let Some(cg) = LimitedCgroup::create(32 << 20) else {
        skip_or_fail_in_ci(
            "cannot create a memory cgroup here (needs root and a writable memory controller)",
        );
        return;
    };
    let region = Arc::new(SharedRegion::create("flag", 4096).unwrap());
    let r2 = Arc::clone(&region);
    let mut w = common::fork(move || {
        wait_flag(&r2, 1);
        let _keep = hog(512);
        0
    });
    if std::fs::write(cg.0.join("cgroup.procs"), w.pid().to_string()).is_err() {
        skip_or_fail_in_ci("cannot move a process into the memory cgroup");
        return;
    }
    let probe = OomProbe::for_pid(w.pid());
    let before = probe.read();
    region.atomic_u32(0).store(1, Ordering::SeqCst);
    let reason = w
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("worker survived its limit");
    let verdict = oom::judge(reason, false, before, probe.read());
    assert_eq!(reason, KILL);
    assert!(probe.has_cgroup_counter());
    assert_eq!(verdict.likelihood, OomLikelihood::Confirmed, "{verdict:?}");
    // The figures are the kernel's at the death: the worker's high-water mark reached the
    // cgroup's limit (less what its parent's pages took), whatever it was when last sampled.
    let peak = w.peak_rss_bytes().expect("reaped with its peak");
    assert!(peak >= 16 << 20, "peak {peak}");
    let cg = probe.memory().expect("the cgroup's figures");
    assert_eq!(cg.limit, Some(32 << 20), "{cg:?}");
    assert!(cg.peak.is_some_and(|p| p >= 24 << 20), "{cg:?}");
    drop(w);
}

/// A check that cannot run here: a loud skip line, or a failure when `CI` is set (CI must never
/// report ok for work it did not do).
fn skip_or_fail_in_ci(why: &str) {
    use std::io::Write;
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(!ci, "CI is set, and this test cannot run: {why}");
    // Straight to stderr: the test harness hides what `eprintln!` says in a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED: {why} (under CI=true this fails)\n"
    );
}
