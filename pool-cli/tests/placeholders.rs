//! The `{}` family, argument appending, `--shell` and `--dry-run`.

use crate::util::*;

#[test]
fn every_placeholder() {
    let o = run(&[
        "run",
        "-k",
        "-j1",
        "echo",
        "{}",
        "{.}",
        "{/}",
        "{//}",
        "{/.}",
        "{#}",
        "{%}",
        ":::",
        "dir/sub/file.tar.gz",
        "plain",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "dir/sub/file.tar.gz dir/sub/file.tar file.tar.gz dir/sub file.tar 1 1\n\
         plain plain plain . plain 2 1\n"
    );
}

#[test]
fn job_slots_stay_within_jobs() {
    let inputs: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
    let mut args = vec!["run", "-j3", "echo", "{%}", ":::"];
    args.extend(inputs.iter().map(String::as_str));
    let o = run(&args);
    assert_eq!(code(&o), 0);
    for line in stdout(&o).lines() {
        let slot: usize = line.parse().unwrap();
        assert!((1..=3).contains(&slot), "slot {slot}");
    }
    assert_eq!(stdout(&o).lines().count(), 40);
}

#[test]
fn sequence_numbers_are_one_based_and_unique() {
    let o = run(&["run", "-j4", "echo", "{#}", ":::", "a", "b", "c", "d", "e"]);
    assert_eq!(sorted_lines(&stdout(&o)), ["1", "2", "3", "4", "5"]);
}

#[test]
fn positional_placeholders_of_several_sources() {
    let o = run(&[
        "run", "-k", "echo", "{2}-{1}", "{1/}", "{2.}", ":::", "d/a", "d/b", ":::", "x.1", "y.2",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "x.1-d/a a x\ny.2-d/a a y\nx.1-d/b b x\ny.2-d/b b y\n"
    );
}

#[test]
fn inputs_are_appended_without_placeholder() {
    let o = run(&["run", "-k", "echo", "pre", ":::", "a", "b", ":::", "1"]);
    assert_eq!(stdout(&o), "pre a 1\npre b 1\n");
}

#[test]
fn unknown_braces_are_left_alone() {
    // Through the shell, as GNU parallel: `$1` is empty there.
    like_gnu(
        &["-k", "echo", "{x}", "{print $1}", ":::", "a"],
        Seen::new("{x} {print } a\n", 0),
        false,
    );
    let o = run(&["run", "--no-shell", "echo", "{x}", "{print $1}", ":::", "a"]);
    assert_eq!(stdout(&o), "{x} {print $1} a\n");
}

#[test]
fn an_input_is_one_argument() {
    // Through the shell (GNU parallel's way) the values are quoted...
    like_gnu(
        &["printf", "'%s.\\n'", ":::", "a b; echo injected", "$HOME"],
        Seen::new("$HOME.\na b; echo injected.\n", 0),
        true,
    );
    // ... and without one they are single arguments anyway.
    let o = run(&[
        "run",
        "--no-shell",
        "printf",
        "[%s]\\n",
        ":::",
        "a b; echo injected",
        "$HOME",
    ]);
    assert_eq!(
        sorted_lines(&stdout(&o)),
        ["[$HOME]", "[a b; echo injected]"]
    );
}

#[test]
fn shell_syntax_with_quoted_values() {
    let o = run(&[
        "run",
        "--shell",
        "printf '%s\\n' {} | tr a-z A-Z",
        ":::",
        "it's a b",
        "x;y",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sorted_lines(&stdout(&o)), ["IT'S A B", "X;Y"]);
}

#[test]
fn shell_appends_quoted_inputs() {
    let o = run(&["run", "--shell", "echo $((1 + 1))", ":::", "a b"]);
    assert_eq!(stdout(&o), "2 a b\n");
}

#[test]
fn dry_run_prints_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("made");
    let f = f.to_str().unwrap();
    let o = run(&["run", "--dry-run", "touch", "{}", ":::", f, "it's"]);
    assert_eq!(code(&o), 0);
    assert_eq!(stdout(&o), format!("touch {f}\ntouch 'it'\"'\"'s'\n"));
    // `-k`: GNU prints dry-run lines as its job slots finish them, in any order.
    like_gnu(
        &[
            "-k",
            "--dry-run",
            "touch",
            "{}",
            ":::",
            "a b",
            "it's",
            "x$y",
        ],
        Seen::new("touch 'a b'\ntouch 'it'\"'\"'s'\ntouch 'x$y'\n", 0),
        false,
    );
    assert!(!std::path::Path::new(f).exists());
    let o = run(&[
        "run",
        "--dry-run",
        "--shell",
        "echo {#} {} | wc",
        ":::",
        "a b",
    ]);
    assert_eq!(stdout(&o), "echo 1 'a b' | wc\n");
}
