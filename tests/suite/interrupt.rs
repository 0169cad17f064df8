//! Ctrl-C ends every kind of call with `PoolError::Interrupted`, under every start method, and
//! the program goes on; the progress bar says "interrupted". A pending `apply_async` result
//! ends with `Interrupted` too.
//!
//! A real SIGINT goes to a child process: the test re-executes this binary with
//! `POOL_SUITE_INTERRUPT=<start method>/<call>` set, and [`run_if_asked`] plays the part.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use pool::{MapOptions, PoolError, StartMethod};

const VAR: &str = "POOL_SUITE_INTERRUPT";
const CALLS: [&str; 5] = [
    "map",
    "map_results",
    "imap",
    "imap_unordered",
    "apply_async",
];

/// In a scenario child: run the call, print how it ended, exit.
pub(crate) fn run_if_asked() {
    let Ok(what) = std::env::var(VAR) else { return };
    // The child's own workers must not play the scenario again.
    // SAFETY: single-threaded at this point (before main).
    unsafe { std::env::remove_var(VAR) };
    let (method, call) = what.split_once('/').expect("method/call");
    let m = StartMethod::from_name(method).expect("a start method's name");
    println!("ended: {}", play(m, call));
    std::process::exit(0);
}

/// Prints that it runs, then sleeps for longer than the test waits.
fn sleeps(x: u32) -> u32 {
    println!("running {x}");
    std::thread::sleep(Duration::from_secs(30));
    x
}

fn play(m: StartMethod, call: &str) -> String {
    let mut p = super::pool(m, 2);
    let opts = MapOptions::default().chunk_size(1).progress_bar(true);
    let interrupted = |e: &PoolError| matches!(e, PoolError::Interrupted);
    let ok = match call {
        "map" => p
            .map_with(sleeps, 0..4u32, opts)
            .is_err_and(|e| interrupted(&e)),
        "map_results" => p
            .map_results(sleeps, 0..4u32, opts.keep_going(2))
            .is_err_and(|e| interrupted(&e)),
        "imap" | "imap_unordered" => {
            let it = if call == "imap" {
                p.imap_with(sleeps, 0..4u32, opts)
            } else {
                p.imap_unordered_with(sleeps, 0..4u32, opts)
            };
            let items: Vec<_> = it.expect("the call starts").collect();
            matches!(items.as_slice(), [Err(e)] if interrupted(e))
        }
        "apply_async" => {
            p.apply_progress_bar(Some(pool::ProgressSpec::default()));
            let r = p.apply_async(sleeps, 0u32).expect("the task is queued");
            // Bounded: a pending result that ignores Ctrl-C fails the test, not hangs it.
            let ended = r
                .get(Some(Duration::from_secs(20)))
                .is_err_and(|e| interrupted(&e));
            // The pool goes on: the next task gets a new worker.
            let next = p.apply_async(|x: u32| x + 1, 1u32).expect("queued");
            ended && next.get(Some(Duration::from_secs(20))).ok() == Some(2)
        }
        "apply_idle" => {
            // Between runs of tasks Ctrl-C is the program's, though the collector waits on.
            assert_eq!(p.apply(|x: u32| x + 1, 1u32).ok(), Some(2));
            println!("running nothing");
            std::thread::sleep(Duration::from_secs(30));
            false
        }
        other => panic!("unknown call {other}"),
    };
    if ok {
        "interrupted".into()
    } else {
        "otherwise".into()
    }
}

/// Starts the scenario child playing `call`, and sends it SIGINT once it says it runs; gives
/// the child and the rest of its output.
fn interrupt_when_running(
    m: StartMethod,
    call: &str,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(VAR, format!("{}/{call}", m.name()))
        .arg("--exact")
        .arg("no-test-runs-in-the-scenario-child")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("running") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "{call}: the child ended early"
        );
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    (child, out)
}

fn ctrl_c_ends_every_call(m: StartMethod) {
    if m == StartMethod::Mpi {
        // The scenario runs in a child process of this one, which is no MPI rank: MPI's
        // Ctrl-C test is `pool-mpi/tests/rank0.rs`, where rank 0 gets the signal.
        return;
    }
    for call in CALLS {
        let (mut child, mut out) = interrupt_when_running(m, call);
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{call}: the program goes on after Ctrl-C: {status:?}, stderr: {err}"
        );
        assert!(rest.contains("ended: interrupted"), "{call}: {rest:?}");
        let bar = err.to_lowercase();
        assert!(
            bar.contains("interrupted") && !bar.contains("failed"),
            "{call}: the bar says interrupted: {err}"
        );
    }
}

for_each_start_method!(ctrl_c_ends_every_call);

/// Once no apply task is outstanding, Ctrl-C ends the program as it would without a pool
/// (the collector thread lingers for the next task, but the pool's call has ended).
fn ctrl_c_between_apply_tasks_is_the_programs(m: StartMethod) {
    use std::os::unix::process::ExitStatusExt;
    if m == StartMethod::Mpi {
        return; // as above
    }
    let (mut child, _) = interrupt_when_running(m, "apply_idle");
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}

for_each_start_method!(ctrl_c_between_apply_tasks_is_the_programs);
