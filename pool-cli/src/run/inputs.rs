//! Input sources: stdin lines, `:::` argument lists and `::::` files, combined as a cartesian
//! product (the first source varies slowest, as in GNU parallel), or side by side (`:::+`, the
//! shortest ends; `--link`, the shorter ones wrap around). Values are bytes, never re-encoded;
//! records end at `\n`, or at the `-d`/`-0` delimiter.
//!
//! The first source is streamed (stdin can be endless; the pool pulls inputs only as workers
//! free up); the others are read up front, since every value of the first is combined with all
//! of theirs.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;

/// Where inputs come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The values after a `:::`.
    Args(Vec<Vec<u8>>),
    /// A file of lines (`::::` or `-a`); `-` is stdin.
    File(PathBuf),
    /// Standard input, one input per line.
    Stdin,
    /// A source after `:::+` or `::::+`: taken side by side with the one before it.
    Linked(Box<Source>),
}

impl Source {
    /// Whether it reads stdin.
    pub(crate) fn is_stdin(&self) -> bool {
        match self {
            Source::Stdin => true,
            Source::File(p) => p.as_os_str() == "-",
            Source::Linked(inner) => inner.is_stdin(),
            Source::Args(_) => false,
        }
    }
}

/// `--header`: takes the first value of each `:::` source as its name; `None` for the sources
/// that are read as the run goes (their first record is the name, taken from the first row).
pub(crate) fn take_header(sources: &mut [Source]) -> Vec<Option<Vec<u8>>> {
    sources
        .iter_mut()
        .map(|s| match s {
            Source::Args(v) if !v.is_empty() => Some(v.remove(0)),
            Source::Linked(inner) => match inner.as_mut() {
                Source::Args(v) if !v.is_empty() => Some(v.remove(0)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The first read error, kept for the end of the run.
pub(crate) type ReadError = Arc<Mutex<Option<anyhow::Error>>>;

/// The inputs of a run: one `Vec` (a value per source) per job.
pub(crate) struct Inputs {
    pub(crate) iter: Box<dyn Iterator<Item = Vec<Vec<u8>>>>,
    /// Number of jobs, when known without reading the first source to its end.
    pub(crate) total: Option<usize>,
    pub(crate) error: ReadError,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("total", &self.total)
            .finish()
    }
}

type Lines = Box<dyn Iterator<Item = io::Result<Vec<u8>>>>;

fn open(source: &Source, sep: u8) -> anyhow::Result<(Lines, Option<usize>)> {
    Ok(match source {
        Source::Args(v) => (Box::new(v.clone().into_iter().map(Ok)), Some(v.len())),
        Source::Stdin => (records(Box::new(io::stdin().lock()), sep), None),
        Source::File(p) if p.as_os_str() == "-" => {
            (records(Box::new(io::stdin().lock()), sep), None)
        }
        Source::File(p) => {
            let f =
                File::open(p).with_context(|| format!("cannot open input file {}", p.display()))?;
            (records(Box::new(BufReader::new(f)), sep), None)
        }
        Source::Linked(inner) => return open(inner, sep),
    })
}

/// Records without their delimiter `sep`, as raw bytes.
fn records(mut r: Box<dyn BufRead>, sep: u8) -> Lines {
    let mut buf = Vec::new();
    Box::new(std::iter::from_fn(move || {
        buf.clear();
        match r.read_until(sep, &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                if buf.last() == Some(&sep) {
                    buf.pop();
                }
                Some(Ok(buf.clone()))
            }
            Err(e) => Some(Err(e)),
        }
    }))
}

fn describe(s: &Source) -> String {
    match s {
        Source::Args(_) => "`:::` arguments".into(),
        Source::File(p) if p.as_os_str() == "-" => "stdin".into(),
        Source::File(p) => p.display().to_string(),
        Source::Stdin => "stdin".into(),
        Source::Linked(inner) => describe(inner),
    }
}

/// A group of sources linked with `:::+` / `::::+`: their values are taken side by side (the
/// shortest one ends the group), as one row.
type Rows = Box<dyn Iterator<Item = io::Result<Vec<Vec<u8>>>>>;

fn open_group(group: &[&Source], sep: u8) -> anyhow::Result<(Rows, Option<usize>)> {
    let mut members = Vec::with_capacity(group.len());
    let mut len: Option<usize> = Some(usize::MAX);
    for s in group {
        let (it, n) = open(s, sep)?;
        len = match (len, n) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        members.push(it);
    }
    let rows = std::iter::from_fn(move || {
        let mut row = Vec::with_capacity(members.len());
        for m in &mut members {
            match m.next()? {
                Ok(v) => row.push(v),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(row))
    });
    Ok((Box::new(rows), len))
}

fn describe_group(group: &[&Source]) -> String {
    group
        .iter()
        .map(|s| describe(s))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// `--link`: every source side by side; the shorter ones start again from their first value
/// until the longest ends. All are read up front.
fn link_all(sources: &[Source], sep: u8) -> anyhow::Result<Inputs> {
    let mut all = Vec::with_capacity(sources.len());
    for s in sources {
        let (it, _) = open(s, sep)?;
        let vals = it
            .collect::<io::Result<Vec<_>>>()
            .with_context(|| format!("cannot read {}", describe(s)))?;
        all.push(vals);
    }
    let n = if all.iter().any(Vec::is_empty) {
        0
    } else {
        all.iter().map(Vec::len).max().unwrap_or(0)
    };
    let rows = (0..n).map(move |i| all.iter().map(|v| v[i % v.len()].clone()).collect());
    Ok(Inputs {
        iter: Box::new(rows),
        total: Some(n),
        error: Arc::new(Mutex::new(None)),
    })
}

/// Opens the sources, whose records end at `sep`. With `materialize`, the first source is read
/// to its end too (so that the total is known, e.g. for percentages in `--halt`). With `link`,
/// all sources are taken side by side (`--link`).
pub(crate) fn read(
    sources: &[Source],
    sep: u8,
    materialize: bool,
    link: bool,
) -> anyhow::Result<Inputs> {
    if link {
        return link_all(sources, sep);
    }
    let error: ReadError = Arc::new(Mutex::new(None));
    let mut groups: Vec<Vec<&Source>> = Vec::new();
    for s in sources {
        match (s, groups.last_mut()) {
            (Source::Linked(inner), Some(last)) => last.push(inner),
            (Source::Linked(inner), None) => groups.push(vec![inner]),
            (other, _) => groups.push(vec![other]),
        }
    }
    let mut rest: Vec<Vec<Vec<Vec<u8>>>> = Vec::new();
    for g in groups.iter().skip(1) {
        let (rows, _) = open_group(g, sep)?;
        let rows = rows
            .collect::<io::Result<Vec<_>>>()
            .with_context(|| format!("cannot read {}", describe_group(g)))?;
        rest.push(rows);
    }
    let (first, mut first_len) = open_group(&groups[0], sep)?;
    let first: Rows = if materialize && first_len.is_none() {
        let rows = first
            .collect::<io::Result<Vec<_>>>()
            .with_context(|| format!("cannot read {}", describe_group(&groups[0])))?;
        first_len = Some(rows.len());
        Box::new(rows.into_iter().map(Ok))
    } else {
        first
    };
    let n_rest: usize = rest.iter().map(Vec::len).product();
    let total = first_len.map(|n| n * n_rest);
    let err = error.clone();
    let what = describe_group(&groups[0]);
    let firsts = first.map_while(move |r| match r {
        Ok(v) => Some(v),
        Err(e) => {
            *err.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(anyhow::Error::new(e).context(format!("cannot read {what}")));
            None
        }
    });
    let rest = Arc::new(rest);
    let iter = firsts.flat_map(move |v| Product::new(v, rest.clone()));
    Ok(Inputs {
        iter: Box::new(iter),
        total,
        error,
    })
}

/// Every combination of one row of the first group with the rows of the others.
struct Product {
    first: Vec<Vec<u8>>,
    rest: Arc<Vec<Vec<Vec<Vec<u8>>>>>,
    idx: Vec<usize>,
    done: bool,
}

impl Product {
    fn new(first: Vec<Vec<u8>>, rest: Arc<Vec<Vec<Vec<Vec<u8>>>>>) -> Self {
        let done = rest.iter().any(Vec::is_empty);
        Product {
            first,
            idx: vec![0; rest.len()],
            rest,
            done,
        }
    }
}

impl Iterator for Product {
    type Item = Vec<Vec<u8>>;

    fn next(&mut self) -> Option<Vec<Vec<u8>>> {
        if self.done {
            return None;
        }
        let mut out = self.first.clone();
        for (&i, rows) in self.idx.iter().zip(self.rest.iter()) {
            out.extend(rows[i].iter().cloned());
        }
        // Odometer: the last group varies fastest.
        self.done = true;
        for k in (0..self.idx.len()).rev() {
            self.idx[k] += 1;
            if self.idx[k] < self.rest[k].len() {
                self.done = false;
                break;
            }
            self.idx[k] = 0;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Source {
        Source::Args(v.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    #[test]
    fn cartesian_product() {
        let inputs = read(
            &[args(&["a", "b"]), args(&["1", "2"]), args(&["x"])],
            b'\n',
            false,
            false,
        )
        .unwrap();
        assert_eq!(inputs.total, Some(4));
        let all: Vec<Vec<u8>> = inputs.iter.map(|v| v.concat()).collect();
        assert_eq!(all, [b"a1x", b"a2x", b"b1x", b"b2x"]);
    }

    #[test]
    fn linked_sources_go_side_by_side() {
        let linked = |v: &[&str]| Source::Linked(Box::new(args(v)));
        let inputs = read(
            &[
                args(&["a", "b", "c"]),
                linked(&["1", "2"]),
                args(&["x", "y"]),
            ],
            b'\n',
            false,
            false,
        )
        .unwrap();
        assert_eq!(inputs.total, Some(4));
        let all: Vec<Vec<u8>> = inputs.iter.map(|v| v.concat()).collect();
        assert_eq!(all, [b"a1x", b"a1y", b"b2x", b"b2y"]);
        let linked = read(
            &[args(&["a", "b", "c"]), args(&["1", "2"])],
            b'\n',
            false,
            true,
        )
        .unwrap()
        .iter
        .map(|v| v.concat())
        .collect::<Vec<_>>();
        assert_eq!(linked, [b"a1", b"b2", b"c1"]);
    }
}
