//! From input rows to jobs: the command's template (`-I`), `--header` names, `--colsep`
//! columns, `-n`/`-N`/`-X`/`-m` groups and `--pipe` blocks, numbered from 1.

use std::fmt;

use super::args::{Config, Grouping};
use super::placeholders::{Spread, Template};

/// One job: its sequence number (from 1), its values, and with `--pipe` its block of stdin.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct JobSpec {
    pub(crate) seq: u64,
    pub(crate) values: Vec<Vec<u8>>,
    pub(crate) stdin: Option<Vec<u8>>,
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.seq)?;
        for v in &self.values {
            write!(f, " {}", String::from_utf8_lossy(v))?;
        }
        Ok(())
    }
}

/// The template of the command.
pub(crate) fn template(cfg: &Config, names: &[Vec<u8>]) -> anyhow::Result<Template> {
    let fixed_count = cfg.colsep.is_none()
        && names.is_empty()
        && cfg.grouping == Grouping::One
        && cfg.pipe.is_none();
    let spread = if cfg.context {
        Spread::Context
    } else {
        Spread::Words
    };
    let mut t = Template::parse(
        &cfg.words,
        cfg.replace.as_deref().filter(|r| !r.is_empty()),
        fixed_count.then_some(cfg.sources.len()),
        names,
        cfg.quote,
        spread,
    )?;
    if cfg.pipe.is_some() {
        t = t.without_append();
    }
    Ok(t)
}

/// The jobs of a run, and how many there are when that is known.
pub(crate) type Jobs = (Box<dyn Iterator<Item = JobSpec>>, Option<usize>);

/// Turns input rows into jobs: `--header` names, `--colsep` columns, `-n`/`-N`/`-X`/`-m`
/// groups, `--pipe` blocks, numbered from 1.
pub(crate) fn jobs(
    cfg: &Config,
    rows: Box<dyn Iterator<Item = Vec<Vec<u8>>>>,
    total: Option<usize>,
    header: Option<Vec<Option<Vec<u8>>>>,
    names: &mut Vec<Vec<u8>>,
) -> Jobs {
    let mut rows = rows.peekable();
    let mut total = total;
    if let Some(header) = header {
        // Names of `:::` sources were taken from them; the others' are in the first row.
        let first = if header.iter().any(Option::is_none) {
            total = total.map(|t| t.saturating_sub(1));
            rows.next().unwrap_or_default()
        } else {
            Vec::new()
        };
        *names = header
            .into_iter()
            .enumerate()
            .map(|(i, n)| n.or_else(|| first.get(i).cloned()).unwrap_or_default())
            .collect();
    }
    let rows: Box<dyn Iterator<Item = Vec<Vec<u8>>>> = match cfg.colsep.clone() {
        Some(re) => {
            *names = columns(&re, std::mem::take(names));
            Box::new(rows.map(move |row| columns(&re, row)))
        }
        None => Box::new(rows),
    };
    if let Some(block) = cfg.pipe {
        return (pipe_blocks(cfg, rows, block), None);
    }
    let per_job = match cfg.grouping {
        Grouping::One => 1,
        Grouping::Up(n) => n,
        Grouping::Even => total.map_or(1, |t| t.div_ceil(cfg.jobs).max(1)),
    };
    let total = total.map(|t| t.div_ceil(per_job));
    let values: Box<dyn Iterator<Item = Vec<Vec<u8>>>> = if per_job == 1 {
        rows
    } else {
        let mut rows = rows;
        Box::new(std::iter::from_fn(move || {
            let mut v = Vec::new();
            for _ in 0..per_job {
                match rows.next() {
                    Some(r) => v.extend(r),
                    None => break,
                }
            }
            (!v.is_empty()).then_some(v)
        }))
    };
    let jobs = values.enumerate().map(|(i, values)| JobSpec {
        seq: i as u64 + 1,
        values,
        stdin: None,
    });
    (Box::new(jobs), total)
}

/// `--pipe`: records of stdin gathered into blocks of at least `block` bytes (or `-N` records).
fn pipe_blocks(
    cfg: &Config,
    rows: Box<dyn Iterator<Item = Vec<Vec<u8>>>>,
    block: usize,
) -> Box<dyn Iterator<Item = JobSpec>> {
    let sep = cfg.separator;
    let records = match cfg.grouping {
        Grouping::Up(n) => Some(n),
        _ => None,
    };
    let mut rows = rows.peekable();
    let mut seq = 0;
    Box::new(std::iter::from_fn(move || {
        rows.peek()?;
        let mut buf = Vec::new();
        let mut n = 0;
        for row in rows.by_ref() {
            for v in row {
                buf.extend_from_slice(&v);
                buf.push(sep);
            }
            n += 1;
            let full = match records {
                Some(r) => n >= r,
                None => buf.len() >= block,
            };
            if full {
                break;
            }
        }
        seq += 1;
        Some(JobSpec {
            seq,
            values: Vec::new(),
            stdin: Some(buf),
        })
    }))
}

/// `--colsep`: each value of a row split into its columns.
fn columns(re: &regex::bytes::Regex, row: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    row.iter()
        .flat_map(|v| re.split(v).map(<[u8]>::to_vec).collect::<Vec<_>>())
        .collect()
}
