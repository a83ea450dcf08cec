//! The binary encoding of keys and values: MessagePack, structs as arrays.
//!
//! Chosen by measurement against JSON and CBOR on the records openmls writes
//! for large groups (see the crate docs); it must be self-describing, since
//! some openmls types decode through `deserialize_any` (untagged enums,
//! tls_codec's byte vectors), which non-self-describing formats such as
//! postcard or bincode cannot serve.

use serde::{Serialize, de::DeserializeOwned};

use crate::{Record, StoreError};

/// `value` encoded, into a buffer of at least `capacity` bytes.
pub(crate) fn encode_with_capacity<V: Serialize + ?Sized>(
    record: Record,
    value: &V,
    capacity: usize,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(capacity);
    rmp_serde::encode::write(&mut out, value).map_err(|_| StoreError::Encode(record))?;
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
