//! postcard encoding tuned for chunks of many small values.
//!
//! Why: a chunk of a million integers is the common case of a process pool fed with trivial
//! tasks, and postcard spends ~12 ns per `u64` on it (a varint loop per value, with a `memcpy`
//! call per value in `to_stdvec`): on 10M tasks under Fork that alone took longer than rayon
//! needs for the whole map. So:
//! - sequences of primitive numbers ([`Seq`], [`SeqVec`], [`ser_seq`] / [`de_seq`]) travel as
//!   one byte string of their in-memory bytes (the peer is the same binary on the same kind of
//!   machine; big-endian targets keep postcard's format);
//! - everything else is plain postcard, written through a flavor that copies short writes
//!   byte by byte into a buffer the caller sizes up front;
//! - large byte buffers are recycled process-wide ([`take_buffer`], [`recycle_buffer`]).

use std::any::TypeId;
use std::fmt;
use std::marker::PhantomData;

use postcard::ser_flavors::Flavor;

use crate::slab::SlabWriter;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A vector that takes short writes without a `memcpy` call.
struct Bytes(Vec<u8>);

/// Room left after a long write that outgrew the buffer, for the fields that follow it.
const TRAILER_SLACK: usize = 4096;

impl Flavor for Bytes {
    type Output = Vec<u8>;

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() <= 16 {
            self.0.reserve(data.len());
            for &b in data {
                self.0.push(b);
            }
        } else {
            if self.0.capacity() - self.0.len() < data.len() {
                // A big value (a byte buffer of MiBs) outgrew the guess: its fresh pages are
                // asked for as huge pages before the copy writes them, with room for the few
                // bytes that usually follow (else their push doubles the buffer: a copy of it
                // all into fresh pages).
                self.0.reserve(data.len().saturating_add(TRAILER_SLACK));
                crate::huge_pages::advise(self.0.as_mut_ptr(), self.0.capacity());
            }
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    #[inline(always)]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Large `Data::Bytes` buffers kept for reuse, process-wide.
///
/// Why: a fresh buffer of a MiB costs ~10x a copy into a warm one (a page fault per 4 KiB), and
/// malloc returns freed MiB buffers to the kernel whenever they end up at the top of the heap.
/// Encoders take their buffer here, and whoever is done with one (a back end that copied it out,
/// a decoder) hands it back: the same few buffers then carry every chunk. Lock-free slots, so a
/// `fork` in the middle of a take or a recycle at worst leaks a buffer in the child.
mod spare {
    use std::ptr;
    use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    /// Buffers below this are cheap to allocate (malloc keeps them warm).
    const MIN_CAP: usize = 64 << 10;
    /// Buffers above this are not worth keeping resident (see [`super::keep_big_buffers`]).
    pub(super) static MAX_CAP: AtomicUsize = AtomicUsize::new(16 << 20);
    /// At most this many bytes are kept.
    pub(super) static BUDGET: AtomicUsize = AtomicUsize::new(16 << 20);
    const SLOTS: usize = 8;

    static SLOT: [AtomicPtr<Vec<u8>>; SLOTS] = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];
    /// Capacity of the buffers in `SLOT` (and of those being put there).
    static KEPT: AtomicUsize = AtomicUsize::new(0);

    pub(super) fn take() -> Vec<u8> {
        for s in &SLOT {
            if s.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let p = s.swap(ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: non-null slot values come from `Box::into_raw` in `give`, and the swap
                // made this thread their only owner.
                let mut v = *unsafe { Box::from_raw(p) };
                KEPT.fetch_sub(v.capacity(), Ordering::Relaxed);
                v.clear();
                return v;
            }
        }
        Vec::new()
    }

    pub(super) fn give(v: Vec<u8>) {
        let cap = v.capacity();
        if !(MIN_CAP..=MAX_CAP.load(Ordering::Relaxed)).contains(&cap) {
            return;
        }
        if KEPT.fetch_add(cap, Ordering::Relaxed) + cap > BUDGET.load(Ordering::Relaxed) {
            KEPT.fetch_sub(cap, Ordering::Relaxed);
            return;
        }
        let p = Box::into_raw(Box::new(v));
        for s in &SLOT {
            if s.load(Ordering::Relaxed).is_null()
                && s.compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        KEPT.fetch_sub(cap, Ordering::Relaxed);
        // SAFETY: `p` came from `Box::into_raw` above and no slot took it.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// An empty byte buffer for an encoder, with the capacity of a recycled one when there is one
/// (see [`recycle_buffer`]).
pub fn take_buffer() -> Vec<u8> {
    spare::take()
}

/// Hands a byte buffer that is no longer needed (e.g. `Data::Bytes` a back end copied out) back
/// for reuse by [`take_buffer`]; small and huge ones, and any beyond 16 MiB kept, are dropped.
pub fn recycle_buffer(buf: Vec<u8>) {
    spare::give(buf);
}

/// Lets this process keep spare buffers of up to `bytes` each, and twice that in all, instead
/// of 16 MiB: for a worker process, which belongs to the pool, so that a task returning 64 MiB
/// encodes into the warm buffer of the last one rather than faulting 64 MiB of fresh pages in
/// (issue #17). Twice: a worker holds one buffer (its inputs' frame) while it encodes into
/// another. The user's own process keeps the default.
pub fn keep_big_buffers(bytes: usize) {
    use std::sync::atomic::Ordering;
    spare::MAX_CAP.store(bytes, Ordering::Relaxed);
    spare::BUDGET.store(bytes.saturating_mul(2), Ordering::Relaxed);
}

/// Encodes `value` with postcard into a buffer from [`take_buffer`] with room for at least
/// `capacity` bytes. An error says why, in the value's own words when it refused (see
/// [`crate::refusal`]).
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T, capacity: usize) -> Result<Vec<u8>, String> {
    let mut buf = take_buffer();
    if buf.capacity() < capacity {
        buf.reserve(capacity);
        crate::huge_pages::advise(buf.as_mut_ptr(), buf.capacity());
    }
    postcard::serialize_with_flavor(value, Bytes(buf))
        .map_err(|e| crate::refusal::message(value, e))
}

/// A guess of the encoded size of `n` values of `T`: varints and byte strings rarely take more
/// than their in-memory size.
pub(crate) fn size_guess<T>(n: usize) -> usize {
    n.saturating_mul(std::mem::size_of::<T>())
        .saturating_add(16)
}

/// Calls `$m!` with every primitive number type: no padding, every bit pattern a valid value.
macro_rules! for_plain_types {
    ($m:ident) => {
        $m!(
            u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
        )
    };
}

/// Whether `T` is a primitive number (see [`for_plain_types`]).
fn is_plain<T: 'static>() -> bool {
    macro_rules! check {
        ($($p:ty),*) => { [$(TypeId::of::<$p>()),*].contains(&TypeId::of::<T>()) };
    }
    cfg!(target_endian = "little") && for_plain_types!(check)
}

/// Whether `T` is a vector of primitive numbers (a byte buffer, a row of floats...).
fn is_plain_vec<T: 'static>() -> bool {
    macro_rules! check {
        ($($p:ty),*) => { [$(TypeId::of::<Vec<$p>>()),*].contains(&TypeId::of::<T>()) };
    }
    cfg!(target_endian = "little") && for_plain_types!(check)
}

/// The in-memory bytes of `x` when it is a vector of primitive numbers.
fn plain_vec_bytes<T: 'static>(x: &T) -> Option<&[u8]> {
    macro_rules! view {
        ($($p:ty),*) => {$(
            if TypeId::of::<T>() == TypeId::of::<Vec<$p>>() {
                // SAFETY: `T` is `Vec<$p>` (same `TypeId`), and `$p` has no padding.
                let v = unsafe { &*(x as *const T).cast::<Vec<$p>>() };
                // SAFETY: the vector's initialized elements, `size_of_val` bytes of numbers
                // without padding, borrowed for as long as `x`.
                return Some(unsafe {
                    std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), size_of_val(v.as_slice()))
                });
            }
        )*};
    }
    for_plain_types!(view);
    None
}

/// A vector of primitive numbers of type `T` made from their bytes; `None` when `T` is no
/// such vector, `Some(None)` when the bytes are not a whole number of values.
fn plain_vec_from_bytes<T: 'static>(bytes: &[u8]) -> Option<Option<T>> {
    macro_rules! make {
        ($($p:ty),*) => {$(
            if TypeId::of::<T>() == TypeId::of::<Vec<$p>>() {
                let Some(v) = plain_from_bytes::<$p>(bytes) else {
                    return Some(None);
                };
                // SAFETY: `T` is `Vec<$p>` (same `TypeId`): this moves `v` unchanged.
                return Some(Some(unsafe {
                    std::mem::transmute_copy::<Vec<$p>, T>(&std::mem::ManuallyDrop::new(v))
                }));
            }
        )*};
    }
    for_plain_types!(make);
    None
}

/// Values of a primitive number type `P` from their bytes, if they are a whole number of them.
fn plain_from_bytes<P>(bytes: &[u8]) -> Option<Vec<P>> {
    let size = size_of::<P>();
    if !bytes.len().is_multiple_of(size) {
        return None;
    }
    let n = bytes.len() / size;
    let mut v = Vec::<P>::with_capacity(n);
    crate::huge_pages::advise(v.as_mut_ptr().cast(), bytes.len());
    // SAFETY: only called for primitive numbers, for which any bytes are a valid value; the
    // vector has room for `n` values, exactly `bytes.len()` bytes, all written before `set_len`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.as_mut_ptr().cast::<u8>(), bytes.len());
        v.set_len(n);
    }
    Some(v)
}

/// A byte string, serialized in one piece.
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Decodes one vector of primitive numbers that was encoded as a [`RawBytes`].
struct PlainVecSeed<T>(PhantomData<T>);

impl<'de, T: 'static> de::DeserializeSeed<'de> for PlainVecSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<T: 'static> Visitor<'_> for PlainVecSeed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the bytes of a {}", std::any::type_name::<T>())
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<T, E> {
        match plain_vec_from_bytes::<T>(bytes) {
            Some(Some(v)) => Ok(v),
            _ => Err(E::invalid_length(bytes.len(), &self)),
        }
    }
}

/// A borrowed sequence that encodes primitive numbers as one byte string, and vectors of them
/// as one byte string each (serde's `Vec<u8>` is otherwise a sequence of single bytes).
pub(crate) struct Seq<'a, T>(pub(crate) &'a [T]);

impl<T: Serialize + 'static> Serialize for Seq<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if is_plain::<T>() {
            // SAFETY: `T` is a primitive number (checked by `TypeId`): its values have no
            // padding, so all `size_of_val` bytes of the slice are initialized.
            let bytes = unsafe {
                std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>(), size_of_val(self.0))
            };
            s.serialize_bytes(bytes)
        } else if is_plain_vec::<T>() {
            // `map`, not `filter_map`: postcard needs the exact length up front.
            s.collect_seq(
                self.0
                    .iter()
                    .map(|x| RawBytes(plain_vec_bytes(x).unwrap_or_default())),
            )
        } else {
            s.collect_seq(self.0)
        }
    }
}

/// The owned, decoding side of [`Seq`].
pub(crate) struct SeqVec<T>(pub(crate) Vec<T>);

impl<'de, T: Deserialize<'de> + 'static> Deserialize<'de> for SeqVec<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if is_plain::<T>() {
            d.deserialize_bytes(PlainVisitor(PhantomData)).map(SeqVec)
        } else if is_plain_vec::<T>() {
            d.deserialize_seq(PlainVecsVisitor(PhantomData)).map(SeqVec)
        } else {
            Vec::<T>::deserialize(d).map(SeqVec)
        }
    }
}

struct PlainVisitor<T>(PhantomData<T>);

impl<T: 'static> Visitor<'_> for PlainVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the bytes of a sequence of {}",
            std::any::type_name::<T>()
        )
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<T>, E> {
        plain_from_bytes(bytes).ok_or_else(|| E::invalid_length(bytes.len(), &self))
    }
}

/// Decodes a sequence of vectors of primitive numbers, each one byte string.
struct PlainVecsVisitor<T>(PhantomData<T>);

impl<'de, T: 'static> Visitor<'de> for PlainVecsVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of {}", std::any::type_name::<T>())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(v) = seq.next_element_seed(PlainVecSeed(PhantomData))? {
            out.push(v);
        }
        Ok(out)
    }
}

/// Decodes what [`Seq`] encoded straight into a writer of the call's output (ordered maps of
/// process workers): one copy from the received frame to the values' final place.
pub(crate) struct SeqInto<'a, T>(pub(crate) &'a mut SlabWriter<T>);

impl<'de, T: Deserialize<'de> + 'static> de::DeserializeSeed<'de> for SeqInto<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if is_plain::<T>() {
            d.deserialize_bytes(self)
        } else {
            d.deserialize_seq(self)
        }
    }
}

impl<'de, T: Deserialize<'de> + 'static> Visitor<'de> for SeqInto<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at most {} values of {}",
            self.0.room(),
            std::any::type_name::<T>()
        )
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<(), E> {
        let size = size_of::<T>();
        if !bytes.len().is_multiple_of(size) || bytes.len() / size > self.0.room() {
            return Err(E::invalid_length(bytes.len() / size, &self));
        }
        // SAFETY: only reached for primitive numbers (`is_plain`), for which any bytes are a
        // valid value; whole values that fit, checked above.
        unsafe { self.0.push_bytes(bytes) };
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let plain_vecs = is_plain_vec::<T>();
        loop {
            let v = if plain_vecs {
                seq.next_element_seed(PlainVecSeed(PhantomData))?
            } else {
                seq.next_element::<T>()?
            };
            let Some(v) = v else { break };
            if self.0.room() == 0 {
                return Err(de::Error::invalid_length(self.0.written() + 1, &self));
            }
            self.0.push(v);
        }
        Ok(())
    }
}

/// `serialize_with` for a `Vec` field: see [`Seq`].
pub(crate) fn ser_seq<T: Serialize + 'static, S: Serializer>(
    v: &[T],
    s: S,
) -> Result<S::Ok, S::Error> {
    Seq(v).serialize(s)
}

/// `deserialize_with` for a `Vec` field: see [`SeqVec`].
pub(crate) fn de_seq<'de, T: Deserialize<'de> + 'static, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    SeqVec::deserialize(d).map(|s| s.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(v: Vec<T>) -> Vec<T>
    where
        T: Serialize + serde::de::DeserializeOwned + 'static,
    {
        let bytes = encode(&Seq(&v), 0).unwrap();
        postcard::from_bytes::<SeqVec<T>>(&bytes).unwrap().0
    }

    #[test]
    fn numbers_travel_as_their_bytes_and_come_back() {
        let v: Vec<u64> = (0..1000).map(|i| i * i * 7919).collect();
        let bytes = encode(&Seq(&v), 0).unwrap();
        // A length varint, then 8 bytes per value.
        assert_eq!(bytes.len(), 2 + 8 * 1000);
        assert_eq!(round_trip(v.clone()), v);
        let f: Vec<f64> = vec![1.5, -0.0, f64::INFINITY, f64::MIN_POSITIVE];
        assert_eq!(round_trip(f.clone()), f);
        assert_eq!(round_trip(vec![-3i8, 4, 127]), vec![-3i8, 4, 127]);
    }

    #[test]
    fn vectors_of_numbers_travel_as_byte_strings() {
        let v: Vec<Vec<u8>> = vec![vec![1, 200, 3], vec![], (0..=255).collect()];
        let bytes = encode(&Seq(&v), 0).unwrap();
        // Count, then each vector as a length and its bytes (not a varint per byte).
        assert_eq!(bytes.len(), 1 + (1 + 3) + 1 + (2 + 256));
        assert_eq!(round_trip(v.clone()), v);
        let f: Vec<Vec<f64>> = vec![vec![1.5, -2.25], vec![f64::MAX]];
        assert_eq!(round_trip(f.clone()), f);
        // Into a writer, too; a byte string that is no whole number of values is an error.
        use serde::de::DeserializeSeed;
        let slab = crate::slab::Slab::<Vec<f64>>::new(2);
        let mut w = slab.writer(0, 2);
        let bytes = encode(&Seq(&f), 0).unwrap();
        SeqInto(&mut w)
            .deserialize(&mut postcard::Deserializer::from_bytes(&bytes))
            .unwrap();
        drop(w);
        assert_eq!(crate::slab::Slab::into_vec(slab, 2).ok().unwrap(), f);
        let bad = encode(&Seq(&[vec![1u8, 2, 3]]), 0).unwrap();
        assert!(postcard::from_bytes::<SeqVec<Vec<u16>>>(&bad).is_err());
    }

    #[test]
    fn other_types_keep_postcards_format() {
        let v = vec![(1u8, "a".to_string()), (2, "b".to_string())];
        assert_eq!(
            encode(&Seq(&v), 0).unwrap(),
            postcard::to_stdvec(&v).unwrap()
        );
        assert_eq!(round_trip(v.clone()), v);
        let b = vec![true, false];
        assert_eq!(round_trip(b.clone()), b);
    }

    #[test]
    fn decoding_into_a_writer_fills_it_and_refuses_overflow() {
        use serde::de::DeserializeSeed;
        fn into<T: Serialize + serde::de::DeserializeOwned + 'static>(
            v: &[T],
            room: usize,
        ) -> Option<Vec<T>> {
            let slab = crate::slab::Slab::<T>::new(room);
            let mut w = slab.writer(0, room);
            let bytes = encode(&Seq(v), 0).unwrap();
            let ok = SeqInto(&mut w)
                .deserialize(&mut postcard::Deserializer::from_bytes(&bytes))
                .is_ok();
            let n = w.written();
            drop(w);
            ok.then(|| crate::slab::Slab::into_vec(slab, n).ok().unwrap())
        }
        assert_eq!(into(&[1u64, 2, 3], 3), Some(vec![1, 2, 3]));
        assert_eq!(into(&[1u64, 2, 3], 2), None);
        let words = ["a".to_string(), "bc".to_string()];
        assert_eq!(into(&words, 5).unwrap(), words);
        assert_eq!(into(&words, 1), None);
    }

    #[test]
    fn a_truncated_byte_string_is_an_error() {
        let v: Vec<u32> = vec![1, 2, 3];
        let mut bytes = encode(&Seq(&v), 0).unwrap();
        bytes[0] -= 1; // 11 bytes announced: not a whole number of u32s
        bytes.pop();
        assert!(postcard::from_bytes::<SeqVec<u32>>(&bytes).is_err());
    }

    #[test]
    fn same_bytes_as_postcard() {
        let v: (Vec<u64>, String, Vec<u8>) = (
            (0..1000).map(|i| i * 7919 * i).collect(),
            "héllo".repeat(20),
            vec![7; 100],
        );
        assert_eq!(encode(&v, 0).unwrap(), postcard::to_stdvec(&v).unwrap());
        assert_eq!(
            encode(&v, 1 << 16).unwrap(),
            postcard::to_stdvec(&v).unwrap()
        );
    }

    #[test]
    fn spare_buffers_survive_concurrent_take_and_recycle() {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        let mut b = take_buffer();
                        assert!(b.is_empty());
                        b.resize(100 << 10, t as u8);
                        assert_eq!((b[0], b[b.len() - 1]), (t as u8, t as u8));
                        recycle_buffer(b);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
