//! The `{}` family, with GNU parallel's meanings.
//!
//! | placeholder | value for `dir/sub/file.tar.gz` |
//! |---|---|
//! | `{}` | `dir/sub/file.tar.gz` |
//! | `{.}` | `dir/sub/file.tar` |
//! | `{/}` | `file.tar.gz` |
//! | `{//}` | `dir/sub` |
//! | `{/.}` | `file.tar` |
//! | `{#}` | the job's sequence number, from 1 |
//! | `{%}` | the job's slot, `1..=jobs` |
//!
//! `{N}`, `{N.}`, `{N/}`, `{N//}` and `{N/.}` take the N-th input source (from 1); plain `{}`
//! with several sources is all of them joined by spaces. Braces that are none of these (`{x}`,
//! awk's `{print $1}`) are left alone. When no placeholder appears, the inputs are appended as
//! the last arguments.

use anyhow::bail;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Whole,
    NoExt,
    Base,
    Dir,
    BaseNoExt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Input { source: Option<usize>, kind: Kind },
    Seq,
    Slot,
}

/// A parsed command line, rendered once per job.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    shell: bool,
    /// One entry per word; in shell mode a single entry, the script.
    words: Vec<Vec<Piece>>,
    /// No placeholder appeared: the inputs go last.
    append: bool,
}

impl Template {
    /// Parses the command words. `n_sources` is the number of input sources (for `{N}`).
    pub(crate) fn parse(words: &[String], shell: bool, n_sources: usize) -> anyhow::Result<Self> {
        let words: Vec<Vec<Piece>> = if shell {
            vec![parse_word(&words.join(" "))]
        } else {
            words.iter().map(|w| parse_word(w)).collect()
        };
        let mut append = true;
        for p in words.iter().flatten() {
            match p {
                Piece::Lit(_) => {}
                Piece::Input {
                    source: Some(n), ..
                } if *n >= n_sources => {
                    bail!(
                        "placeholder {{{}}} refers to input source {} but there {} only {}",
                        n + 1,
                        n + 1,
                        if n_sources == 1 { "is" } else { "are" },
                        n_sources
                    )
                }
                _ => append = false,
            }
        }
        Ok(Template {
            shell,
            words,
            append,
        })
    }

    /// The program, when it is the same for every job (it has no placeholder).
    pub(crate) fn fixed_program(&self) -> Option<&str> {
        if self.shell {
            return Some("sh");
        }
        match self.words.first().map(Vec::as_slice) {
            Some([Piece::Lit(p)]) => Some(p),
            _ => None,
        }
    }

    /// The argv of one job: `args` holds one value per input source.
    pub(crate) fn render(&self, args: &[String], seq: u64, slot: usize) -> Vec<String> {
        let quote = self.shell;
        let mut out: Vec<String> = self
            .words
            .iter()
            .map(|w| {
                let mut s = String::new();
                for p in w {
                    match p {
                        Piece::Lit(l) => s.push_str(l),
                        Piece::Seq => s.push_str(&seq.to_string()),
                        Piece::Slot => s.push_str(&slot.to_string()),
                        Piece::Input { source, kind } => {
                            let one = |a: &str| {
                                let v = apply(*kind, a);
                                if quote { shell_quote(&v) } else { v }
                            };
                            // `{}` of several sources: each value (quoted apart), joined by spaces.
                            let v = match source {
                                Some(n) => one(&args[*n]),
                                None => args.iter().map(|a| one(a)).collect::<Vec<_>>().join(" "),
                            };
                            s.push_str(&v);
                        }
                    }
                }
                s
            })
            .collect();
        if self.append {
            if self.shell {
                for a in args {
                    out[0].push(' ');
                    out[0].push_str(&shell_quote(a));
                }
            } else {
                out.extend(args.iter().cloned());
            }
        }
        if self.shell {
            let script = out.pop().unwrap_or_default();
            vec!["sh".into(), "-c".into(), script]
        } else {
            out
        }
    }

    /// How a rendered command is shown (dry run, job log): copy-pasteable into a shell.
    pub(crate) fn display(&self, argv: &[String]) -> String {
        if self.shell {
            argv.last().cloned().unwrap_or_default()
        } else {
            argv.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

fn parse_word(w: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = w;
    while let Some(open) = rest.find('{') {
        lit.push_str(&rest[..open]);
        let after = &rest[open..];
        match parse_placeholder(after) {
            Some((piece, len)) => {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(piece);
                rest = &after[len..];
            }
            None => {
                lit.push('{');
                rest = &after[1..];
            }
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    pieces
}

/// `s` starts with `{`: the placeholder there and its length, if it is one.
fn parse_placeholder(s: &str) -> Option<(Piece, usize)> {
    let close = s.find('}')?;
    let inner = &s[1..close];
    let piece = match inner {
        "#" => Piece::Seq,
        "%" => Piece::Slot,
        _ => {
            let digits = inner.len() - inner.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let (num, suffix) = inner.split_at(digits);
            let kind = match suffix {
                "" => Kind::Whole,
                "." => Kind::NoExt,
                "/" => Kind::Base,
                "//" => Kind::Dir,
                "/." => Kind::BaseNoExt,
                _ => return None,
            };
            let source = if num.is_empty() {
                None
            } else {
                match num.parse::<usize>() {
                    Ok(n) if n >= 1 => Some(n - 1),
                    _ => return None,
                }
            };
            Piece::Input { source, kind }
        }
    };
    Some((piece, close + 1))
}

fn apply(kind: Kind, v: &str) -> String {
    match kind {
        Kind::Whole => v.to_string(),
        Kind::NoExt => no_ext(v).to_string(),
        Kind::Base => basename(v).to_string(),
        Kind::Dir => dirname(v),
        Kind::BaseNoExt => no_ext(basename(v)).to_string(),
    }
}

/// GNU parallel's `s:\.[^/.]+$::`: drops a final `.ext` that holds no `/` or `.`.
fn no_ext(v: &str) -> &str {
    match v.rfind('.') {
        Some(dot) if dot + 1 < v.len() && !v[dot + 1..].contains('/') => &v[..dot],
        _ => v,
    }
}

/// GNU parallel's `s:^.*/::`.
fn basename(v: &str) -> &str {
    match v.rfind('/') {
        Some(i) => &v[i + 1..],
        None => v,
    }
}

/// Perl's `File::Basename::dirname`, which GNU parallel uses for `{//}`.
fn dirname(v: &str) -> String {
    let trimmed = v.trim_end_matches('/');
    if trimmed.is_empty() {
        return if v.is_empty() { ".".into() } else { "/".into() };
    }
    match trimmed.rfind('/') {
        None => ".".into(),
        Some(i) => {
            let d = trimmed[..i].trim_end_matches('/');
            if d.is_empty() { "/".into() } else { d.into() }
        }
    }
}

/// Quotes `s` for `sh` when it needs it.
pub(crate) fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(words: &[&str], shell: bool, args: &[&str]) -> Vec<String> {
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Template::parse(&words, shell, args.len())
            .unwrap()
            .render(&args, 7, 2)
    }

    #[test]
    fn gnu_path_rules() {
        let p = "dir/sub/file.tar.gz";
        assert_eq!(apply(Kind::NoExt, p), "dir/sub/file.tar");
        assert_eq!(apply(Kind::Base, p), "file.tar.gz");
        assert_eq!(apply(Kind::Dir, p), "dir/sub");
        assert_eq!(apply(Kind::BaseNoExt, p), "file.tar");
        assert_eq!(apply(Kind::Dir, "file"), ".");
        assert_eq!(apply(Kind::Dir, "/file"), "/");
        assert_eq!(apply(Kind::NoExt, "a.b/c"), "a.b/c");
        assert_eq!(apply(Kind::NoExt, "noext"), "noext");
    }

    #[test]
    fn rendering() {
        assert_eq!(render(&["echo"], false, &["a b"]), ["echo", "a b"]);
        assert_eq!(render(&["x{#}-{%}"], false, &["a"]), ["x7-2"]);
        assert_eq!(render(&["{2}{1}"], false, &["a", "b"]), ["ba"]);
        assert_eq!(render(&["{}"], false, &["a", "b"]), ["a b"]);
        assert_eq!(
            render(&["awk", "{print}"], false, &["f"]),
            ["awk", "{print}", "f"]
        );
        assert_eq!(
            render(&["echo", "{}", "|", "wc"], true, &["it's"]),
            ["sh", "-c", "echo 'it'\\''s' | wc"]
        );
        assert_eq!(
            render(&["echo"], true, &["a b"]),
            ["sh", "-c", "echo 'a b'"]
        );
    }

    #[test]
    fn bad_source_number() {
        let w = vec!["echo".to_string(), "{3}".to_string()];
        assert!(Template::parse(&w, false, 2).is_err());
    }
}
