//! The binary encoding of keys and values: MessagePack, structs as arrays,
//! as `rmp-serde` writes and reads it by default.
//!
//! It must be self-describing: some openmls types decode through
//! `deserialize_any` (an untagged enum in the group configuration,
//! tls_codec's byte vectors), which formats such as postcard or bincode
//! cannot serve. Values are written by our own encoder ([`crate::msgpack`],
//! several times faster on byte vectors) and read by `rmp-serde`. Tests
//! check every record they write against `rmp-serde`'s own encoding.

use serde::{Serialize, de::DeserializeOwned};

use crate::{Record, StoreError, msgpack};

/// `value` encoded, into a buffer of at least `capacity` bytes.
pub(crate) fn encode_with_capacity<V: Serialize + ?Sized>(
    record: Record,
    value: &V,
    capacity: usize,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(capacity);
    msgpack::encode_into(&mut out, value).map_err(|_| StoreError::Encode(record))?;
    #[cfg(test)]
    assert_eq!(
        rmp_serde::to_vec(value).ok().as_deref(),
        Some(out.as_slice()),
        "{record} encoded unlike rmp-serde"
    );
    Ok(out)
}

/// `value` encoded (keys and list items: small).
pub(crate) fn encode<V: Serialize + ?Sized>(
    record: Record,
    value: &V,
) -> Result<Vec<u8>, StoreError> {
    encode_with_capacity(record, value, 64)
}

/// `bytes` decoded as a `V`. The codec's error text is dropped: it may
/// quote part of the stored value.
pub(crate) fn decode<V: DeserializeOwned>(record: Record, bytes: &[u8]) -> Result<V, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|_| StoreError::Corrupt(record))
}
