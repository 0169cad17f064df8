//! Property tests of every decoder the parent runs on bytes a worker process wrote: the codec
//! ([`codec::SeqVec`], [`codec::SeqInto`]) and a chunk's output ([`decode_output`],
//! [`decode_output_into`]). A worker may be buggy or its memory scribbled over, so arbitrary and
//! mutated bytes must give an error, never a panic, an out-of-bounds write or a leak (these tests
//! also run under Valgrind: `scripts/verify.sh valgrind`). Round trips pin the codec's format.

use proptest::prelude::*;
use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::codec::{self, Seq, SeqInto, SeqVec};
use crate::error::{Cause, Failure, Phase};
use crate::job::{ChunkOutput, Data, decode_output, decode_output_into};
use crate::slab::Slab;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A valid encoding, then damaged: some bytes replaced, cut short, and/or garbage appended.
#[derive(Debug, Clone)]
struct Mutation {
    replace: Vec<(usize, u8)>,
    cut: Option<usize>,
    append: Vec<u8>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        prop::option::of(any::<usize>()),
        prop::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(|(replace, cut, append)| Mutation {
            replace,
            cut,
            append,
        })
}

impl Mutation {
    fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        if !bytes.is_empty() {
            for &(i, b) in &self.replace {
                let n = bytes.len();
                bytes[i % n] = b;
            }
        }
        if let Some(c) = self.cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        bytes.extend_from_slice(&self.append);
        bytes
    }
}

fn encoded<T: Serialize + 'static>(v: &[T]) -> Vec<u8> {
    codec::encode(&Seq(v), 0).unwrap()
}

fn decode_vec<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Option<Vec<T>> {
    postcard::from_bytes::<SeqVec<T>>(bytes).ok().map(|s| s.0)
}

/// Decodes into a writer with `room` slots: what it wrote (when the whole decode succeeded).
/// Partial writes of a failed decode are dropped by the slab.
fn decode_into<T: DeserializeOwned + 'static>(bytes: &[u8], room: usize) -> Option<Vec<T>> {
    let slab = Slab::<T>::new(room);
    let mut w = slab.writer(0, room);
    let ok = SeqInto(&mut w)
        .deserialize(&mut postcard::Deserializer::from_bytes(bytes))
        .is_ok();
    let n = w.written();
    assert!(n <= room, "the decoder wrote {n} values into {room} slots");
    drop(w);
    let v = Slab::into_vec(slab, n).ok();
    assert!(v.is_some(), "a writer's values are one run from its start");
    v.filter(|_| ok)
}

fn failure(worker: usize, task: u64, message: String) -> Failure {
    Failure {
        phase: Phase::Task,
        cause: Cause::Panic,
        worker,
        task: Some(task),
        args: Some(format!("{task}")),
        message,
        backtrace: None,
        attempts: 1,
        earlier: Vec::new(),
    }
}

fn chunk_output<R: Serialize + 'static>(
    values: Vec<R>,
    failed: Vec<(u32, String)>,
    skipped: u32,
    in_place: u32,
) -> Vec<u8> {
    let failures = failed
        .into_iter()
        .map(|(i, m)| (i, failure(1, u64::from(i), m)))
        .collect();
    let out = ChunkOutput {
        values,
        failures,
        skipped,
        in_place,
    };
    postcard::to_stdvec(&out).unwrap()
}

/// Bytes lent as a back end's bulk arena lends them.
struct Held(Vec<u8>);

impl crate::job::LentBytes for Held {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What [`decode_outputs`] got: the plain decode, and the in-place one with its written values.
type Decoded<R> = (Option<ChunkOutput<R>>, Option<(ChunkOutput<R>, Vec<R>)>);

/// Both output decoders on `bytes`, the in-place one with `room` slots. Asserts what must hold
/// whatever the bytes: no panic (the caller's proptest catches one), no write past `room`.
fn decode_outputs<R: crate::Payload + Clone + PartialEq + std::fmt::Debug>(
    bytes: Vec<u8>,
    room: usize,
) -> Decoded<R> {
    let plain = decode_output::<u8, R>(Data::Bytes(bytes.clone())).ok();
    // Lent bytes (read in place in a bulk arena) decode exactly as owned ones.
    let lent = decode_output::<u8, R>(Data::Lent(Box::new(Held(bytes.clone())))).ok();
    assert_eq!(
        plain.as_ref().map(|o| &o.values),
        lent.as_ref().map(|o| &o.values)
    );
    let slab = Slab::<R>::new(room);
    let mut w = slab.writer(0, room);
    let into = decode_output_into::<u8, R>(Data::Bytes(bytes), &mut w).ok();
    let n = w.written();
    assert!(n <= room);
    drop(w);
    let written = Slab::into_vec(slab, n).ok().unwrap();
    (plain, into.map(|o| (o, written)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn numbers_round_trip(v in prop::collection::vec(any::<u64>(), 0..200),
                          w in prop::collection::vec(any::<i16>(), 0..200),
                          f in prop::collection::vec(any::<f64>(), 0..50)) {
        prop_assert_eq!(decode_vec::<u64>(&encoded(&v)), Some(v.clone()));
        prop_assert_eq!(decode_into::<u64>(&encoded(&v), v.len()), Some(v.clone()));
        prop_assert_eq!(decode_vec::<i16>(&encoded(&w)), Some(w.clone()));
        let bits = |f: &[f64]| f.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let back = decode_vec::<f64>(&encoded(&f)).unwrap();
        prop_assert_eq!(bits(&back), bits(&f));
    }

    #[test]
    fn vectors_and_structured_values_round_trip(
        vv in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..20),
        vf in prop::collection::vec(prop::collection::vec(any::<i32>(), 0..8), 0..10),
        s in prop::collection::vec((any::<u8>(), ".{0,8}"), 0..20),
        b in prop::collection::vec(any::<bool>(), 0..20),
    ) {
        prop_assert_eq!(decode_vec::<Vec<u8>>(&encoded(&vv)), Some(vv.clone()));
        prop_assert_eq!(decode_into::<Vec<u8>>(&encoded(&vv), vv.len()), Some(vv.clone()));
        prop_assert_eq!(decode_vec::<Vec<i32>>(&encoded(&vf)), Some(vf.clone()));
        // Anything but numbers keeps postcard's own format.
        prop_assert_eq!(encoded(&s), postcard::to_stdvec(&s).unwrap());
        prop_assert_eq!(decode_vec::<(u8, String)>(&encoded(&s)), Some(s.clone()));
        prop_assert_eq!(decode_into::<(u8, String)>(&encoded(&s), s.len()), Some(s.clone()));
        prop_assert_eq!(decode_vec::<bool>(&encoded(&b)), Some(b.clone()));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_codec(bytes in prop::collection::vec(any::<u8>(), 0..64),
                                            room in 0usize..8) {
        let _ = decode_vec::<u64>(&bytes);
        let _ = decode_vec::<u8>(&bytes);
        let _ = decode_vec::<Vec<u16>>(&bytes);
        let _ = decode_vec::<String>(&bytes);
        let _ = decode_vec::<(u8, String)>(&bytes);
        let _ = decode_into::<u32>(&bytes, room);
        let _ = decode_into::<Vec<f32>>(&bytes, room);
        let _ = decode_into::<String>(&bytes, room);
    }

    #[test]
    fn mutated_encodings_never_panic_the_codec(
        v in prop::collection::vec(any::<u32>(), 0..20),
        vv in prop::collection::vec(prop::collection::vec(any::<u16>(), 0..6), 0..6),
        s in prop::collection::vec(".{0,6}", 0..6),
        m in mutation(),
        room in 0usize..24,
    ) {
        let bytes = m.apply(encoded(&v));
        let _ = decode_vec::<u32>(&bytes);
        let _ = decode_into::<u32>(&bytes, room);
        let bytes = m.apply(encoded(&vv));
        let _ = decode_vec::<Vec<u16>>(&bytes);
        let _ = decode_into::<Vec<u16>>(&bytes, room);
        let bytes = m.apply(encoded(&s));
        let _ = decode_vec::<String>(&bytes);
        let _ = decode_into::<String>(&bytes, room);
    }

    #[test]
    fn chunk_outputs_round_trip(
        values in prop::collection::vec(any::<u64>(), 0..50),
        failed in prop::collection::vec((0u32..100, ".{0,10}"), 0..3),
        skipped in 0u32..5,
    ) {
        let n = values.len();
        let bytes = chunk_output(values.clone(), failed.clone(), skipped, 0);
        let (plain, into) = decode_outputs::<u64>(bytes, n);
        let plain = plain.unwrap();
        prop_assert_eq!(&plain.values, &values);
        prop_assert_eq!(plain.failures.len(), failed.len());
        prop_assert_eq!(plain.len(), (n + failed.len()) as u64 + u64::from(skipped));
        let (into, written) = into.unwrap();
        prop_assert_eq!(written, values);
        prop_assert_eq!(into.len(), plain.len());
    }

    #[test]
    fn arbitrary_and_mutated_chunk_outputs_are_errors_not_panics(
        values in prop::collection::vec(any::<u64>(), 0..20),
        strings in prop::collection::vec(".{0,6}", 0..6),
        failed in prop::collection::vec((any::<u32>(), ".{0,6}"), 0..2),
        skipped in any::<u32>(),
        in_place in prop_oneof![any::<u32>(), u32::MAX - 32..=u32::MAX],
        m in mutation(),
        garbage in prop::collection::vec(any::<u8>(), 0..48),
        room in 0usize..24,
    ) {
        let _ = decode_outputs::<u64>(m.apply(chunk_output(values, failed.clone(), skipped, in_place)), room);
        let _ = decode_outputs::<String>(m.apply(chunk_output(strings, failed, skipped, in_place)), room);
        let _ = decode_outputs::<u64>(garbage.clone(), room);
        let _ = decode_outputs::<Vec<u8>>(garbage.clone(), room);
        let _ = decode_outputs::<String>(garbage, room);
    }
}
