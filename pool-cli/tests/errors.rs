//! Bad input gives a clear message and a non-zero exit status.

use crate::util::*;

fn fails_with(o: &std::process::Output, needle: &str) {
    assert_eq!(code(o), 255, "stderr: {}", stderr(o));
    assert!(
        stderr(o).contains(needle),
        "wanted {needle:?} in {:?}",
        stderr(o)
    );
    assert_eq!(stdout(o), "");
}

#[test]
fn unknown_option() {
    fails_with(
        &run(&["run", "--frobnicate", "echo", ":::", "a"]),
        "unknown option `--frobnicate`",
    );
}

#[test]
fn missing_command() {
    fails_with(&run(&["run"]), "no command given");
    fails_with(&run(&["run", "-j2", ":::", "a"]), "no command given");
}

#[test]
fn empty_input() {
    // GNU parallel: no input, nothing to do, success.
    like_gnu_stdin(&["echo"], Some(b""), Seen::new("", 0), false);
    fails_with(
        &run(&["run", "echo", ":::"]),
        "`:::` must be followed by at least one argument",
    );
    let o = run_stdin(&["run", "--allow-empty", "echo"], "");
    assert_eq!(code(&o), 0);
}

#[test]
fn missing_input_file() {
    fails_with(
        &run(&["run", "echo", "::::", "/nonexistent/pool-inputs"]),
        "cannot open input file",
    );
}

#[test]
fn bad_values() {
    fails_with(
        &run(&["run", "--timeout", "soon", "echo", ":::", "a"]),
        "not a duration",
    );
    fails_with(
        &run(&["run", "--halt", "later,fail=1", "echo", ":::", "a"]),
        "now or soon",
    );
    fails_with(
        &run(&["run", "-j", "x", "echo", ":::", "a"]),
        "-j/--jobs `x`",
    );
    fails_with(&run(&["run", "echo", "{3}", ":::", "a"]), "input source 3");
}

#[test]
fn unknown_subcommand() {
    let o = run(&["frobnicate"]);
    assert_eq!(code(&o), 255);
    assert!(stderr(&o).contains("unrecognized subcommand"));
}

#[test]
fn help_succeeds() {
    let o = run(&["run", "--help"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("--keep-order"));
    assert!(stdout(&o).contains("Placeholders"));
}
