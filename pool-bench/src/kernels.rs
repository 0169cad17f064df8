//! The arithmetic every contender runs, defined bit for bit.
//!
//! `bench/peers.py` implements the same functions in Python; the harness checks that both
//! produce the same checksums, so any change here must be mirrored there. All arithmetic is
//! on `u64` with wrap-around (Python: `& MASK`), shifts drop the bits that leave the word.

/// Bins in the stateful workload's per-worker histogram.
pub const STATE_BINS: usize = 1024;
/// Lookups one expensive-init task makes into the table.
pub const LOOKUPS_PER_TASK: u64 = 1024;
/// Bytes in one payload input (and output): 1 MiB.
pub const PAYLOAD_BYTES: usize = 1 << 20;

/// SplitMix64's output function: a cheap, stateless, well-mixed hash of `x`.
#[inline]
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `k` rounds of xorshift64 from a seed derived from `x`: CPU work of a tunable length that no
/// compiler can fold away (each round depends on the previous one).
#[inline]
pub fn spin(x: u64, k: u64) -> u64 {
    let mut s = mix(x) | 1;
    for _ in 0..k {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
    }
    s
}

/// The trivial task.
#[inline]
pub fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// Skewed tasks carry their own length: `x = (index << 32) | iterations`.
#[inline]
pub fn spin_packed(x: u64) -> u64 {
    spin(x, x & 0xFFFF_FFFF)
}

/// Packs a skewed task's index and iteration count into one input.
pub fn pack_skewed(index: u64, iterations: u64) -> u64 {
    assert!(
        iterations <= 0xFFFF_FFFF,
        "skewed task too long: {iterations} iterations"
    );
    (index << 32) | iterations
}

/// Iterations of [`spin`] for a task of `micros` µs on a machine doing `k_per_ms` per ms.
pub fn iterations_for(micros: u64, k_per_ms: u64) -> u64 {
    micros * k_per_ms / 1000
}

/// The expensive-init table: `entries` words, entry `j` is `mix(j)`.
pub fn build_table(entries: usize) -> Vec<u64> {
    (0..entries as u64).map(mix).collect()
}

/// One expensive-init task: [`LOOKUPS_PER_TASK`] pseudo-random reads from the table, summed.
pub fn table_lookup(table: &[u64], i: u64) -> u64 {
    let n = table.len() as u64;
    let base = i * LOOKUPS_PER_TASK;
    (0..LOOKUPS_PER_TASK).fold(0u64, |acc, r| {
        acc.wrapping_add(table[(mix(base + r) % n) as usize])
    })
}

/// One stateful task: `spin(i, k)` added into the bin the result selects.
#[inline]
pub fn stateful_step(state: &mut [u64], i: u64, k: u64) {
    let v = spin(i, k);
    let bin = (v % STATE_BINS as u64) as usize;
    state[bin] = state[bin].wrapping_add(v);
}

/// Adds one worker's histogram into another (how per-worker states are merged at exit).
pub fn merge_state(into: &mut [u64], from: &[u64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a = a.wrapping_add(*b);
    }
}

/// Checksum of a merged histogram: position-weighted, so a value in the wrong bin shows.
pub fn state_checksum(state: &[u64]) -> u64 {
    state.iter().enumerate().fold(0u64, |acc, (b, v)| {
        acc.wrapping_add((b as u64 + 1).wrapping_mul(*v))
    })
}

/// Checksum of a list of `u64` results: position-weighted sum, so order matters too.
pub fn checksum_u64(values: &[u64]) -> u64 {
    values.iter().enumerate().fold(0u64, |acc, (i, v)| {
        acc.wrapping_add((i as u64 + 1).wrapping_mul(*v))
    })
}

/// Word `i` of `steady-words`: a short heap string, as read from a file of records.
pub fn word(i: u64) -> String {
    format!("word number {i}")
}

/// The `steady-words` task: the sum of a word's bytes (it takes the word, as a task that
/// consumes its input does).
pub fn word_sum(w: String) -> u64 {
    w.bytes().map(u64::from).sum()
}

/// Payload input `i`: byte `j` is `(j + i) mod 256`.
pub fn payload_input(i: u64) -> Vec<u8> {
    (0..PAYLOAD_BYTES)
        .map(|j| (j as u64).wrapping_add(i) as u8)
        .collect()
}

/// The payload task: a byte-wise affine map (Python: `bytes.translate`).
pub fn payload_task(input: &[u8]) -> Vec<u8> {
    input
        .iter()
        .map(|b| b.wrapping_mul(167).wrapping_add(13))
        .collect()
}

/// The payload task into a `SharedBytes`: the same bytes, written where a Fork caller reads
/// them.
#[cfg(feature = "pool-contenders")]
pub fn shared_payload_task(input: &[u8]) -> pool::SharedBytes {
    pool::SharedBytes::build(input.len(), |out| {
        for (o, i) in out.iter_mut().zip(input) {
            *o = i.wrapping_mul(167).wrapping_add(13);
        }
    })
}

/// [`big_result`] into a `SharedBytes`.
#[cfg(feature = "pool-contenders")]
pub fn shared_big_result(i: u64, bytes: u64) -> pool::SharedBytes {
    pool::SharedBytes::build(bytes as usize, |out| {
        out.fill((i as u8).wrapping_mul(31).wrapping_add(7));
    })
}

/// Checksum of the payload outputs: position-weighted sum of their CRC-32s.
pub fn payload_checksum<B: AsRef<[u8]>>(outputs: &[B]) -> u64 {
    outputs.iter().enumerate().fold(0u64, |acc, (i, o)| {
        acc.wrapping_add((i as u64 + 1).wrapping_mul(u64::from(crc32(o.as_ref()))))
    })
}

/// A `big-results` task: `bytes` bytes, each `i * 31 + 7` (a fill, as fast as memory allows).
pub fn big_result(i: u64, bytes: u64) -> Vec<u8> {
    vec![(i as u8).wrapping_mul(31).wrapping_add(7); bytes as usize]
}

/// Checksum of big byte buffers, fast enough for 512 MiB: position-weighted sums of their
/// little-endian words (and the trailing bytes), so a wrong, short or misplaced buffer shows.
pub fn words_checksum<B: AsRef<[u8]>>(outputs: &[B]) -> u64 {
    outputs.iter().enumerate().fold(0u64, |acc, (i, o)| {
        let o = o.as_ref();
        let words = o.chunks_exact(8);
        let tail = words.remainder().iter().map(|&b| u64::from(b));
        let sum = words
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .chain(tail)
            .fold(o.len() as u64, u64::wrapping_add);
        acc.wrapping_add((i as u64 + 1).wrapping_mul(mix(sum)))
    })
}

/// CRC-32 (IEEE, as zlib's `crc32`), bytewise with a table built on first use.
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, slot) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn spin_is_deterministic_and_nonzero() {
        assert_eq!(spin(3, 100), spin(3, 100));
        assert_ne!(spin(3, 100), 0);
    }
}
