//! The store's own operations, and openmls groups driven over it.

mod mls;

use openmls::prelude::{GroupId, LeafNodeIndex};
use openmls_traits::storage::StorageProvider as _;

use crate::{MlsStore, Record, StoreError};

const GROUP: &[u8] = b"group";

fn refs(store: &MlsStore) -> Vec<Vec<u8>> {
    store.list(Record::ProposalQueue, key(GROUP)).unwrap()
}

/// An encoded key, as the trait methods make them.
fn key<K: serde::Serialize + ?Sized>(k: &K) -> Vec<u8> {
    crate::codec::encode(Record::ProposalQueue, k).unwrap()
}

#[test]
fn lists_append_in_order_remove_one_item_and_delete() {
    let store = MlsStore::new();
    assert!(refs(&store).is_empty(), "a missing list reads as empty");
    let r = Record::ProposalQueue;
    for item in [b"a".to_vec(), b"b".to_vec(), b"a".to_vec(), b"c".to_vec()] {
        store.push(r, key(GROUP), &item).unwrap();
    }
    assert_eq!(
        refs(&store),
        [b"a".to_vec(), b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]
    );

    // Only the first equal item goes; absent items and lists are no-ops.
    store.remove_item(r, key(GROUP), &b"a".to_vec()).unwrap();
    assert_eq!(refs(&store), [b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]);
    store.remove_item(r, key(GROUP), &b"zz".to_vec()).unwrap();
    store.remove_item(r, key(b"other"), &b"b".to_vec()).unwrap();
    assert_eq!(refs(&store).len(), 3);

    // Lists of other keys and kinds are separate.
    store.push(r, key(b"other"), &b"x".to_vec()).unwrap();
    store
        .push(Record::OwnLeafNodes, key(GROUP), &b"y".to_vec())
        .unwrap();
    assert_eq!(refs(&store).len(), 3);

    store.delete_list(r, key(GROUP));
    assert!(refs(&store).is_empty());
    let other: Vec<Vec<u8>> = store.list(r, key(b"other")).unwrap();
    assert_eq!(other, [b"x".to_vec()]);
}

#[test]
fn values_overwrite_read_and_delete() {
    let store = MlsStore::new();
    let group = GroupId::from_slice(b"g");
    let read = |store: &MlsStore| store.own_leaf_index::<GroupId, LeafNodeIndex>(&group);
    assert_eq!(read(&store), Ok(None));
    store
        .write_own_leaf_index(&group, &LeafNodeIndex::new(3))
        .unwrap();
    store
        .write_own_leaf_index(&group, &LeafNodeIndex::new(4))
        .unwrap();
    assert_eq!(read(&store), Ok(Some(LeafNodeIndex::new(4))));
    // The same key under another kind, and another key: separate.
    assert_eq!(store.get::<u32>(Record::GroupState, key(&group)), Ok(None));
    let other = GroupId::from_slice(b"h");
    assert_eq!(
        store.own_leaf_index::<GroupId, LeafNodeIndex>(&other),
        Ok(None)
    );
    store.delete_own_leaf_index(&group).unwrap();
    assert_eq!(read(&store), Ok(None));
    assert!(store.is_empty());
}

#[test]
fn a_corrupted_value_is_a_typed_error() {
    let store = MlsStore::new();
    let group = GroupId::from_slice(b"g");
    store
        .write_own_leaf_index(&group, &LeafNodeIndex::new(3))
        .unwrap();
    store
        .put(Record::Tree, key(&group), &vec![7u32; 40])
        .unwrap();
    store
        .push(Record::OwnLeafNodes, key(&group), &b"leaf".to_vec())
        .unwrap();
    {
        let mut maps = store.lock();
        for value in maps.values.values_mut() {
            value.truncate(value.len() / 2);
        }
        for item in maps.lists.values_mut().flatten() {
            item.clear();
            item.push(0xc1); // MessagePack's one never-used marker.
        }
    }
    assert_eq!(
        store.own_leaf_index::<GroupId, LeafNodeIndex>(&group),
        Err(StoreError::Corrupt(Record::OwnLeafIndex))
    );
    assert_eq!(
        store.get::<Vec<u32>>(Record::Tree, key(&group)),
        Err(StoreError::Corrupt(Record::Tree))
    );
    assert_eq!(
        store.list::<Vec<u8>>(Record::OwnLeafNodes, key(&group)),
        Err(StoreError::Corrupt(Record::OwnLeafNodes))
    );
    // Intact bytes read as the wrong type: also an error.
    store.put(Record::Tree, key(&group), "a string").unwrap();
    assert_eq!(
        store.get::<Vec<u32>>(Record::Tree, key(&group)),
        Err(StoreError::Corrupt(Record::Tree))
    );
}

#[test]
fn debug_and_errors_show_no_stored_bytes() {
    let store = MlsStore::new();
    store
        .put(Record::KeyPackage, key(b"ref"), &[0xAB_u8; 16])
        .unwrap();
    let shown = format!("{store:?}");
    assert_eq!(shown, "MlsStore { values: 1, lists: 0 }");
    let err = StoreError::Corrupt(Record::KeyPackage);
    assert_eq!(err.to_string(), "stored KeyPackage record does not decode");
}
