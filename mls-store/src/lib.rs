//! An in-memory storage provider for openmls with a compact binary codec.
//!
//! openmls persists a group's whole state through its
//! [`StorageProvider`](openmls_traits::storage::StorageProvider) trait on
//! every epoch change: the ratchet tree, the message secrets of the last few
//! epochs (each with its member list) and more, all as serde values. The
//! in-memory store that ships with `openmls_rust_crypto` encodes them as
//! JSON, where every byte of a key or credential becomes a decimal number;
//! in a room of a few hundred members that was most of the cost of
//! processing a commit. [`MlsStore`] keeps the same data in memory encoded
//! as MessagePack: self-describing, which openmls relies on (some of its
//! stored types decode through `deserialize_any`), compact (a byte is one
//! or two bytes, not up to four characters) and, with our own encoder,
//! cheap to write; `rmp-serde` decodes it. [`MlsProvider`] pairs the store
//! with `openmls_rust_crypto`'s crypto.
//!
//! The store holds private keys (KeyPackage init keys, HPKE leaf keys, epoch
//! secrets). It never logs keys or values, its `Debug` shows only counts,
//! its errors name only the kind of record, and the buffers of records that
//! hold secrets are zeroed when overwritten, deleted or dropped.
//!
//! ```
//! use mls_store::MlsStore;
//! use openmls::prelude::{GroupId, LeafNodeIndex};
//! use openmls_traits::storage::StorageProvider as _;
//!
//! // openmls makes these calls itself, through a provider pairing the
//! // store with a crypto backend, such as `MlsProvider`.
//! let store = MlsStore::new();
//! let group = GroupId::from_slice(b"room");
//! store.write_own_leaf_index(&group, &LeafNodeIndex::new(7))?;
//! let leaf: Option<LeafNodeIndex> = store.own_leaf_index(&group)?;
//! assert_eq!(leaf, Some(LeafNodeIndex::new(7)));
//! # Ok::<(), mls_store::StoreError>(())
//! ```

mod codec;
mod msgpack;
mod provider;
mod record;
#[cfg(test)]
mod tests;
mod with_crypto;

use std::{
    collections::HashMap,
    fmt,
    sync::{Mutex, MutexGuard, PoisonError},
};

use serde::{Serialize, de::DeserializeOwned};
use zeroize::Zeroize as _;

pub use record::Record;
pub use with_crypto::MlsProvider;

/// Why a storage operation failed. Carries no stored bytes and no text of
/// the codec's own error (which could quote a stored value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A value could not be encoded (a type serde cannot represent).
    #[error("could not encode a {0} record")]
    Encode(Record),
    /// A stored value did not decode as the type asked for: corrupted, or
    /// written as another type.
    #[error("stored {0} record does not decode")]
    Corrupt(Record),
    /// The proposal queue names a proposal that is not stored.
    #[error("the proposal queue names a proposal that is not stored")]
    MissingProposal,
    /// A store for live groups ([`MlsStore::for_live_groups`]) was asked
    /// for a kind of record it does not keep: something is reloading a
    /// group from storage.
    #[error("{0} records are not kept by a store for live groups")]
    NotKept(Record),
}

/// Where a record lives: its kind and its encoded key.
type Slot = (Record, Vec<u8>);

#[derive(Default)]
struct Maps {
    /// Single values.
    values: HashMap<Slot, Vec<u8>>,
    /// Lists, each item encoded on its own so appending does not re-encode
    /// the list.
    lists: HashMap<Slot, Vec<Vec<u8>>>,
}

impl Drop for Maps {
    fn drop(&mut self) {
        for ((record, _), value) in &mut self.values {
            wipe(*record, value);
        }
        for ((record, _), items) in &mut self.lists {
            items.iter_mut().for_each(|item| wipe(*record, item));
        }
    }
}

/// Zeroes `buffer` if its record kind can hold secrets.
fn wipe(record: Record, buffer: &mut Vec<u8>) {
    if record.holds_secrets() {
        buffer.zeroize();
    }
}

/// An in-memory openmls storage provider (see the crate docs).
///
/// Interior mutability through one mutex, as the trait takes `&self`; it is
/// `Send` and `Sync`. Values are encoded outside the lock.
#[derive(Default)]
pub struct MlsStore {
    maps: Mutex<Maps>,
    /// Skip the records only a reload reads ([`Self::for_live_groups`]).
    live_only: bool,
}

impl fmt::Debug for MlsStore {
    // By hand: the maps hold private keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let maps = self.lock();
        f.debug_struct("MlsStore")
            .field("values", &maps.values.len())
            .field("lists", &maps.lists.len())
            .finish()
    }
}

impl MlsStore {
    /// An empty store that keeps everything openmls writes, so a group can
    /// be reloaded from it (`MlsGroup::load`, `PublicGroup::load`).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store for groups that stay in memory for their whole life
    /// and are never reloaded from storage, as in a client whose store is
    /// in memory anyway. openmls keeps a live group's ratchet tree and
    /// message secrets in the group object and reads them from storage only
    /// to reload a group, yet rewrites both on every epoch change, and in a
    /// big group they are most of what it writes (the tree, and each of the
    /// past epochs kept with its member list). This store does not keep
    /// those two kinds of record ([`Record::Tree`],
    /// [`Record::MessageSecrets`]): writing one does nothing, and reading
    /// one of a group that exists is the error [`StoreError::NotKept`], so
    /// a reload fails loudly instead of seeing no group (openmls' own check
    /// that no group exists before it founds or joins one still works).
    /// Everything else, private keys included, is kept as by
    /// [`Self::new`].
    ///
    /// ```
    /// use mls_store::{MlsStore, StoreError};
    /// use openmls::prelude::GroupId;
    /// use openmls::treesync::TreeSync;
    /// use openmls_traits::storage::StorageProvider as _;
    ///
    /// let store = MlsStore::for_live_groups();
    /// let room = GroupId::from_slice(b"room");
    /// let read: Option<TreeSync> = store.tree(&room)?;
    /// assert!(read.is_none(), "no group yet");
    /// # Ok::<(), StoreError>(())
    /// ```
    pub fn for_live_groups() -> Self {
        Self {
            live_only: true,
            ..Self::default()
        }
    }

    /// Whether records of this kind are stored.
    fn keeps(&self, record: Record) -> bool {
        !(self.live_only && matches!(record, Record::Tree | Record::MessageSecrets))
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        let maps = self.lock();
        maps.values.is_empty() && maps.lists.is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Maps> {
        // Nothing panics while the lock is held but allocation; each
        // operation is a single insert or remove, so the maps stay
        // consistent even then.
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `value` under `key`, replacing (and wiping) any older value.
    fn put<V: Serialize + ?Sized>(
        &self,
        record: Record,
        key: Vec<u8>,
        value: &V,
    ) -> Result<(), StoreError> {
        if !self.keeps(record) {
            return Ok(());
        }
        let slot = (record, key);
        // Records are rewritten at about the same size each epoch: start
        // from the old size so the buffer rarely grows (growing leaves
        // unwiped copies behind in freed memory).
        let hint = self.lock().values.get(&slot).map_or(0, Vec::len);
        let bytes = codec::encode_with_capacity(record, value, hint + hint / 8)?;
        if let Some(mut old) = self.lock().values.insert(slot, bytes) {
            wipe(record, &mut old);
        }
        Ok(())
    }

    /// The value under `key`, if any.
    fn get<V: DeserializeOwned>(
        &self,
        record: Record,
        key: Vec<u8>,
    ) -> Result<Option<V>, StoreError> {
        let maps = self.lock();
        if !self.keeps(record) {
            // openmls reloads a group to learn whether one exists before it
            // creates or joins one: without a group there is nothing to
            // reload and the answer is "none"; with one, it cannot be.
            let exists = maps.values.contains_key(&(Record::GroupContext, key));
            return if exists {
                Err(StoreError::NotKept(record))
            } else {
                Ok(None)
            };
        }
        maps.values
            .get(&(record, key))
            .map(|bytes| codec::decode(record, bytes))
            .transpose()
    }

    /// Deletes (and wipes) the value under `key`; a no-op if there is none.
    fn delete(&self, record: Record, key: Vec<u8>) {
        if let Some(mut old) = self.lock().values.remove(&(record, key)) {
            wipe(record, &mut old);
        }
    }

    /// Appends `item` to the list under `key` (creating it).
    fn push<V: Serialize + ?Sized>(
        &self,
        record: Record,
        key: Vec<u8>,
        item: &V,
    ) -> Result<(), StoreError> {
        let bytes = codec::encode(record, item)?;
        self.lock()
            .lists
            .entry((record, key))
            .or_default()
            .push(bytes);
        Ok(())
    }

    /// Removes the first item equal to `item` from the list under `key`; a
    /// no-op if there is none.
    fn remove_item<V: Serialize + ?Sized>(
        &self,
        record: Record,
        key: Vec<u8>,
        item: &V,
    ) -> Result<(), StoreError> {
        let bytes = codec::encode(record, item)?;
        let mut maps = self.lock();
        if let Some(list) = maps.lists.get_mut(&(record, key))
            && let Some(pos) = list.iter().position(|stored| *stored == bytes)
        {
            wipe(record, &mut list.remove(pos));
        }
        Ok(())
    }

    /// The items of the list under `key`, in the order they were appended;
    /// empty if there is no list.
    fn list<V: DeserializeOwned>(
        &self,
        record: Record,
        key: Vec<u8>,
    ) -> Result<Vec<V>, StoreError> {
        let maps = self.lock();
        maps.lists
            .get(&(record, key))
            .map_or(Ok(Vec::new()), |items| {
                items
                    .iter()
                    .map(|item| codec::decode(record, item))
                    .collect()
            })
    }

    /// Deletes (and wipes) the list under `key`; a no-op if there is none.
    fn delete_list(&self, record: Record, key: Vec<u8>) {
        if let Some(mut items) = self.lock().lists.remove(&(record, key)) {
            items.iter_mut().for_each(|item| wipe(record, item));
        }
    }
}
