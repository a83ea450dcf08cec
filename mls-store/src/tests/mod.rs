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

#[test]
fn the_encoder_writes_what_rmp_serde_writes() {
    use serde::{Serialize, Serializer, ser::SerializeSeq as _};
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Unit;
    #[derive(Serialize)]
    struct Newtype(Vec<u8>);
    #[derive(Serialize)]
    struct Pair(u16, i64);
    #[derive(Serialize)]
    enum E {
        A,
        B(u8),
        C(u8, String),
        D { x: Option<u32>, y: bool },
    }
    #[derive(Serialize)]
    struct All {
        ints: Vec<i64>,
        uints: Vec<u64>,
        small: (i8, i16, i32, u8, u16, u32),
        wide: (i128, u128),
        floats: (f32, f64),
        chars: Vec<char>,
        strings: Vec<String>,
        #[serde(with = "serde_bytes_like")]
        blob: Vec<u8>,
        bytes_as_seq: Vec<u8>,
        map: BTreeMap<String, Vec<u8>>,
        variants: Vec<E>,
        unit: (Unit, (), Option<u8>),
        newtype: Newtype,
        pair: Pair,
        unknown_len: Unsized,
    }
    /// A sequence of unknown length, long enough for a 16-bit header.
    struct Unsized(usize);
    impl Serialize for Unsized {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(None)?;
            for i in 0..self.0 {
                seq.serialize_element(&(i as u32 * 1000))?;
            }
            seq.end()
        }
    }
    mod serde_bytes_like {
        pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }
    let edges = [0i64, 1, 127, 128, 255, 256, 65535, 65536, 1 << 32, i64::MAX];
    let value = All {
        ints: edges.iter().flat_map(|&v| [v, -v, -v - 1]).collect(),
        uints: edges.iter().map(|&v| v as u64).chain([u64::MAX]).collect(),
        small: (-33, -129, -32769, 200, 300, 70000),
        wide: (-5, u128::MAX),
        floats: (1.5, -2.25),
        chars: vec!['a', 'é', '😀'],
        strings: [0, 31, 32, 255, 256, 65536].map(|n| "x".repeat(n)).to_vec(),
        blob: (0..=255).collect(),
        bytes_as_seq: (0..=255).cycle().take(70000).collect(),
        map: (0..20)
            .map(|i| (format!("k{i}"), vec![i; i as usize]))
            .collect(),
        variants: vec![
            E::A,
            E::B(9),
            E::C(200, "c".into()),
            E::D {
                x: Some(7),
                y: true,
            },
            E::D { x: None, y: false },
        ],
        unit: (Unit, (), None),
        newtype: Newtype(vec![1, 2, 3]),
        pair: Pair(65535, -1),
        unknown_len: Unsized(20),
    };
    for v in [
        &value as &dyn erased::Check,
        &Unsized(0),
        &Unsized(15),
        &Unsized(70000),
    ] {
        v.check();
    }

    mod erased {
        pub(super) trait Check {
            fn check(&self);
        }
        impl<T: serde::Serialize> Check for T {
            fn check(&self) {
                let mut ours = Vec::new();
                crate::msgpack::encode_into(&mut ours, self).unwrap();
                assert_eq!(ours, rmp_serde::to_vec(self).unwrap());
            }
        }
    }
}
