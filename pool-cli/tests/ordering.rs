//! Output order with and without `--keep-order`.

use crate::util::*;

const SLEEPY: &str = "sleep 0.{}; echo {}";

#[test]
fn completion_order_by_default() {
    let o = run(&["run", "-j3", "--shell", SLEEPY, ":::", "9", "5", "1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "1\n5\n9\n");
}

#[test]
fn input_order_with_keep_order() {
    for flag in ["--keep-order", "-k"] {
        let o = run(&["run", "-j3", flag, "--shell", SLEEPY, ":::", "9", "5", "1"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o), "9\n5\n1\n");
    }
}

#[test]
fn keep_order_many_jobs() {
    let inputs: Vec<String> = (1..=200).map(|i| i.to_string()).collect();
    let mut args = vec!["run", "-j4", "-k", "echo", ":::"];
    args.extend(inputs.iter().map(String::as_str));
    let o = run(&args);
    assert_eq!(code(&o), 0);
    let want: String = inputs.iter().map(|i| format!("{i}\n")).collect();
    assert_eq!(stdout(&o), want);
}

#[test]
fn keep_order_with_failures_in_between() {
    let o = run(&[
        "run",
        "-k",
        "-j2",
        "--shell",
        "echo {}; exit $(({} % 2))",
        ":::",
        "1",
        "2",
        "3",
        "4",
    ]);
    assert_eq!(code(&o), 2);
    assert_eq!(stdout(&o), "1\n2\n3\n4\n");
}
