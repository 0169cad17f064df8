//! GNU parallel's everyday flags, each compared with GNU parallel itself when it is installed
//! (and with its recorded output otherwise).

use crate::util::*;

#[test]
fn several_sources_give_separate_words() {
    like_gnu(
        &["-k", "printf", "'[%s]'", "{}", ":::", "a", "b", ":::", "1"],
        Seen::new("[a][1][b][1]", 0),
        false,
    );
}

#[test]
fn keep_order_with_line_buffer() {
    like_gnu(
        &[
            "-k",
            "--lb",
            "-j3",
            "sleep 0.{}; echo {}",
            ":::",
            "3",
            "1",
            "2",
        ],
        Seen::new("3\n1\n2\n", 0),
        false,
    );
}

#[test]
fn jobs_relative_to_the_cpus() {
    for j in ["+1", "-1", "50%", "0"] {
        like_gnu(
            &["-j", j, "echo", ":::", "a", "b"],
            Seen::new("a\nb\n", 0),
            true,
        );
    }
}

#[test]
fn raw_bytes_reach_the_job() {
    use std::os::unix::ffi::OsStrExt;
    // Not UTF-8: the job must get the very bytes, e.g. as a file name.
    let input: &[u8] = b"caf\xe9\n\xff\xfe\n";
    let want: &[u8] = b"caf\xe9|\xff\xfe|";
    if let Some(mut g) = gnu_parallel(&["-k", "printf", "'%s|'"]) {
        assert_eq!(feed(&mut g, input).stdout, want, "GNU parallel");
    }
    let o = feed(&mut pool(&["run", "-k", "printf", "'%s|'"]), input);
    assert_eq!(o.stdout, want, "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let o = feed(
        &mut pool(&["run", "touch", &format!("{}/{{}}", dir.path().display())]),
        input,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for name in [&b"caf\xe9"[..], b"\xff\xfe"] {
        let p = dir.path().join(std::ffi::OsStr::from_bytes(name));
        assert!(p.exists(), "{p:?} was not created");
    }
}

#[test]
fn column_separator() {
    like_gnu_stdin(
        &["-k", "--colsep", ",", "echo", "{2}-{1}"],
        Some(b"a,b\nc,d\n"),
        Seen::new("b-a\nd-c\n", 0),
        false,
    );
}

#[test]
fn header_names_columns() {
    like_gnu_stdin(
        &[
            "-k", "--header", ":", "--colsep", ",", "echo", "{h2}", "{h1}",
        ],
        Some(b"h1,h2\nx,y\n"),
        Seen::new("y x\n", 0),
        false,
    );
    like_gnu(
        &[
            "-k", "--header", ":", "echo", "{f}", "{g}", ":::", "f", "1", "2", ":::", "g", "3",
        ],
        Seen::new("1 3\n2 3\n", 0),
        false,
    );
}

#[test]
fn max_args() {
    like_gnu(
        &["-k", "-n2", "echo", ":::", "a", "b", "c"],
        Seen::new("a b\nc\n", 0),
        false,
    );
    like_gnu(
        &["-k", "-n2", "echo", "x{}y", ":::", "a", "b", "c"],
        Seen::new("xa by\nxcy\n", 0),
        false,
    );
    like_gnu(
        &["-k", "-N2", "echo", "{1}-{2}", ":::", "a", "b", "c"],
        Seen::new("a-b\nc-\n", 0),
        false,
    );
}

#[test]
fn xargs_and_multiple() {
    like_gnu(
        &["-k", "-j2", "-m", "echo", ":::", "1", "2", "3", "4", "5"],
        Seen::new("1 2 3\n4 5\n", 0),
        false,
    );
    like_gnu(
        &[
            "-k", "-j2", "-X", "echo", "p{}q", ":::", "1", "2", "3", "4", "5",
        ],
        Seen::new("p1q p2q p3q\np4q p5q\n", 0),
        false,
    );
}

#[test]
fn null_and_delimiter() {
    like_gnu_stdin(
        &["-k", "-0", "echo", "[{}]"],
        Some(b"a b\0c\nd\0"),
        Seen::new("[a b]\n[c\nd]\n", 0),
        false,
    );
    like_gnu_stdin(
        &["-k", "-d", ",", "echo", "[{}]"],
        Some(b"a,b,c"),
        Seen::new("[a]\n[b]\n[c]\n", 0),
        false,
    );
}

#[test]
fn replacement_string() {
    like_gnu(
        &["-k", "-I", "XX", "echo", "XX-{}", ":::", "a"],
        Seen::new("a-{}\n", 0),
        false,
    );
}

#[test]
fn quote_makes_every_word_an_argument() {
    like_gnu(
        &["-k", "-q", "printf", "%s|\\n", "a;b", ":::", "x y"],
        Seen::new("a;b|\nx y|\n", 0),
        false,
    );
}

#[test]
fn verbose_and_tags() {
    like_gnu(
        &["-k", "-v", "echo", ":::", "a b"],
        Seen::new("echo 'a b'\na b\n", 0),
        false,
    );
    like_gnu(
        &["-k", "--tag", "echo", "hi", ":::", "a", "b c"],
        Seen::new("a\thi a\nb c\thi b c\n", 0),
        false,
    );
    like_gnu(
        &["-k", "--tag", "echo", ":::", "a", "b", ":::", "1"],
        Seen::new("a 1\ta 1\nb 1\tb 1\n", 0),
        false,
    );
    like_gnu(
        &[
            "-k",
            "--tagstring",
            "<{#}>",
            "printf",
            "'x\\ny\\n'",
            ":::",
            "a",
        ],
        Seen::new("<1>\tx\n<1>\ty\n", 0),
        false,
    );
}

#[test]
fn ungrouped_output() {
    like_gnu(
        &["-j1", "-u", "echo", ":::", "a", "b"],
        Seen::new("a\nb\n", 0),
        false,
    );
}

#[test]
fn linked_sources_wrap_around() {
    like_gnu(
        &[
            "-k", "--link", "echo", ":::", "a", "b", "c", ":::", "1", "2",
        ],
        Seen::new("a 1\nb 2\nc 1\n", 0),
        false,
    );
    like_gnu(
        &["-k", "echo", ":::", "a", "b", "c", ":::+", "1", "2"],
        Seen::new("a 1\nb 2\n", 0),
        false,
    );
}

#[test]
fn max_procs_progress_and_delay() {
    like_gnu(
        &["-k", "-P", "2", "--delay", "0.05", "echo", ":::", "a", "b"],
        Seen::new("a\nb\n", 0),
        false,
    );
    like_gnu(
        &["-k", "--progress", "echo", ":::", "a", "b"],
        Seen::new("a\nb\n", 0),
        false,
    );
}

#[test]
fn pipe_gives_blocks_of_stdin() {
    let input: String = (1..=10).map(|i| format!("{i}\n")).collect();
    like_gnu_stdin(
        &["-k", "--pipe", "-N3", "wc", "-l"],
        Some(input.as_bytes()),
        Seen::new("3\n3\n3\n1\n", 0),
        false,
    );
    like_gnu_stdin(
        &["-k", "--pipe", "--block", "1k", "wc", "-l"],
        Some(input.as_bytes()),
        Seen::new("10\n", 0),
        false,
    );
}

#[test]
fn known_unsupported_flags_say_so() {
    let o = run(&["run", "--sshlogin", "host", "echo", ":::", "a"]);
    assert_eq!(code(&o), 255);
    let err = stderr(&o);
    assert!(
        err.contains("--sshlogin") && err.contains("not supported"),
        "{err}"
    );
    assert!(
        !err.contains("-- --sshlogin"),
        "clap's tip must not appear: {err}"
    );
    let o = run(&["run", "--frobnicate", "echo", ":::", "a"]);
    assert!(!stderr(&o).contains("tip:"), "{}", stderr(&o));
}
