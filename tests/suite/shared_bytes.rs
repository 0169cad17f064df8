//! `SharedBytes` cross to workers and back intact whichever way they travel: as a handle where
//! the worker shares the caller's heap (threads, Fork, Spawn: the very bytes come back, no
//! copy), as bytes where it does not (forkserver, MPI), and a worker's write never shows in the
//! caller's buffer (issue #17).

use pool::{MapOptions, SharedBytes, StartMethod};

use super::pool;

const MIB: usize = 1 << 20;

fn byte(len: usize, j: usize) -> u8 {
    (j.wrapping_mul(7) ^ len) as u8
}

fn buffer(len: usize) -> SharedBytes {
    (0..len).map(|j| byte(len, j)).collect()
}

fn intact(v: &[u8], len: usize, plus: u8) -> bool {
    v.len() == len
        && v.iter()
            .enumerate()
            .all(|(j, b)| *b == byte(len, j).wrapping_add(plus))
}

/// Whether workers of `m` read the caller's shared buffers in place.
fn in_place(m: StartMethod) -> bool {
    matches!(
        m,
        StartMethod::Threading | StartMethod::Fork | StartMethod::Spawn
    )
}

fn shared_bytes_cross_intact(m: StartMethod) {
    let mut p = pool(m, 2);
    let one = || MapOptions::default().chunk_size(1);
    let min = SharedBytes::MIN_SHARED;
    let sizes = [0, 1, min - 1, min, MIB, 4 * MIB + 1, 16 * MIB + 3];
    let inputs: Vec<SharedBytes> = sizes.iter().map(|&len| buffer(len)).collect();
    for (v, &len) in inputs.iter().zip(&sizes) {
        assert_eq!(v.is_shared_memory(), len >= min, "{len} bytes");
    }

    let echoed = p
        .map_with(|v: SharedBytes| v, inputs.clone(), one())
        .unwrap();
    for ((back, sent), &len) in echoed.iter().zip(&inputs).zip(&sizes) {
        assert!(intact(back, len, 0), "{len} bytes echoed under {m:?}");
        if len >= min {
            // In place: the same block came back. Elsewhere: a copy (the input is alive, so a
            // block of the same address cannot have been taken again).
            let same = back.as_ptr() == sent.as_ptr();
            assert_eq!(
                same,
                in_place(m),
                "{len} bytes under {m:?}: same block {same}"
            );
        }
    }

    let changed = p
        .map_with(
            |v: SharedBytes| v.iter().map(|b| b.wrapping_add(1)).collect::<SharedBytes>(),
            inputs.clone(),
            one(),
        )
        .unwrap();
    for (back, &len) in changed.iter().zip(&sizes) {
        assert!(intact(back, len, 1), "{len} bytes changed under {m:?}");
        assert_eq!(back.is_shared_memory(), len >= min);
    }

    // A worker that writes its argument writes a copy of its own: the caller's stays as it was.
    let written = p
        .map_with(
            |mut v: SharedBytes| {
                if let Some(b) = v.make_mut().first_mut() {
                    *b ^= 0xff;
                }
                v
            },
            inputs.clone(),
            one(),
        )
        .unwrap();
    for ((back, sent), &len) in written.iter().zip(&inputs).zip(&sizes) {
        assert!(
            intact(sent, len, 0),
            "the caller's {len} bytes changed under {m:?}"
        );
        if len > 0 {
            assert_eq!(back[0], sent[0] ^ 0xff);
            assert_eq!(back[1..], sent[1..]);
        }
    }
}

for_each_start_method!(shared_bytes_cross_intact);

/// Outside a pool's calls a shared buffer is its bytes, in any format: a file written with
/// serde holds the bytes, not a handle into memory that is gone when it is read back.
#[test]
fn outside_the_pool_a_shared_buffer_serializes_as_its_bytes() {
    let v = buffer(MIB);
    assert!(v.is_shared_memory());
    let json = serde_json::to_string(&v).unwrap();
    assert!(json.starts_with(r#"{"Bytes":["#), "{}", &json[..40]);
    let back: SharedBytes = serde_json::from_str(&json).unwrap();
    assert!(intact(&back, MIB, 0));
    assert_ne!(back.as_ptr(), v.as_ptr(), "a new buffer");
    let small = buffer(10);
    assert!(!small.is_shared_memory());
    let bytes: Vec<u8> = (0..10).map(|j| byte(10, j)).collect();
    assert_eq!(
        format!("{small:?}"),
        format!("SharedBytes(10 bytes, private: {bytes:?})")
    );
    let shown: Vec<u8> = (0..16).map(|j| byte(MIB, j)).collect();
    assert_eq!(
        format!("{v:?}"),
        format!("SharedBytes(1048576 bytes, shared: {shown:?}…)")
    );
}
