//! An idle pool burns no CPU: workers and the parent's threads that wait for them spin only
//! briefly after a round trip, then sleep until there is work (measured on this process and its
//! worker processes with /proc, over one second of idleness after a busy call).

use std::time::Duration;

use pool::{MapOptions, StartMethod, WorkerPool};

/// User + system CPU of `pid` (all its threads), in clock ticks; 0 if it is gone.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: state is the 1st, utime the 12th.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// This process's children (its worker processes under Fork, and any helper).
fn children() -> Vec<String> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(list.split_whitespace().map(str::to_owned));
    }
    pids
}

fn ticks_of(pids: &[String]) -> u64 {
    cpu_ticks("self") + pids.iter().map(|p| cpu_ticks(p)).sum::<u64>()
}

fn idle_pool_sleeps(m: StartMethod) {
    let _serial = super::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = WorkerPool::builder()
        .n_jobs(2)
        .start_method(m)
        .keep_alive(true)
        .build()
        .unwrap();
    // One-task chunks: the round trips that make every side spin before it sleeps.
    let out = p
        .map_with(
            |x: u64| x + 1,
            0..20_000u64,
            MapOptions::default().chunk_size(1),
        )
        .unwrap();
    assert_eq!(out.len(), 20_000);
    let workers = children();
    if m != StartMethod::Threading {
        // The two workers, and the forkserver if this binary started one.
        assert!(workers.len() >= 2, "the two worker processes: {workers:?}");
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = ticks_of(&workers);
    std::thread::sleep(Duration::from_secs(1));
    let burnt = ticks_of(&workers) - before;
    // SAFETY: sysconf only reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    // A thread that kept spinning would burn a whole second; allow 5 % for the watchers.
    assert!(
        burnt * 20 <= per_second,
        "an idle {m:?} pool burnt {burnt} ticks of CPU in one second ({per_second} ticks/s)"
    );
    // The pool still works after its sides went to sleep.
    assert_eq!(p.map(|x: u64| x * 2, 0..10u64).unwrap()[9], 18);
}

#[test]
fn an_idle_thread_pool_burns_no_cpu() {
    idle_pool_sleeps(StartMethod::Threading);
}

#[test]
fn an_idle_fork_pool_burns_no_cpu() {
    idle_pool_sleeps(StartMethod::Fork);
}
