//! How a chunk's inputs travel to a worker in another process: as items, or, for a range of
//! integers, as two numbers.
//!
//! Why: a thread worker makes the inputs of a range chunk itself (see [`crate::indexed`]); a
//! process worker used to get them as bytes, 8 per `u64`, written by the caller, copied through
//! the ring and read back, about 80 MB for `map(f, 0..10_000_000u64)`. A range is a formula, the
//! same in every process: its chunk travels as `(first, count)` whatever the start method (Fork,
//! Spawn, Forkserver, MPI), and the worker reads it with the reader threads use.
//!
//! The format (postcard; the peer is the same binary):
//! 1. a variant tag: `0` items, `1` range;
//! 2. items: the sequence as [`codec::Seq`] writes it; range: `first` (`i128`, so that every
//!    integer type's values fit) then `count` (`u64`).
//!
//! A decoder runs in the worker on bytes the parent wrote, but still checks them: a range that
//! does not fit the input type, or a range sent for inputs that are not integers, is an error.

use serde::{Deserialize, Serialize};

use crate::chunking::ChunkInputs;
use crate::codec::{self, Seq, SeqVec};
use crate::indexed;
use crate::job::Input;

/// The encoding side.
#[derive(Serialize)]
#[serde(bound(serialize = "T: Serialize + 'static"))]
enum Outgoing<'a, T> {
    Items(Seq<'a, T>),
    Range { first: i128, count: u64 },
}

/// The decoding side.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: serde::de::DeserializeOwned + 'static"))]
enum Incoming<T> {
    Items(SeqVec<T>),
    Range { first: i128, count: u64 },
}

/// The range message, typed for `T`'s chunks.
fn range<T>(first: i128, count: u64) -> Outgoing<'static, T> {
    Outgoing::Range { first, count }
}

/// Encodes a chunk's inputs for a worker in another process.
pub(crate) fn encode<T: Input>(mut inputs: ChunkInputs<T>) -> Result<Vec<u8>, String> {
    encode_kept(&mut inputs)
}

/// Encodes a chunk's inputs and leaves them in `inputs`, for the caller to keep (for a retry or
/// an error report) without a copy: ranges and vectors are encoded where they lie; inputs read
/// from an iterator are collected into a vector first.
pub(crate) fn encode_kept<T: Input>(inputs: &mut ChunkInputs<T>) -> Result<Vec<u8>, String> {
    if let ChunkInputs::Reader(r) = &*inputs
        && r.as_range().is_none()
        && r.in_memory().is_none()
    {
        let read = std::mem::replace(inputs, ChunkInputs::Vec(Vec::new()));
        *inputs = ChunkInputs::Vec(read.into_vec());
    }
    let items = match &*inputs {
        ChunkInputs::Reader(r) => match r.as_range() {
            Some((first, count)) => return codec::encode(&range::<T>(first, count as u64), 32),
            None => r.in_memory().unwrap_or_default(),
        },
        ChunkInputs::Vec(v) => v.as_slice(),
    };
    let guess = codec::size_guess::<T>(items.len()).saturating_add(1);
    codec::encode(&Outgoing::Items(Seq(items)), guess)
}

/// Decodes what [`encode`] wrote: the inputs in hand, or the reader of a range.
pub(crate) fn decode<T: Input>(bytes: &[u8]) -> Result<ChunkInputs<T>, String> {
    match postcard::from_bytes::<Incoming<T>>(bytes).map_err(|e| e.to_string())? {
        Incoming::Items(v) => Ok(ChunkInputs::Vec(v.0)),
        Incoming::Range { first, count } => usize::try_from(count)
            .ok()
            .and_then(|count| indexed::range_reader::<T>(first, count))
            .map(ChunkInputs::Reader)
            .ok_or_else(|| {
                format!(
                    "a range of {count} from {first} is not a range of {}",
                    std::any::type_name::<T>()
                )
            }),
    }
}

/// The input at `offset` of the chunk [`encode`] wrote, decoded again (to name a failed task).
pub(crate) fn nth<T: Input>(bytes: &[u8], offset: usize) -> Option<T> {
    match decode::<T>(bytes).ok()? {
        ChunkInputs::Vec(v) => v.into_iter().nth(offset),
        ChunkInputs::Reader(mut r) => {
            // Skipped a batch at a time: a failed task's argument, not a hot path.
            let (mut left, mut batch) = (offset, Vec::new());
            while left > 0 && r.remaining() > 0 {
                batch.clear();
                r.read(left.min(4096), &mut batch);
                left -= batch.len();
            }
            batch.clear();
            r.read(1, &mut batch);
            batch.pop()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all<T>(inputs: ChunkInputs<T>) -> Vec<T>
    where
        T: Clone,
    {
        inputs.into_vec()
    }

    /// A chunk of `range` split at `start`, `len`, sent and received.
    fn travel<I>(range: I, start: usize, len: usize) -> (Vec<u8>, Vec<I::Item>)
    where
        I: Iterator + std::fmt::Debug,
        I::Item: Input,
    {
        let mut s = indexed::split(range).expect("a range");
        let bytes = encode(ChunkInputs::Reader(s.split(start, len))).expect("encoded");
        let got = all(decode::<I::Item>(&bytes).expect("decoded"));
        (bytes, got)
    }

    #[test]
    fn ranges_of_every_integer_type_travel_as_two_numbers() {
        macro_rules! check {
            ($($x:ty),*) => {$(
                let (bytes, got) = travel(<$x>::MIN..=<$x>::MAX, 0, 3);
                assert!(bytes.len() < 32, "{} bytes", bytes.len());
                assert_eq!(got, vec![<$x>::MIN, <$x>::MIN + 1, <$x>::MIN + 2]);
                let (_, got) = travel(<$x>::MIN..=<$x>::MAX, 0, 0);
                assert!(got.is_empty());
                // The type's last values: no overflow past the end.
                let (_, got) = travel(<$x>::MAX - 1..=<$x>::MAX, 1, 1);
                assert_eq!(got, vec![<$x>::MAX]);
            )*};
        }
        check!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
    }

    #[test]
    fn a_big_range_is_a_few_bytes_whatever_its_length() {
        let (bytes, got) = travel(5..10_000_005u64, 1_000, 1_000_000);
        assert!(bytes.len() < 32, "{} bytes", bytes.len());
        assert!(got.iter().copied().eq(1_005..1_001_005));
    }

    #[test]
    fn items_travel_as_items() {
        let bytes = encode(ChunkInputs::Vec(vec!["a".to_string(), "b".into()])).unwrap();
        assert_eq!(all(decode::<String>(&bytes).unwrap()), vec!["a", "b"]);
        assert_eq!(nth::<String>(&bytes, 1).as_deref(), Some("b"));
        let mut v = indexed::split(vec![7u32, 8, 9].into_iter()).unwrap();
        let bytes = encode(ChunkInputs::Reader(v.split(0, 3))).unwrap();
        assert!(bytes.len() > 12, "a vector's elements travel");
        assert_eq!(all(decode::<u32>(&bytes).unwrap()), vec![7, 8, 9]);
    }

    #[test]
    fn a_vector_chunk_is_encoded_where_it_lies() {
        let names: Vec<String> = (0..5).map(|i| format!("w{i}")).collect();
        let mut s = indexed::split(names.into_iter()).unwrap();
        let first = s.split(0, 2);
        let bytes = encode(ChunkInputs::Reader(s.split(2, 3))).unwrap();
        assert_eq!(
            all(decode::<String>(&bytes).unwrap()),
            vec!["w2", "w3", "w4"]
        );
        assert_eq!(all(ChunkInputs::Reader(first)), vec!["w0", "w1"]);
    }

    #[test]
    fn a_failed_tasks_argument_is_found_in_a_range() {
        let mut s = indexed::split(0..100_000i64).unwrap();
        let bytes = encode(ChunkInputs::Reader(s.split(10, 90_000))).unwrap();
        assert_eq!(nth::<i64>(&bytes, 0), Some(10));
        assert_eq!(nth::<i64>(&bytes, 50_000), Some(50_010));
        assert_eq!(nth::<i64>(&bytes, 89_999), Some(90_009));
        assert_eq!(nth::<i64>(&bytes, 90_000), None);
    }

    #[test]
    fn a_range_that_does_not_fit_the_type_is_refused() {
        let out_of_u8 = codec::encode(&range::<u8>(250, 7), 0).unwrap();
        let e = decode::<u8>(&out_of_u8).err().expect("refused");
        assert!(e.contains("not a range of u8"), "{e}");
        let negative = codec::encode(&range::<u64>(-1, 1), 0).unwrap();
        assert!(decode::<u64>(&negative).is_err());
        let not_ints = codec::encode(&range::<f64>(0, 1), 0).unwrap();
        assert!(decode::<f64>(&not_ints).is_err());
        let huge = codec::encode(&range::<i128>(i128::MAX, 2), 0).unwrap();
        assert!(decode::<i128>(&huge).is_err());
        // At the end of the type: fits exactly.
        let last = codec::encode(&range::<u8>(250, 6), 0).unwrap();
        assert_eq!(
            all(decode::<u8>(&last).unwrap()),
            vec![250, 251, 252, 253, 254, 255]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256, failure_persistence: None, ..Default::default()
        })]

        /// Any bytes, or a range message with any numbers, decode to inputs or an error:
        /// never a panic, and a range reader only for a range its type holds.
        #[test]
        fn any_bytes_are_inputs_or_an_error(
            garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            first in proptest::prelude::any::<i128>(),
            count in proptest::prelude::any::<u64>(),
        ) {
            let _ = decode::<u64>(&garbage).map(|i| i.len());
            let _ = decode::<String>(&garbage).map(|i| i.len());
            let _ = decode::<i8>(&garbage).map(|i| i.len());
            let bytes = codec::encode(&range::<i16>(first, count), 0).unwrap();
            let fits = count == 0
                || (first >= i16::MIN as i128
                    && first.checked_add(count as i128 - 1).is_some_and(|l| l <= i16::MAX as i128));
            match decode::<i16>(&bytes) {
                Ok(inputs) => {
                    proptest::prop_assert!(fits);
                    proptest::prop_assert_eq!(inputs.len() as u64, count);
                    let v = inputs.into_vec();
                    proptest::prop_assert!(v.first().is_none_or(|&x| x as i128 == first));
                }
                Err(_) => proptest::prop_assert!(!fits),
            }
        }
    }
}
