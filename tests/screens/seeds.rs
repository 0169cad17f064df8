//! The seed examples (the `multiprocessing.Pool` + tqdm recipes rewritten): run as a user runs
//! them, in a pipe or in a terminal, and checked on what they print.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::tmux::{self, Tmux};

/// Builds example `name` (a no-op when it is up to date) and returns its path.
pub(crate) fn example(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --example {name}");
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join(name)
}

/// Runs example `name` with stdout and stderr piped (progress as plain lines).
fn run_piped(name: &str) -> (String, String) {
    let out = Command::new(example(name))
        .env_remove("CI")
        .env_remove("POOL_PROGRESS_STYLE")
        .env("POOL_PROGRESS_INTERVAL", "60")
        .stdin(Stdio::null())
        .output()
        .expect("the example runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{name}: {stdout}\n{stderr}");
    (stdout, stderr)
}

/// The number after `(pid ` in `line`.
fn pid_in(line: &str) -> Option<u32> {
    let rest = &line[line.find("(pid ")? + 5..];
    rest[..rest.find(')')?].parse().ok()
}

#[test]
fn seed_003_runs_its_tasks_in_worker_processes() {
    let (stdout, stderr) = run_piped("seed_003_pool_class");
    let all = format!("{stdout}{stderr}");
    let main_pid = all
        .lines()
        .find(|l| l.starts_with("main script (pid "))
        .and_then(pid_in)
        .unwrap_or_else(|| panic!("no main pid:\n{all}"));
    let task_pids: Vec<u32> = all
        .lines()
        .filter(|l| l.starts_with("start process ") && l.contains("(pid "))
        .filter_map(pid_in)
        .collect();
    assert_eq!(task_pids.len(), 10, "two calls of five tasks:\n{all}");
    assert!(
        task_pids.iter().all(|p| *p != main_pid),
        "the tasks ran in the main process ({main_pid}), not in workers:\n{all}"
    );
}

#[test]
fn seed_000_shows_a_bar_for_apply_async_tasks() {
    let (stdout, stderr) = run_piped("seed_000_checking_progress");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("[apply_async] done 23/23 tasks (100%)")),
        "no apply_async progress:\n{stderr}"
    );
    assert!(stdout.contains("apply_async: 23/23 done"), "{stdout}");
}

#[test]
fn seed_002_prints_above_its_bar_without_leaving_copies_of_it() {
    if !tmux::available("seed_002_prints_above_its_bar_without_leaving_copies_of_it") {
        return;
    }
    let exe = example("seed_002_pool_notes");
    let t = Tmux::start("seed002", 100, 60, &exe.display().to_string());
    let rows = t.wait_end();
    let screen = rows.join("\n");
    let counting: Vec<&String> = rows.iter().filter(|r| r.contains("counting:")).collect();
    assert_eq!(
        counting.len(),
        1,
        "one `counting` bar, no stale copies between the printed lines:\n{screen}"
    );
    assert!(
        counting[0].starts_with("counting: 100%|") && counting[0].contains("| 20/20 ["),
        "{screen}"
    );
    let printed: Vec<usize> = (0..20)
        .map(|k| {
            rows.iter()
                .position(|r| r.starts_with('[') && r.ends_with(&format!("res:bla  count:{k}")))
                .unwrap_or_else(|| panic!("count:{k} is missing or torn:\n{screen}"))
        })
        .collect();
    let bar_row = rows.iter().position(|r| r.contains("counting:")).unwrap();
    assert!(
        printed.windows(2).all(|w| w[0] < w[1]) && printed[19] < bar_row,
        "the lines in order, above the bar:\n{screen}"
    );
    for desc in ["generator:", "lifespan:"] {
        assert_eq!(
            rows.iter().filter(|r| r.contains(desc)).count(),
            1,
            "{desc}\n{screen}"
        );
    }
}

#[test]
fn seed_003_worker_processes_print_above_the_bar() {
    if !tmux::available("seed_003_worker_processes_print_above_the_bar") {
        return;
    }
    let exe = example("seed_003_pool_class");
    let t = Tmux::start("seed003", 100, 60, &exe.display().to_string());
    let rows = t.wait_end();
    let screen = rows.join("\n");
    let bars: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].contains("| 5/5 ["))
        .collect();
    assert_eq!(bars.len(), 1, "one bar, no copies:\n{screen}");
    assert!(rows[bars[0]].starts_with("100%|"), "{screen}");
    // The first call's ten lines, printed by the workers with `pool::println`, are whole lines
    // above the bar.
    let above: Vec<&String> = rows[..bars[0]]
        .iter()
        .filter(|r| r.starts_with("start process ") || r.starts_with("end process "))
        .collect();
    assert_eq!(above.len(), 10, "{screen}");
    assert!(above.iter().all(|r| r.ends_with(')')), "{screen}");
}
