//! The hidden worker mode behind the process-per-task baseline: `pool-bench __task KIND ARGS`.
//!
//! The parent re-executes its own binary (`/proc/self/exe`) once per task (or per batch, for
//! tiny tasks), passes numbers as arguments and bulk bytes on stdin, and reads the raw
//! little-endian result from stdout. Nothing else is set up in the child: this is the cost of
//! a process per task, without a pool.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};

use crate::kernels;

/// First argument that switches the binary into worker mode.
pub const WORKER_ARG: &str = "__task";

fn num(args: &[String], i: usize) -> Result<u64> {
    args.get(i)
        .with_context(|| format!("worker: missing argument {i}"))?
        .parse()
        .with_context(|| format!("worker: argument {i} is not a number"))
}

fn words(values: impl IntoIterator<Item = u64>) -> Vec<u8> {
    values.into_iter().flat_map(u64::to_le_bytes).collect()
}

/// Runs one worker invocation: `args` are the arguments after [`WORKER_ARG`].
pub fn worker_main(args: &[String]) -> Result<()> {
    let kind = args.first().context("worker: missing task kind")?;
    let out = match kind.as_str() {
        "square" => words((num(args, 1)?..num(args, 2)?).map(kernels::square)),
        "spin" => words([kernels::spin(num(args, 1)?, num(args, 2)?)]),
        "spin-packed" => words([kernels::spin_packed(num(args, 1)?)]),
        "table" => {
            let table = kernels::build_table(num(args, 1)? as usize);
            words([kernels::table_lookup(&table, num(args, 2)?)])
        }
        "stateful" => {
            let (start, end, k) = (num(args, 1)?, num(args, 2)?, num(args, 3)?);
            let mut state = vec![0u64; kernels::STATE_BINS];
            (start..end).for_each(|i| kernels::stateful_step(&mut state, i, k));
            words(state)
        }
        "payload" => {
            let mut input = Vec::with_capacity(kernels::PAYLOAD_BYTES);
            std::io::stdin().lock().read_to_end(&mut input)?;
            kernels::payload_task(&input)
        }
        other => bail!("worker: unknown task kind {other:?}"),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(())
}

/// Decodes a worker's stdout as little-endian words.
pub fn decode_words(bytes: &[u8]) -> Result<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) {
        bail!("worker output of {} bytes is not whole words", bytes.len());
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}
