//! Input sources: stdin, `:::`, `::::`, `-a`, and their product.

use std::fs;

use crate::util::*;

#[test]
fn stdin_lines() {
    let o = run_stdin(&["run", "-k", "echo", "got"], "a\nb c\n\nd");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "got a\ngot b c\ngot \ngot d\n");
}

#[test]
fn files_of_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = dir.path().join("one");
    let f2 = dir.path().join("two");
    fs::write(&f1, "a\nb\n").unwrap();
    fs::write(&f2, "1\n2\n").unwrap();
    let (f1, f2) = (f1.to_str().unwrap(), f2.to_str().unwrap());
    let o = run(&["run", "-k", "echo", "::::", f1, f2]);
    assert_eq!(stdout(&o), "a 1\na 2\nb 1\nb 2\n");
    let o = run(&["run", "-k", "-a", f1, "echo", "{}", "x"]);
    assert_eq!(stdout(&o), "a x\nb x\n");
}

#[test]
fn cartesian_product_first_source_slowest() {
    let o = run(&[
        "run", "-k", "echo", ":::", "a", "b", ":::", "1", "2", ":::", "x", "y",
    ]);
    let want = "a 1 x\na 1 y\na 2 x\na 2 y\nb 1 x\nb 1 y\nb 2 x\nb 2 y\n";
    assert_eq!(stdout(&o), want);
}

#[test]
fn stdin_with_arguments() {
    let o = run_stdin(
        &["run", "-k", "echo", "{1}{2}", "::::", "-", ":::", "1", "2"],
        "a\nb\n",
    );
    assert_eq!(stdout(&o), "a1\na2\nb1\nb2\n");
}

#[test]
fn endless_stdin_is_streamed() {
    // `yes` never ends: the runner must start jobs before its input ends, and stop when its
    // stdout closes (here: after reading enough with a halt policy).
    let o = pool(&["run", "-j2", "--halt", "now,done=20", "echo"])
        .stdin(
            std::process::Command::new("yes")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
                .stdout
                .take()
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).lines().count() >= 20);
}

#[test]
fn linked_sources_like_gnu_parallel() {
    let o = run(&[
        "run", "-k", "echo", ":::", "a", "b", "c", ":::+", "1", "2", ":::", "x", "y",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "a 1 x\na 1 y\nb 2 x\nb 2 y\n");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("nums");
    fs::write(&f, "1\n2\n3\n").unwrap();
    let o = run(&[
        "run",
        "-k",
        "echo",
        "{2}{1}",
        ":::",
        "a",
        "b",
        "c",
        "::::+",
        f.to_str().unwrap(),
    ]);
    assert_eq!(stdout(&o), "1a\n2b\n3c\n");
}
