//! What a value's own `Serialize` said when it refused to be serialized.
//!
//! postcard drops the message of a custom error: whatever a `Serialize` impl passes to
//! `serde::ser::Error::custom`, postcard reports "Serde Serialization Error". So when postcard
//! fails that way, [`message`] walks the value again with `Probe`, a serializer that writes
//! nothing and keeps the message. The walk costs what a serialization costs, and only failures
//! pay it.

use std::fmt;

use serde::ser::{self, Serialize};

/// Why serializing `value` failed with postcard's `error`, in the words of the value's own
/// `Serialize` when it gave some.
pub fn message<T: Serialize + ?Sized>(value: &T, error: postcard::Error) -> String {
    if error == postcard::Error::SerdeSerCustom
        && let Err(Refused(words)) = value.serialize(Probe)
    {
        return words;
    }
    error.to_string()
}

/// Whether `value` refuses to be serialized (it fails even with nothing written).
pub(crate) fn refuses<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(Probe).is_err()
}

/// The error [`Probe`] fails with: the message given to `custom`.
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl ser::Error for Refused {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Refused(msg.to_string())
    }
}

/// A serializer that accepts everything, writes nothing and keeps a custom error's message.
struct Probe;

/// `serialize_*` methods of scalars: accept and discard.
macro_rules! accept {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method(self, _: $ty) -> Result<(), Refused> {
                Ok(())
            }
        )*
    };
}

impl ser::Serializer for Probe {
    type Ok = ();
    type Error = Refused;
    type SerializeSeq = Probe;
    type SerializeTuple = Probe;
    type SerializeTupleStruct = Probe;
    type SerializeTupleVariant = Probe;
    type SerializeMap = Probe;
    type SerializeStruct = Probe;
    type SerializeStructVariant = Probe;

    accept!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_none(self) -> Result<(), Refused> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Refused> {
        value.serialize(Probe)
    }

    fn serialize_unit(self) -> Result<(), Refused> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Refused> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Refused> {
        value.serialize(Probe)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), Refused> {
        value.serialize(Probe)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Probe, Refused> {
        Ok(Probe)
    }

    fn serialize_tuple(self, _: usize) -> Result<Probe, Refused> {
        Ok(Probe)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Probe, Refused> {
        Ok(Probe)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Probe, Refused> {
        Ok(Probe)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Probe, Refused> {
        Ok(Probe)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Probe, Refused> {
        Ok(Probe)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Probe, Refused> {
        Ok(Probe)
    }
}

/// The compound serializers: each element is probed in turn.
macro_rules! compound {
    ($($trait:ident :: $method:ident($($name:ty),*)),* $(,)?) => {
        $(
            impl ser::$trait for Probe {
                type Ok = ();
                type Error = Refused;

                fn $method<T: Serialize + ?Sized>(
                    &mut self,
                    $(_: $name,)*
                    value: &T,
                ) -> Result<(), Refused> {
                    value.serialize(Probe)
                }

                fn end(self) -> Result<(), Refused> {
                    Ok(())
                }
            }
        )*
    };
}

compound!(
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);

impl ser::SerializeMap for Probe {
    type Ok = ();
    type Error = Refused;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Refused> {
        key.serialize(Probe)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Refused> {
        value.serialize(Probe)
    }

    fn end(self) -> Result<(), Refused> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Refuses(&'static str);

    impl Serialize for Refuses {
        fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(ser::Error::custom(self.0))
        }
    }

    #[test]
    fn the_message_of_a_nested_refusal_is_kept() {
        let value = (1u8, vec![Some(("a", Refuses("no files here")))]);
        let e = postcard::to_stdvec(&value).unwrap_err();
        assert_eq!(e.to_string(), "Serde Serialization Error");
        assert_eq!(message(&value, e), "no files here");
        assert!(refuses(&value));
        assert!(!refuses(&(1u8, "fine")));
    }

    #[test]
    fn other_errors_keep_postcard_s_words() {
        let e = postcard::Error::SerializeBufferFull;
        assert_eq!(message(&1u8, e.clone()), e.to_string());
    }
}
