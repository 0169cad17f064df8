//! The `{}` family, with GNU parallel's meanings, and how a command line is composed.
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
//! `{N}`, `{N.}`, `{N/}`, `{N//}` and `{N/.}` take the job's N-th value (from 1: the N-th input
//! source, column of `--colsep`, or argument of `-N`); a missing one is empty. `{name}` is a
//! column named by `--header`. Plain `{}` with several values gives them as separate words, as
//! GNU parallel does. Braces that are none of these (`{x}`, awk's `{print $1}`) are left alone.
//! When no placeholder appears, the values are appended as the last arguments.
//!
//! A job's command line is composed as GNU parallel composes it: the command words joined by
//! spaces, each value shell-quoted, for a shell to run ([`Template::script`]). When the words hold
//! nothing a shell would interpret, the shell would only split them where we already did, so the
//! job is executed directly ([`Template::argv`]), which saves starting a shell per job.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

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
    Lit(Vec<u8>),
    Input { source: Option<usize>, kind: Kind },
    Seq,
    Slot,
}

/// How values fill a word with a plain `{}` when a job has several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Spread {
    /// Each value is a word of its own; the text around `{}` goes to the first and last (`-m`).
    #[default]
    Words,
    /// The whole word is repeated for each value (`-X`, context replace).
    Context,
}

/// A parsed command line, rendered once per job.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    words: Vec<Vec<Piece>>,
    /// No placeholder appeared: the values go last.
    append: bool,
    /// `-q`: the command words are quoted too (each is one word, as typed).
    quote_words: bool,
    spread: Spread,
    /// The composed line would mean to a shell exactly the words we split: exec directly.
    direct: bool,
}

/// Shell builtins and keywords: a command starting with one needs the shell, as do words with
/// shell syntax. Builtins that behave like their `/usr/bin` namesakes (`echo`, `true`, `test`,
/// `printf`, `kill`...) are left out, so that the most common commands run without a shell.
const NEEDS_SHELL: &[&str] = &[
    ".", ":", "alias", "bg", "break", "builtin", "case", "cd", "command", "continue", "declare",
    "do", "done", "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi",
    "for", "function", "getopts", "hash", "if", "in", "jobs", "let", "local", "read", "readonly",
    "return", "select", "set", "shift", "source", "then", "time", "times", "trap", "type",
    "typeset", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
];

/// Bytes a shell reads as themselves anywhere in a word.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b)
}

impl Template {
    /// Parses the command words. `replace` stands for `{}` instead (`-I`); `n_values` is how
    /// many values each job has, when it is fixed (for checking `{N}`); `names` are `--header`
    /// column names, for `{name}`.
    pub(crate) fn parse(
        words: &[Vec<u8>],
        replace: Option<&[u8]>,
        n_values: Option<usize>,
        names: &[Vec<u8>],
        quote_words: bool,
        spread: Spread,
    ) -> anyhow::Result<Self> {
        let words: Vec<Vec<Piece>> = words
            .iter()
            .map(|w| parse_word(w, replace, names))
            .collect();
        let mut append = true;
        for p in words.iter().flatten() {
            match p {
                Piece::Lit(_) => {}
                Piece::Input {
                    source: Some(n), ..
                } if n_values.is_some_and(|max| *n >= max) => {
                    let max = n_values.unwrap_or(0);
                    bail!(
                        "placeholder {{{}}} refers to input source {} but there {} only {max}",
                        n + 1,
                        n + 1,
                        if max == 1 { "is" } else { "are" },
                    )
                }
                _ => append = false,
            }
        }
        let first_ok = match words.first().map(Vec::as_slice) {
            Some([Piece::Lit(w)]) => {
                !w.contains(&b'=') && !NEEDS_SHELL.iter().any(|k| k.as_bytes() == w.as_slice())
            }
            _ => false,
        };
        let literals_plain = words.iter().flatten().all(|p| match p {
            Piece::Lit(l) => l.iter().all(|&b| plain(b)),
            _ => true,
        });
        Ok(Template {
            direct: quote_words || (first_ok && literals_plain),
            words,
            append,
            quote_words,
            spread,
        })
    }

    /// The same template without the values appended at the end (`--pipe`: they go to stdin).
    pub(crate) fn without_append(mut self) -> Self {
        self.append = false;
        self
    }

    /// Whether jobs can be executed without a shell (see the module's documentation).
    pub(crate) fn direct(&self) -> bool {
        self.direct
    }

    /// The program, when it is the same for every job (it has no placeholder).
    pub(crate) fn fixed_program(&self) -> Option<&[u8]> {
        match self.words.first().map(Vec::as_slice) {
            Some([Piece::Lit(p)]) => Some(p),
            _ => None,
        }
    }

    /// The literal words that are a shell operator on their own (`>`, `|`, `&&`...): with
    /// `--no-shell` they reach the program as arguments, which is rarely what was meant.
    pub(crate) fn operator_words(&self) -> Vec<String> {
        const OPERATORS: &[&str] = &[
            ">", ">>", "<", "|", "||", "&&", "&", ";", "2>", "2>&1", ">&2", "|&", "<<",
        ];
        self.words
            .iter()
            .filter_map(|w| match w.as_slice() {
                [Piece::Lit(l)] if OPERATORS.iter().any(|o| o.as_bytes() == l.as_slice()) => {
                    Some(String::from_utf8_lossy(l).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    /// The words of one job, each a list of pieces of bytes: `quote` says whether a piece is a
    /// value (to quote for a shell) or literal text.
    fn expand(&self, values: &[Vec<u8>], seq: u64, slot: usize) -> Vec<Vec<(bool, Vec<u8>)>> {
        let mut out: Vec<Vec<(bool, Vec<u8>)>> = Vec::new();
        for w in &self.words {
            let context = self.spread == Spread::Context
                && values.len() > 1
                && w.iter()
                    .any(|p| matches!(p, Piece::Input { source: None, .. }));
            if context {
                for v in values {
                    out.push(self.word(w, std::slice::from_ref(v), seq, slot).remove(0));
                }
            } else {
                out.extend(self.word(w, values, seq, slot));
            }
        }
        if self.append {
            out.extend(values.iter().map(|v| vec![(true, v.clone())]));
        }
        out
    }

    /// One word; several when it holds a plain `{}` and the job has several values.
    fn word(
        &self,
        w: &[Piece],
        values: &[Vec<u8>],
        seq: u64,
        slot: usize,
    ) -> Vec<Vec<(bool, Vec<u8>)>> {
        let mut words = vec![Vec::new()];
        let cur = |words: &mut Vec<Vec<(bool, Vec<u8>)>>| words.len() - 1;
        for p in w {
            match p {
                Piece::Lit(l) => {
                    let i = cur(&mut words);
                    words[i].push((self.quote_words, l.clone()));
                }
                Piece::Seq => {
                    let i = cur(&mut words);
                    words[i].push((false, seq.to_string().into_bytes()));
                }
                Piece::Slot => {
                    let i = cur(&mut words);
                    words[i].push((false, slot.to_string().into_bytes()));
                }
                Piece::Input {
                    source: Some(n),
                    kind,
                } => {
                    let v = values.get(*n).map_or(Vec::new(), |v| apply(*kind, v));
                    let i = cur(&mut words);
                    words[i].push((true, v));
                }
                Piece::Input { source: None, kind } => {
                    for (k, v) in values.iter().enumerate() {
                        if k > 0 {
                            words.push(Vec::new());
                        }
                        let i = cur(&mut words);
                        words[i].push((true, apply(*kind, v)));
                    }
                }
            }
        }
        words
    }

    /// The argv of one job, for executing it directly.
    pub(crate) fn argv(&self, values: &[Vec<u8>], seq: u64, slot: usize) -> Vec<OsString> {
        self.expand(values, seq, slot)
            .into_iter()
            .map(|w| OsString::from_vec(w.into_iter().flat_map(|(_, b)| b).collect()))
            .collect()
    }

    /// The command line of one job as GNU parallel composes it, for a shell: the words joined
    /// by spaces, values (and with `-q` every word) shell-quoted. Also how a job is shown.
    pub(crate) fn script(&self, values: &[Vec<u8>], seq: u64, slot: usize) -> Vec<u8> {
        let mut s = Vec::new();
        for (i, w) in self.expand(values, seq, slot).into_iter().enumerate() {
            if i > 0 {
                s.push(b' ');
            }
            for (quote, bytes) in w {
                if quote {
                    s.extend(shell_quote(&bytes));
                } else {
                    s.extend(bytes);
                }
            }
        }
        s
    }
}

fn parse_word(w: &[u8], replace: Option<&[u8]>, names: &[Vec<u8>]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < w.len() {
        let found = match replace {
            Some(r) if w[i..].starts_with(r) => Some((
                Piece::Input {
                    source: None,
                    kind: Kind::Whole,
                },
                r.len(),
            )),
            // With -I, `{}` is plain text; the other placeholders keep their meaning.
            Some(_) if w[i..].starts_with(b"{}") => None,
            _ if w[i] == b'{' => parse_placeholder(&w[i..], names),
            _ => None,
        };
        if let Some((piece, len)) = found {
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(piece);
            i += len;
            continue;
        }
        lit.push(w[i]);
        i += 1;
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    pieces
}

/// `s` starts with `{`: the placeholder there and its length, if it is one.
fn parse_placeholder(s: &[u8], names: &[Vec<u8>]) -> Option<(Piece, usize)> {
    let close = s.iter().position(|&b| b == b'}')?;
    let inner = &s[1..close];
    let piece = match inner {
        b"#" => Piece::Seq,
        b"%" => Piece::Slot,
        _ => {
            let digits = inner.iter().take_while(|b| b.is_ascii_digit()).count();
            let (num, suffix) = inner.split_at(digits);
            let kind = |suffix: &[u8]| match suffix {
                b"" => Some(Kind::Whole),
                b"." => Some(Kind::NoExt),
                b"/" => Some(Kind::Base),
                b"//" => Some(Kind::Dir),
                b"/." => Some(Kind::BaseNoExt),
                _ => None,
            };
            if num.is_empty()
                && let Some(n) = names.iter().position(|n| n.as_slice() == inner)
            {
                return Some((
                    Piece::Input {
                        source: Some(n),
                        kind: Kind::Whole,
                    },
                    close + 1,
                ));
            }
            let kind = kind(suffix)?;
            let source = if num.is_empty() {
                None
            } else {
                match std::str::from_utf8(num).ok()?.parse::<usize>() {
                    Ok(n) if n >= 1 => Some(n - 1),
                    _ => return None,
                }
            };
            Piece::Input { source, kind }
        }
    };
    Some((piece, close + 1))
}

fn apply(kind: Kind, v: &[u8]) -> Vec<u8> {
    match kind {
        Kind::Whole => v.to_vec(),
        Kind::NoExt => no_ext(v).to_vec(),
        Kind::Base => basename(v).to_vec(),
        Kind::Dir => dirname(v),
        Kind::BaseNoExt => no_ext(basename(v)).to_vec(),
    }
}

/// GNU parallel's `s:\.[^/.]+$::`: drops a final `.ext` that holds no `/` or `.`.
fn no_ext(v: &[u8]) -> &[u8] {
    match v.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot + 1 < v.len() && !v[dot + 1..].contains(&b'/') => &v[..dot],
        _ => v,
    }
}

/// GNU parallel's `s:^.*/::`.
fn basename(v: &[u8]) -> &[u8] {
    match v.iter().rposition(|&b| b == b'/') {
        Some(i) => &v[i + 1..],
        None => v,
    }
}

/// Perl's `File::Basename::dirname`, which GNU parallel uses for `{//}`.
fn dirname(v: &[u8]) -> Vec<u8> {
    let trim = |s: &[u8]| -> usize { s.len() - s.iter().rev().take_while(|&&b| b == b'/').count() };
    let trimmed = &v[..trim(v)];
    if trimmed.is_empty() {
        return if v.is_empty() {
            b".".to_vec()
        } else {
            b"/".to_vec()
        };
    }
    match trimmed.iter().rposition(|&b| b == b'/') {
        None => b".".to_vec(),
        Some(i) => {
            let d = &trimmed[..trim(&trimmed[..i])];
            if d.is_empty() {
                b"/".to_vec()
            } else {
                d.to_vec()
            }
        }
    }
}

/// Quotes `s` for `sh` when it needs it, as GNU parallel does (`'it'"'"'s'`).
pub(crate) fn shell_quote(s: &[u8]) -> Vec<u8> {
    if !s.is_empty() && s.iter().all(|&b| plain(b)) {
        return s.to_vec();
    }
    let mut q = vec![b'\''];
    for &b in s {
        if b == b'\'' {
            q.extend_from_slice(b"'\"'\"'");
        } else {
            q.push(b);
        }
    }
    q.push(b'\'');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn t(words: &[&str], n: usize) -> Template {
        Template::parse(&b(words), None, Some(n), &[], false, Spread::Words).unwrap()
    }

    fn argv(words: &[&str], args: &[&str]) -> Vec<String> {
        t(words, args.len())
            .argv(&b(args), 7, 2)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    fn script(words: &[&str], args: &[&str]) -> String {
        String::from_utf8(t(words, args.len()).script(&b(args), 7, 2)).unwrap()
    }

    #[test]
    fn gnu_path_rules() {
        let p = b"dir/sub/file.tar.gz";
        assert_eq!(apply(Kind::NoExt, p), b"dir/sub/file.tar");
        assert_eq!(apply(Kind::Base, p), b"file.tar.gz");
        assert_eq!(apply(Kind::Dir, p), b"dir/sub");
        assert_eq!(apply(Kind::BaseNoExt, p), b"file.tar");
        assert_eq!(apply(Kind::Dir, b"file"), b".");
        assert_eq!(apply(Kind::Dir, b"/file"), b"/");
        assert_eq!(apply(Kind::NoExt, b"a.b/c"), b"a.b/c");
        assert_eq!(apply(Kind::NoExt, b"noext"), b"noext");
    }

    #[test]
    fn rendering() {
        assert_eq!(argv(&["echo"], &["a b"]), ["echo", "a b"]);
        assert_eq!(argv(&["x{#}-{%}"], &["a"]), ["x7-2"]);
        assert_eq!(argv(&["{2}{1}"], &["a", "b"]), ["ba"]);
        assert_eq!(argv(&["x{}y"], &["a", "b"]), ["xa", "by"]);
        assert_eq!(argv(&["awk", "{print}"], &["f"]), ["awk", "{print}", "f"]);
        assert_eq!(
            script(&["echo", "{}", "|", "wc"], &["it's"]),
            "echo 'it'\"'\"'s' | wc"
        );
        assert_eq!(script(&["echo"], &["a b", "c"]), "echo 'a b' c");
    }

    #[test]
    fn shell_only_when_needed() {
        assert!(t(&["echo", "{}"], 1).direct());
        assert!(!t(&["echo", "{}", ">", "f"], 1).direct());
        assert!(!t(&["cd", "{}"], 1).direct());
        assert!(!t(&["echo $HOME"], 1).direct());
        assert!(!t(&["A=1", "env"], 1).direct());
        assert!(!t(&["{}"], 1).direct());
    }

    #[test]
    fn bad_source_number() {
        assert!(
            Template::parse(
                &b(&["echo", "{3}"]),
                None,
                Some(2),
                &[],
                false,
                Spread::Words
            )
            .is_err()
        );
    }
}
