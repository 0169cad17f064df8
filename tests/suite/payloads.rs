//! Big payloads arrive intact whichever way they travel: through the ring (small), through
//! the bulk arena beside it (from 256 KiB), or streamed through the ring (beyond the arena),
//! in both directions, as bytes and as numbers (issue #17).

use pool::{MapOptions, StartMethod};

use super::pool;

const MIB: usize = 1 << 20;

/// Byte `j` of payload `seed`.
fn byte(seed: usize, j: usize) -> u8 {
    (j.wrapping_mul(31) ^ seed.wrapping_mul(131)) as u8
}

fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| byte(seed, j)).collect()
}

fn intact(v: &[u8], seed: usize, len: usize) -> bool {
    v.len() == len && v.iter().enumerate().all(|(j, b)| *b == byte(seed, j))
}

fn big_payloads_arrive_intact(m: StartMethod) {
    let mut p = pool(m, 2);
    let one = || MapOptions::default().chunk_size(1);
    // Around the arena's minimum, the links' ring (4 MiB), 1 MiB, and 64 MiB.
    let sizes = [
        0,
        1,
        (256 << 10) - 1,
        256 << 10,
        (256 << 10) + 1,
        MIB,
        4 * MIB - 1,
        4 * MIB,
        4 * MIB + 1,
        64 * MIB,
    ];
    let inputs: Vec<(usize, usize)> = sizes.iter().copied().enumerate().collect();
    let out = p
        .map_with(
            |(seed, len): (usize, usize)| payload(seed, len),
            inputs.clone(),
            one(),
        )
        .unwrap();
    for ((seed, len), v) in inputs.iter().zip(&out) {
        assert!(intact(v, *seed, *len), "result of {len} bytes garbled");
    }
    // Round trips: each payload goes to a worker and comes back changed.
    let back = p
        .map_with(
            |v: Vec<u8>| v.iter().map(|b| b.wrapping_add(1)).collect::<Vec<u8>>(),
            out.clone(),
            one(),
        )
        .unwrap();
    for (a, b) in out.iter().zip(&back) {
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(b).all(|(x, y)| x.wrapping_add(1) == *y));
    }
    // Many big results in flight at once, some sharing a worker's arena.
    let many = p
        .map_with(|i: usize| payload(i, MIB + i), 0..12usize, one())
        .unwrap();
    assert!(many.iter().enumerate().all(|(i, v)| intact(v, i, MIB + i)));
    // Numbers: a result of 2 MiB of u64 values.
    let words = p
        .map_with(
            |k: u64| (0..(256 << 10) as u64).map(|i| i * k).collect::<Vec<u64>>(),
            1..4u64,
            one(),
        )
        .unwrap();
    for (k, w) in (1..4u64).zip(&words) {
        assert!(w.iter().enumerate().all(|(i, x)| *x == i as u64 * k));
    }
}

for_each_start_method!(big_payloads_arrive_intact);
