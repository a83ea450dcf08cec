//! The walk finds the leaves openmls itself would put in the tree, and
//! refuses what it cannot follow without panicking.

use super::*;
use openmls::prelude::{
    KeyPackageIn, MlsMessageBodyIn, MlsMessageIn, ProtocolVersion, tls_codec::Deserialize as _,
    tls_codec::Size as _,
};
use openmls_rust_crypto::RustCrypto;
use testkit::mls::{RawMember, client};

/// The encoded size of a KeyPackage's leaf, as openmls measures it.
fn key_package_leaf(bytes: &[u8]) -> usize {
    let MlsMessageBodyIn::KeyPackage(kp) = MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .extract()
    else {
        panic!("not a KeyPackage")
    };
    let kp: KeyPackageIn = kp;
    kp.validate(&RustCrypto::default(), ProtocolVersion::Mls10)
        .unwrap()
        .leaf_node()
        .tls_serialized_len()
}

#[test]
fn the_refusal_names_the_cap() {
    assert!(LEAF_TOO_LARGE.0.contains(&MAX_LEAF_NODE_BYTES.to_string()));
}

#[test]
fn honest_commits_yield_the_added_leaves_and_the_path_leaf() {
    let mut alice = client("alice");
    alice.create_group(b"room").unwrap();
    let (kp_bob, kp_carol) = (
        client("bob").key_package().unwrap(),
        client("carol").key_package().unwrap(),
    );
    // Adds only: no update path.
    let commit = alice.commit(&[&kp_bob, &kp_carol], &[]).unwrap();
    let leaves = commit_leaves(&commit.commit).unwrap();
    assert_eq!(
        leaves,
        [key_package_leaf(&kp_bob), key_package_leaf(&kp_carol)]
    );
    assert_eq!(check_commit(&commit.commit), Ok(()));
    alice.merge_pending_commit().unwrap();
    let update = alice.self_update().unwrap();
    let [path] = commit_leaves(&update.commit).unwrap()[..] else {
        panic!("one path leaf")
    };
    // The client SDK's leaves, far under the cap (see the cap's rustdoc).
    println!(
        "client SDK leaves: key package {}, update path {path}",
        leaves[0]
    );
    assert!(leaves[0] * 8 < MAX_LEAF_NODE_BYTES);
    assert!(path * 8 < MAX_LEAF_NODE_BYTES);
}

#[test]
fn a_padded_update_path_leaf_is_measured_and_refused() {
    let mut m = RawMember::new("mallory");
    m.found(b"room", 0);
    let honest = m.self_update(0);
    m.settle(false);
    let [honest_leaf] = commit_leaves(&honest).unwrap()[..] else {
        panic!("one path leaf")
    };
    let padded = m.self_update(MAX_LEAF_NODE_BYTES);
    m.settle(false);
    let [padded_leaf] = commit_leaves(&padded).unwrap()[..] else {
        panic!("one path leaf")
    };
    // Padding of n bytes adds n, a length prefix and the extension header.
    assert!(padded_leaf > honest_leaf + MAX_LEAF_NODE_BYTES);
    assert!(padded_leaf < honest_leaf + MAX_LEAF_NODE_BYTES + 16);
    assert_eq!(check_commit(&honest), Ok(()));
    assert_eq!(check_commit(&padded), Err(LEAF_TOO_LARGE));
    // Just under the cap passes.
    let fits = m.self_update(MAX_LEAF_NODE_BYTES - honest_leaf - 16);
    m.settle(false);
    assert_eq!(check_commit(&fits), Ok(()));
}

#[test]
fn a_padded_key_package_in_an_add_is_refused() {
    let mut m = RawMember::new("mallory");
    m.found(b"room", 0);
    let kp = RawMember::new("bob").key_package(MAX_LEAF_NODE_BYTES);
    let (commit, _welcome) = m.add(&[&kp]);
    let leaves = commit_leaves(&commit).unwrap();
    assert_eq!(leaves[0], key_package_leaf(&kp));
    assert_eq!(check_commit(&commit), Err(LEAF_TOO_LARGE));
}

#[test]
fn every_truncation_and_other_messages_are_refused_without_panic() {
    let mut alice = client("alice");
    alice.create_group(b"room").unwrap();
    let kp = client("bob").key_package().unwrap();
    alice.commit(&[&kp], &[]).unwrap();
    alice.merge_pending_commit().unwrap();
    let commit = alice.self_update().unwrap().commit;
    let full = commit_leaves(&commit).unwrap();
    // A truncated commit either fails to walk or, cut after the path's
    // leaf (the walk reads no further), yields the same leaves.
    for end in 0..commit.len() {
        if let Ok(leaves) = commit_leaves(&commit[..end]) {
            assert_eq!(leaves, full, "cut at {end}");
        }
    }
    // A KeyPackage and a Welcome are no commits.
    alice.clear_pending_commit();
    let welcome = alice
        .commit(&[&client("carol").key_package().unwrap()], &[])
        .unwrap()
        .welcome
        .unwrap();
    for other in [kp, welcome] {
        assert_eq!(commit_leaves(&other), Err(MALFORMED));
    }
    assert_eq!(commit_leaves(&[0xff; 64]), Err(MALFORMED));
}
