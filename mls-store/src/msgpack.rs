//! A MessagePack encoder for serde values, writing what `rmp-serde`'s
//! default configuration writes (structs as arrays, enum variants by name),
//! so `rmp-serde` decodes it.
//!
//! Why not `rmp-serde`'s own encoder: openmls' records are mostly byte
//! vectors serialized as sequences of `u8` (keys, credentials, signatures),
//! and `rmp-serde` spends most of its time on each such byte (a generic
//! integer write through `io::Write` with error plumbing). Here a byte is a
//! push onto a `Vec`. Decoding stays with `rmp-serde`: openmls reads its
//! records back far less often than it writes them.

use std::fmt;

use serde::ser::{self, Serialize};

/// Why a value could not be encoded. Never carries the value.
#[derive(Debug)]
pub(crate) struct EncodeError;

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("value not representable in MessagePack")
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        // The message may quote the value: dropped.
        Self
    }
}

/// Appends `value`, MessagePack-encoded, to `out`.
pub(crate) fn encode_into<V: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &V,
) -> Result<(), EncodeError> {
    value.serialize(&mut Encoder { out })
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    #[inline]
    fn uint(&mut self, v: u64) {
        let out = &mut *self.out;
        if v < 0x80 {
            out.push(v as u8);
        } else if v <= u64::from(u8::MAX) {
            out.extend_from_slice(&[0xcc, v as u8]);
        } else if v <= u64::from(u16::MAX) {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= u64::from(u32::MAX) {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn sint(&mut self, v: i64) {
        let out = &mut *self.out;
        if v >= 0 {
            self.uint(v as u64);
        } else if v >= -32 {
            out.push(v as u8);
        } else if v >= i64::from(i8::MIN) {
            out.extend_from_slice(&[0xd0, v as u8]);
        } else if v >= i64::from(i16::MIN) {
            out.push(0xd1);
            out.extend_from_slice(&(v as i16).to_be_bytes());
        } else if v >= i64::from(i32::MIN) {
            out.push(0xd2);
            out.extend_from_slice(&(v as i32).to_be_bytes());
        } else {
            out.push(0xd3);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// A length-prefixed header: `fix` (with the length in its low bits,
    /// up to `fix_max`), then 8-bit (if `m8` is given), 16- and 32-bit.
    fn header(
        &mut self,
        len: usize,
        fix: Option<(u8, usize)>,
        m8: Option<u8>,
        m16: u8,
        m32: u8,
    ) -> Result<(), EncodeError> {
        let out = &mut *self.out;
        match (fix, m8) {
            (Some((marker, max)), _) if len <= max => out.push(marker | len as u8),
            (_, Some(marker)) if len <= usize::from(u8::MAX) => {
                out.extend_from_slice(&[marker, len as u8])
            }
            _ if len <= usize::from(u16::MAX) => {
                out.push(m16);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                let len = u32::try_from(len).map_err(|_| EncodeError)?;
                out.push(m32);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        Ok(())
    }

    fn array_len(&mut self, len: usize) -> Result<(), EncodeError> {
        self.header(len, Some((0x90, 15)), None, 0xdc, 0xdd)
    }

    fn map_len(&mut self, len: usize) -> Result<(), EncodeError> {
        self.header(len, Some((0x80, 15)), None, 0xde, 0xdf)
    }

    fn str(&mut self, v: &str) -> Result<(), EncodeError> {
        self.header(v.len(), Some((0xa0, 31)), Some(0xd9), 0xda, 0xdb)?;
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn bin(&mut self, v: &[u8]) -> Result<(), EncodeError> {
        self.header(v.len(), None, Some(0xc4), 0xc5, 0xc6)?;
        self.out.extend_from_slice(v);
        Ok(())
    }

    /// A sequence or map: with its length known, the header now; else
    /// written after the items, moved in front of them.
    fn compound(&mut self, len: Option<usize>, map: bool) -> Result<Compound<'_>, EncodeError> {
        let start = self.out.len();
        match (len, map) {
            (Some(len), false) => self.array_len(len)?,
            (Some(len), true) => self.map_len(len)?,
            (None, _) => {}
        }
        let pending = len.is_none().then_some(Pending {
            start,
            items: 0,
            map,
        });
        Ok(Compound {
            enc: Encoder {
                out: &mut *self.out,
            },
            pending,
        })
    }

    /// `{variant: …}`, rmp-serde's form of a variant with data.
    fn variant(&mut self, variant: &str) -> Result<(), EncodeError> {
        self.out.push(0x81);
        self.str(variant)
    }
}

/// The header still to write of a compound of unknown length.
struct Pending {
    start: usize,
    items: usize,
    map: bool,
}

struct Compound<'a> {
    enc: Encoder<'a>,
    pending: Option<Pending>,
}

impl Compound<'_> {
    #[inline]
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        if let Some(p) = &mut self.pending {
            p.items += 1;
        }
        value.serialize(&mut Encoder {
            out: &mut *self.enc.out,
        })
    }

    fn finish(self) -> Result<(), EncodeError> {
        let Some(Pending { start, items, map }) = self.pending else {
            return Ok(());
        };
        let mut header = Vec::with_capacity(5);
        let mut enc = Encoder { out: &mut header };
        if map {
            enc.map_len(items / 2)?;
        } else {
            enc.array_len(items)?;
        }
        self.enc.out.splice(start..start, header);
        Ok(())
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Encoder<'b> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.out.push(if v { 0xc3 } else { 0xc2 });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.sint(v.into());
        Ok(())
    }

    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.sint(v.into());
        Ok(())
    }

    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.sint(v.into());
        Ok(())
    }

    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        self.sint(v);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
        self.bin(&v.to_be_bytes())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        if v < 0x80 {
            self.out.push(v);
        } else {
            self.out.extend_from_slice(&[0xcc, v]);
        }
        Ok(())
    }

    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.uint(v.into());
        Ok(())
    }

    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.uint(v.into());
        Ok(())
    }

    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        self.uint(v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
        self.bin(&v.to_be_bytes())
    }

    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        self.out.push(0xca);
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        self.out.push(0xcb);
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.str(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        self.bin(v)
    }

    fn serialize_none(self) -> Result<(), EncodeError> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), EncodeError> {
        self.out.push(0xc0);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        self.array_len(0)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.variant(variant)?;
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, EncodeError> {
        self.compound(len, false)
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, EncodeError> {
        self.compound(Some(len), false)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        self.compound(Some(len), false)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        self.variant(variant)?;
        self.compound(Some(len), false)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, EncodeError> {
        self.compound(len, true)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        self.compound(Some(len), false)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, EncodeError> {
        self.variant(variant)?;
        self.compound(Some(len), false)
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.item(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.item(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.item(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.item(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        self.item(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.item(value)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.item(value)
    }

    fn skip_field(&mut self, _key: &'static str) -> Result<(), EncodeError> {
        // Fields are positional: a skipped one would shift the rest.
        Err(EncodeError)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.item(value)
    }

    fn skip_field(&mut self, _key: &'static str) -> Result<(), EncodeError> {
        Err(EncodeError)
    }

    fn end(self) -> Result<(), EncodeError> {
        self.finish()
    }
}
