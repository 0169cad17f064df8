//! How a [`SharedBytes`] crosses to another process: a handle where the peer shares the heap
//! and the pool encodes for it, the bytes otherwise; and the references handles carry.
//!
//! # Protocol (one handle)
//! 1. **Encode** (the sender, inside [`encoding`] for a peer that shares the heap): add a
//!    reference to the block and write `(heap id, block, length)`; the reference is the
//!    message's, listed in the [`HeapRefs`] that [`encoding`] returns.
//! 2. **Send**: the back end credits the message's references to the receiving worker's
//!    ledger ([`HeapRefs::credit_to`]) before the message leaves; a message that never
//!    leaves drops its `HeapRefs`, which gives them back.
//! 3. **Decode** (the receiver): check the handle names this process's heap and a block in
//!    use, and adopt the message's reference. A worker decoding its command adopts references
//!    already in its ledger (step 2, [`decoding_inputs`]); a parent decoding results records
//!    them in its own ledger, if it has one (it is a worker of another pool); bytes decoded a
//!    second time ([`decoding_again`]) take references of their own.
//! 4. **Elsewhere** (no [`encoding`] context: forkserver workers, MPI, files): the bytes, and a
//!    decoder makes a new buffer of them.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, Deserializer, EnumAccess, VariantAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::heap::Block;
use super::{Repr, SharedBytes, credit_mine, heap};

/// How a handle decoded on this thread gets its reference (protocol step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoding {
    /// The message's reference becomes this process's (recorded in its ledger, if any).
    Adopt,
    /// The message's reference is already in this process's ledger (a worker's command).
    Credited,
    /// The bytes were decoded before: take a reference of its own.
    Again,
}

thread_local! {
    static DECODING: Cell<Decoding> = const { Cell::new(Decoding::Adopt) };
    /// The blocks handed out as handles by the encoding under way on this thread, when the
    /// pool encodes for a peer that shares the heap; `None` otherwise.
    static SHARING: RefCell<Option<Vec<Block>>> = const { RefCell::new(None) };
}

/// References to heap blocks that a message carries (protocol step 1): given back when
/// dropped, unless [`HeapRefs::credit_to`] handed them to the worker the message goes to.
#[derive(Default)]
// One word, not a `Vec`'s three: every command carries one, nearly always empty, and commands
// stay small (`events_and_commands_stay_small`).
#[allow(clippy::box_collection)]
pub struct HeapRefs(Option<Box<Vec<Block>>>);

impl HeapRefs {
    /// Whether the message carries none.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Records the references in ledger `ledger` (a worker's, see
    /// [`super::claim_ledger`]) as the message is sent to that worker (protocol step 2).
    pub fn credit_to(mut self, ledger: u32) {
        if let Some(h) = heap() {
            let words = h.ledger(ledger);
            for b in self.0.take().into_iter().flat_map(|v| *v) {
                super::ledger::credit(words, b.index);
            }
        }
    }
}

impl HeapRefs {
    /// Lets the references go with a message whose receiver adopts them as it decodes it,
    /// with no ledger to record them in (a parent that has none for that worker): if the
    /// worker dies before decoding it, they stay out of use until the family exits.
    pub fn hand_over(mut self) {
        self.0 = None;
    }

    /// Lets the references go with a worker's result to its parent (see `handover.rs`).
    pub(crate) fn hand_to_parent(mut self) {
        super::handover::hand_to_parent(self.0.take().into_iter().flat_map(|v| *v));
    }
}

impl Clone for HeapRefs {
    /// The same references again, for a copy of the message.
    fn clone(&self) -> Self {
        if let Some(h) = heap() {
            for &b in self.0.iter().flat_map(|v| v.iter()) {
                h.share(b);
            }
        }
        Self(self.0.clone())
    }
}

impl Drop for HeapRefs {
    fn drop(&mut self) {
        if self.0.is_some()
            && let Some(h) = heap()
        {
            for b in self.0.take().into_iter().flat_map(|v| *v) {
                h.release(b);
            }
        }
    }
}

impl fmt::Debug for HeapRefs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HeapRefs({} blocks)",
            self.0.as_ref().map_or(0, |v| v.len())
        )
    }
}

/// Runs `encode` with shared buffers encoded as handles when `peer_shares_heap` (protocol
/// step 1), and returns the references the handles carry.
pub(crate) fn encoding<T, E>(
    peer_shares_heap: bool,
    encode: impl FnOnce() -> Result<T, E>,
) -> Result<(T, HeapRefs), E> {
    if !peer_shares_heap {
        return encode().map(|v| (v, HeapRefs::default()));
    }
    let outer = SHARING.with(|s| s.borrow_mut().replace(Vec::new()));
    let result = encode();
    let shared = SHARING.with(|s| std::mem::replace(&mut *s.borrow_mut(), outer));
    let refs = HeapRefs(shared.filter(|v| !v.is_empty()).map(Box::new));
    result.map(|v| (v, refs))
}

fn decoding<R>(how: Decoding, decode: impl FnOnce() -> R) -> R {
    let outer = DECODING.with(|d| d.replace(how));
    let value = decode();
    DECODING.with(|d| d.set(outer));
    value
}

/// Runs `decode` over a worker's command: its handles' references are in the worker's ledger.
pub(crate) fn decoding_inputs<R>(decode: impl FnOnce() -> R) -> R {
    decoding(Decoding::Credited, decode)
}

/// Runs `decode` over bytes that were decoded once already (a failed task's argument, read
/// again from its chunk for a retry or an error report): the handles in them gave their
/// references to the first decode, so the values decoded now take references of their own.
pub(crate) fn decoding_again<R>(decode: impl FnOnce() -> R) -> R {
    decoding(Decoding::Again, decode)
}

/// The encoded form: a handle where the peer shares the heap, the bytes elsewhere.
const VARIANTS: &[&str] = &["Bytes", "Handle"];

impl Serialize for SharedBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Repr::Shared { block, len } = self.0
            && let Some(h) = heap()
            && SHARING.with(|sharing| {
                let mut sharing = sharing.borrow_mut();
                let made = sharing.as_mut().map(|v| v.push(block)).is_some();
                if made {
                    h.share(block);
                }
                made
            })
        {
            let handle = (h.id(), u64::from(block.index), len as u64);
            return s.serialize_newtype_variant("SharedBytes", 1, VARIANTS[1], &handle);
        }
        s.serialize_newtype_variant("SharedBytes", 0, VARIANTS[0], &Raw(self))
    }
}

/// Bytes serialized as one byte string.
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de> Deserialize<'de> for SharedBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_enum("SharedBytes", VARIANTS, EnumVisitor)
    }
}

struct EnumVisitor;

impl<'de> Visitor<'de> for EnumVisitor {
    type Value = SharedBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shared bytes: a byte string or a handle")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<SharedBytes, A::Error> {
        let (variant, value) = data.variant::<Variant>()?;
        match variant {
            Variant::Bytes => value.newtype_variant_seed(BytesSeed),
            Variant::Handle => {
                let (id, index, len) = value.newtype_variant::<(u64, u64, u64)>()?;
                adopt(id, index, len).map_err(de::Error::custom)
            }
        }
    }
}

/// Which form, by index (postcard) or name (self-describing formats).
enum Variant {
    Bytes,
    Handle,
}

impl<'de> Deserialize<'de> for Variant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(VariantVisitor)
    }
}

struct VariantVisitor;

impl Visitor<'_> for VariantVisitor {
    type Value = Variant;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`Bytes` or `Handle`")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Variant, E> {
        match v {
            0 => Ok(Variant::Bytes),
            1 => Ok(Variant::Handle),
            _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Variant, E> {
        match v {
            "Bytes" => Ok(Variant::Bytes),
            "Handle" => Ok(Variant::Handle),
            _ => Err(E::unknown_variant(v, VARIANTS)),
        }
    }
}

/// The value a decoded handle names, with the handle's reference.
fn adopt(id: u64, index: u64, len: u64) -> Result<SharedBytes, String> {
    let foreign = || {
        format!(
            "a SharedBytes handle (heap {id:#x}, block {index}) reached a process that does not \
             share that memory"
        )
    };
    let h = heap().filter(|h| h.id() == id).ok_or_else(foreign)?;
    let block = h
        .adopt(index, len)
        .map_err(|e| format!("a corrupt SharedBytes handle: {e}"))?;
    match DECODING.with(Cell::get) {
        Decoding::Adopt => credit_mine(h, block),
        Decoding::Credited => {}
        Decoding::Again => {
            h.share(block);
            credit_mine(h, block);
        }
    }
    Ok(SharedBytes(Repr::Shared {
        block,
        len: len as usize,
    }))
}

struct BytesSeed;

impl<'de> de::DeserializeSeed<'de> for BytesSeed {
    type Value = SharedBytes;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<SharedBytes, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for BytesSeed {
    type Value = SharedBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<SharedBytes, E> {
        Ok(SharedBytes::copy_from_slice(bytes))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<SharedBytes, E> {
        Ok(SharedBytes::from(bytes))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<SharedBytes, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(SharedBytes::from(v))
    }
}
