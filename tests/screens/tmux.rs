//! A program in a real pseudo-terminal: a tmux session of its own (own server socket), read
//! back with `capture-pane`. Without tmux the tests are skipped loudly, or fail under `CI`.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Whether tmux can be used; panics under `CI` when it cannot.
pub(crate) fn available(test: &str) -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "CI is set but tmux is missing: apt-get install -y tmux ({test})"
    );
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! SKIPPED {test}: needs tmux (apt-get install -y tmux); under CI=true this fails.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    false
}

/// A tmux server running one command in a `width`×`height` window; killed on drop.
pub(crate) struct Tmux {
    socket: String,
}

/// Printed by the shell when the command has ended.
pub(crate) const END: &str = "__END__";

impl Tmux {
    /// Runs `command` (a shell command line) in a fresh session, with the progress settings
    /// of the environment cleared, then prints [`END`].
    pub(crate) fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("pool-screens-{}-{name}", std::process::id()),
        };
        let cmd = format!(
            "env -u CI -u POOL_PROGRESS_STYLE -u POOL_PROGRESS_INTERVAL {command}; echo {END}; sleep 300"
        );
        let out = Command::new("tmux")
            .args(["-L", &tmux.socket, "-f", "/dev/null", "new-session", "-d"])
            .args([
                "-s",
                "t",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(&cmd)
            .output()
            .expect("tmux runs");
        assert!(out.status.success(), "{out:?}");
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen and the scrollback as rows, trailing spaces and empty rows at the end cut.
    pub(crate) fn rows(&self) -> Vec<String> {
        let text = self.run(&["capture-pane", "-p", "-S", "-500", "-t", "t"]);
        let mut rows: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        while rows.last().is_some_and(|r| r.is_empty()) {
            rows.pop();
        }
        rows
    }

    /// Waits (at most two minutes) until the command has ended; returns the rows.
    pub(crate) fn wait_end(&self) -> Vec<String> {
        let t0 = Instant::now();
        loop {
            let rows = self.rows();
            if rows.iter().any(|r| r == END) {
                return rows;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "the command did not end:\n{}",
                rows.join("\n")
            );
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}
