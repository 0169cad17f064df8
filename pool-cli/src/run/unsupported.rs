//! GNU parallel flags that `pool run` does not have, and why; the message a user gets instead
//! of clap's generic "unexpected argument" (whose tip, "use `-- --flag`", would be wrong here).

/// (flags, what they are in GNU parallel, why `pool run` lacks them).
const MISSING: &[(&[&str], &str)] = &[
    (
        &[
            "-S",
            "--sshlogin",
            "--sshloginfile",
            "--slf",
            "--transferfile",
            "--transfer",
            "--return",
            "--cleanup",
            "--trc",
            "--basefile",
            "--bf",
            "--onall",
            "--nonall",
            "--controlmaster",
            "--workdir",
            "--wd",
            "--env",
            "--filter-hosts",
            "--sshdelay",
        ],
        "remote execution over ssh: pool run runs jobs on this machine only",
    ),
    (
        &[
            "--semaphore",
            "--sem",
            "--fg",
            "--bg",
            "--semaphorename",
            "--id",
        ],
        "semaphore mode: pool run is not a mutex for other programs",
    ),
    (
        &["--sqlmaster", "--sqlworker", "--sqlandworker"],
        "SQL job queues",
    ),
    (
        &[
            "--pipepart",
            "--roundrobin",
            "--round-robin",
            "--cat",
            "--fifo",
            "--recstart",
            "--recend",
            "--regexp",
            "--spreadstdin",
        ],
        "a variant of --pipe: pool run has --pipe with --block and -N",
    ),
    (
        &["--load", "--memfree", "--noswap", "--nice", "--limit"],
        "throttling by load or memory: pool run starts jobs by -j only",
    ),
    (&["--tmux", "--tmuxpane"], "output in tmux windows"),
    (&["--shuf"], "running jobs in random order"),
    (
        &["--rpl", "--plus"],
        "perl replacement strings: pool run has the fixed {} family (see --help)",
    ),
    (&["--csv"], "CSV input: use --colsep , for simple CSV"),
    (
        &["--compress", "--files", "--tmpdir", "--tmp-dir"],
        "output in temporary files: pool run keeps a job's output in memory until printed",
    ),
    (&["--group-by"], "grouping --pipe records by a column"),
    (
        &[
            "-s",
            "--max-chars",
            "--max-line-length-allowed",
            "-L",
            "--max-lines",
            "-l",
            "-E",
        ],
        "xargs-style line limits: use -n/-N, or -X/-m",
    ),
    (
        &["--retry-failed"],
        "re-running the jobs of a job log without the command: use --resume-failed",
    ),
    (
        &["--termseq"],
        "a custom signal sequence: pool run sends SIGTERM, then SIGKILL 300 ms later",
    ),
    (
        &["--citation", "--bibtex"],
        "GNU parallel's citation notice",
    ),
];

/// The message for an option clap did not know, when `pool run` was given `flag`.
pub(crate) fn message(flag: &str) -> String {
    let name = flag.split('=').next().unwrap_or(flag);
    for (flags, why) in MISSING {
        if flags.contains(&name) {
            return format!(
                "pool run: `{name}` is not supported: in GNU parallel it is {why}. \
                 See the compatibility table in pool-cli/README.md."
            );
        }
    }
    format!(
        "pool run: unknown option `{name}` (see `pool run --help`; a command starting with `-` \
         goes after `--`)"
    )
}
